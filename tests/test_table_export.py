"""ONNX exports of models of tables (issue 16): `ganctl export RUN --onnx` on a tvae run writes the
rows' generator with its TableSpec in the metadata (contract format 2), and `ganctl generate
model.onnx --out synthetic.csv` decodes it from the file alone, as the run directory does; the
other exporters and quantisation refuse tables; bad input is one clear error."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ganctl import api
from ganctl.cli import app
from ganctl.plugins import set_host

from . import onnx_models
from .test_tvae import TABLE, recipe

pytestmark = pytest.mark.backends
pytest.importorskip("pandas")

ATOL = 1e-4  # the export's default parity tolerance (ganctl.exporting.DEFAULT_ATOL)
METADATA = {"ganctl.format", "ganctl.version", "ganctl.kind", "ganctl.model", "ganctl.latent_dim",
            "ganctl.num_classes", "ganctl.class_names", "ganctl.table", "ganctl.recipe_hash", "ganctl.data",
            "ganctl.backend", "ganctl.step"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny tvae run (one epoch of two steps on the whole table) and its ONNX export, made through the CLI."""
    folder = tmp_path_factory.mktemp("table-export")
    path = recipe(folder, epochs=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANCTL_LOAD_PLUGINS", "")
        set_host(None)
        runner = CliRunner()
        run = folder / "run"
        result = runner.invoke(app, ["train", str(path), "--out", str(run), "-q", "--set", "train.steps_per_epoch=2",
                                     "--set", "data.split=all"])  # no held-out split: nothing to evaluate
        assert result.exit_code == 0, result.output
        result = runner.invoke(app, ["export", str(run), "--onnx"])
        assert result.exit_code == 0, result.output
        assert f"onnx: wrote {run / 'exports' / 'generator.onnx'}" in result.stdout
        set_host(None)
    return run, run / "exports" / "generator.onnx"


def spec_of(run: Path) -> api.TableSpec:
    return api.TableSpec.from_dict(json.loads((run / "run.json").read_text())["data_spec"])


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def assert_same_table(found: list[dict[str, str]], expected: list[dict[str, str]], spec: api.TableSpec) -> None:
    """The documented tolerance between the CSV of an ONNX export and of its run directory: every
    category, boolean, whole number and hole the same; each other number within 4 sigma_k atol."""
    assert len(found) == len(expected) and list(found[0]) == [c.name for c in spec.columns]
    for column in spec.columns:
        a = [row[column.name] for row in found]
        b = [row[column.name] for row in expected]
        if column.type != "numeric" or column.integer:
            assert a == b, column.name
            continue
        assert [v == "" for v in a] == [v == "" for v in b], column.name
        x, y = (np.array([float(v) for v in values if v]) for values in (a, b))
        assert np.max(np.abs(x - y)) <= 4 * max(column.stds) * ATOL, column.name


def test_the_onnx_export_of_a_table_model_carries_its_table_spec(exported, runner, tmp_path):
    import onnx

    from ganctl.inference.generator import Generator

    run, model_path = exported
    spec = spec_of(run)
    model = onnx.load(str(model_path))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["z"] and [o.name for o in model.graph.output] == ["rows"]
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in (model.graph.input[0], model.graph.output[0])]
    assert dims == [["batch", 4], ["batch", spec.width]]
    meta = {p.key: p.value for p in model.metadata_props}
    assert set(meta) == METADATA
    assert (meta["ganctl.format"], meta["ganctl.kind"], meta["ganctl.model"], meta["ganctl.num_classes"]) == (
        "2", "generator", "tvae", "0")
    # the round trip: the metadata's spec is run.json's, column for column (encodings, modes, indicators)
    assert api.TableSpec.from_dict(json.loads(meta["ganctl.table"])) == spec
    assert json.loads(meta["ganctl.table"]) == json.loads((run / "run.json").read_text())["data_spec"]
    record = json.loads((run / "run.json").read_text())["exports"]["onnx"]
    assert record["max_abs_diff"] <= ATOL and record["batch_sizes"] == [1, 7, 64]

    generator = Generator.open(model_path, provider="cpu")
    assert generator.table == spec and generator.data_shape == (spec.width,) and not generator.conditional
    # the encoded rows, as --out rows.npz writes them (the next test compares the decoded table with Keras's)
    out = tmp_path / "rows.npz"
    result = runner.invoke(app, ["generate", str(model_path), "-n", "100", "--seed", "4", "--out", str(out)])
    assert result.exit_code == 0 and "wrote 100 encoded rows" in result.stdout, result.output
    with np.load(out) as archive:
        rows = archive["images"]
    assert rows.shape == (100, spec.width) and rows.std() > 0.01
    np.testing.assert_array_equal(rows, generator.sample(100, seed=4)[0])
    assert spec.decode(rows).keys() == {"x", "colour", "flag", "n"}


def test_generate_decodes_the_onnx_file_alone_as_the_run_directory_does(exported, runner, tmp_path):
    run, model_path = exported
    spec = spec_of(run)
    alone = tmp_path / "deploy" / "model.onnx"
    alone.parent.mkdir()
    shutil.copy(model_path, alone)
    away = run.with_name("run-away")
    run.rename(away)  # nothing of the run is there to read
    try:
        outputs = []
        for seed, name in ((5, "a.csv"), (5, "b.csv"), (6, "c.csv")):
            result = runner.invoke(app, ["generate", str(alone), "-n", "400", "--seed", str(seed),
                                         "--out", str(tmp_path / name)])
            assert result.exit_code == 0, result.output
            assert f"wrote 400 rows to {tmp_path / name} (onnxruntime" in result.stdout
            outputs.append((tmp_path / name).read_text())
    finally:
        away.rename(run)
    assert outputs[0] == outputs[1] and outputs[0] != outputs[2]  # the same seed, the same file
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left
    table = read_csv(tmp_path / "a.csv")
    assert list(table[0]) == ["x", "colour", "flag", "n"] and len(table) == 400
    assert {row["flag"] for row in table} <= {"True", "False"} and {row["colour"] for row in table} <= set("rgb") | {""}
    assert all(row["n"] == "" or row["n"].isdigit() for row in table)
    assert len({row["colour"] for row in table}) >= 2 and len({row["x"] for row in table}) > 100
    result = runner.invoke(app, ["generate", str(run), "-n", "400", "--seed", "5", "--out", str(tmp_path / "run.csv")])
    assert result.exit_code == 0, result.output
    assert_same_table(table, read_csv(tmp_path / "run.csv"), spec)


def test_without_out_a_table_model_prints_its_rows(exported, runner, tmp_path):
    _, model_path = exported
    result = runner.invoke(app, ["generate", str(model_path), "-n", "6", "--seed", "5"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = tmp_path / "six.csv"
    assert runner.invoke(app, ["generate", str(model_path), "-n", "6", "--seed", "5", "--out", str(out)]).exit_code == 0
    lines = result.stdout.splitlines()
    assert all(name in lines[1] for name in ("x", "colour", "flag", "n"))
    printed = [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines if line.startswith("│")]
    written = [[cell or "NA" for cell in row] for row in csv.reader(out.read_text().splitlines()[1:])]
    assert printed == written  # the rows the CSV holds, a hole shown as NA
    assert "6 rows from" in result.stdout and "--out FILE.csv writes them" in result.stdout


def test_bad_input_to_generate_is_one_clear_error_and_writes_nothing(exported, runner, tmp_path):
    import onnx

    _, model_path = exported
    images = onnx_models.generator(tmp_path / "images.onnx")
    foreign = onnx_models.generator(tmp_path / "foreign.onnx", metadata=False)
    model = onnx.load(str(model_path))
    damaged, newer = tmp_path / "damaged.onnx", tmp_path / "newer.onnx"
    for path, key, value in ((damaged, "ganctl.table", '{"columns": [{"name": "x"}]}'), (newer, "ganctl.format", "3")):
        edited = onnx.ModelProto()
        edited.CopyFrom(model)
        next(p for p in edited.metadata_props if p.key == key).value = value
        onnx.save(edited, str(path))
    (tmp_path / "file").write_text("x")
    kept = tmp_path / "kept.csv"
    kept.write_text("an earlier table\n")
    cases = [
        ([images, "--out", kept], "a .csv file holds the rows of a model of a table, and"),
        ([images, "--out", kept], "no table metadata (ganctl.table): it is a generator of images"),
        ([foreign, "--out", kept], "no table metadata (ganctl.table)"),
        ([images], "--out is needed"),
        ([model_path, "--out", tmp_path / "x.png"], "models a table, so write its rows to a .csv file"),
        ([model_path, "--out", tmp_path / "x.txt"], "must end in .png (a grid), .npz (arrays) or .csv"),
        ([model_path, "--out", "/proc/nope/x.csv"], "cannot write /proc/nope/x.csv"),
        ([model_path, "--out", tmp_path / "file" / "x.csv"], "is not a writable folder"),
        ([model_path, "--label", "0", "--out", kept], "--label is only for conditional models"),
        ([damaged, "--out", kept], "the metadata ganctl.table does not describe a table"),
        ([newer, "--out", kept], "is in ganctl ONNX format 3, which this ganctl does not read (it reads formats 1 and 2)"),
    ]
    for args, says in cases:
        result = runner.invoke(app, ["generate", *map(str, args)])
        assert result.exit_code == 2, (args, result.output)
        assert says in " ".join(result.stderr.split()), (args, result.stderr)
        assert result.stderr.startswith("error: ") and "Traceback" not in result.output
    assert kept.read_text() == "an earlier table\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["images.onnx", "foreign.onnx", "damaged.onnx", "newer.onnx", "file", "kept.csv"])
    result = runner.invoke(app, ["evaluate", str(model_path)])
    assert result.exit_code == 2 and "is the generator of a table" in result.stderr, result.output


@pytest.mark.parametrize("args", [["--format", "keras"], ["--format", "tf_saved_model"], ["--format", "litert"],
                                  ["--format", "openvino"]])
def test_other_exporters_refuse_a_table_model_and_say_what_works(exported, runner, tmp_path, args):
    run, _ = exported
    result = runner.invoke(app, ["export", str(run), *args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert f"the {args[1]} exporter cannot run" in message and "it exports models of images" in message, message
    assert "ganctl export RUN --onnx" in message and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_quantised_exports_and_other_exporters_in_a_recipe_are_refused_before_training(exported, runner, tmp_path):
    run, _ = exported
    before = json.loads((run / "run.json").read_text())["exports"]
    result = runner.invoke(app, ["export", str(run), "--onnx", "--quantize", "fp16"])
    assert result.exit_code == 2, result.output
    assert "image quality (FID, C2ST)" in result.stderr and "without --quantize" in " ".join(result.stderr.split())
    assert json.loads((run / "run.json").read_text())["exports"] == before
    path = recipe(tmp_path, epochs=1)
    for export, says in (("[onnx, keras]", "export[1]: the keras exporter cannot run"),
                         ("[{plugin: onnx, quantize: int8-static}]", "export[0]: the onnx exporter cannot run")):
        result = runner.invoke(app, ["train", str(path), "--out", str(tmp_path / "m"), "--set", f"export={export}"])
        assert result.exit_code == 2, result.output
        assert says in " ".join(result.stderr.split()), result.stderr
        assert not (tmp_path / "m").exists()


def test_a_table_model_whose_generator_does_not_return_its_rows_is_refused(exported, runner, tmp_path, monkeypatch):
    from ganctl_models import TVAE

    run, _ = exported
    monkeypatch.setattr(TVAE, "generate", lambda self, z, labels=None: self.generator(z, training=False)[:, 1:])
    result = runner.invoke(app, ["export", str(run), "--onnx", "--out", str(tmp_path / "g.onnx")])
    assert result.exit_code == 1, result.output
    width = spec_of(run).width
    assert f"the tvae model's generator returns [2, {width - 1}] for 2 latents" in " ".join(result.stderr.split())
    assert not (tmp_path / "g.onnx").exists()


@pytest.mark.slow
def test_a_recipe_export_list_exports_a_table_model_at_the_end_of_training(runner, tmp_path):
    path = recipe(tmp_path, epochs=1)
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(path), "--out", str(run), "-q", "--set", "export=[onnx]"])
    assert result.exit_code == 0, result.output
    model = run / "exports" / "generator.onnx"
    assert json.loads((run / "run.json").read_text())["exports"]["onnx"]["max_abs_diff"] <= ATOL
    for source, name in ((model, "onnx.csv"), (run, "run.csv")):
        result = runner.invoke(app, ["generate", str(source), "-n", "200", "--seed", "1", "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    assert_same_table(read_csv(tmp_path / "onnx.csv"), read_csv(tmp_path / "run.csv"), spec_of(run))
    assert TABLE.splitlines()[0] == (tmp_path / "onnx.csv").read_text().splitlines()[0]
