"""``ganctl bench``: timing an ONNX model, a run directory (exported first when needed), bad input.
And the benchmarks' shared harness (bench/harness.py), a smoke run of bench/evaluate.py (the
10k-sample Fashion-MNIST FID benchmark), and bench/tables.py (ganctl's table models beside ctgan and
SDV) with the scoring of a generated CSV file it relies on."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ganctl.cli import app
from ganctl.commands import bench

from . import onnx_models
from .conftest import ROOT, require_fashion_mnist
from .test_cli import _imported_after

FAST = ["--repeats", "3", "--warmup", "1"]

RECIPE = """\
name: tiny
seed: 3
data: {plugin: digits, limit: 256}
model: {plugin: dcgan, latent_dim: 8, filters: 8, conditional: true}
train: {epochs: 1, batch_size: 32, steps_per_epoch: 2}
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return onnx_models.generator(tmp_path_factory.mktemp("onnx") / "cond.onnx", latent_dim=4, num_classes=3)


def test_an_onnx_model_as_json(runner, model):
    result = runner.invoke(app, ["bench", str(model), "--batch", "1,5", "--provider", "cpu", "--threads", "1",
                                 "--json", *FAST])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"] == str(model) and report["providers"] == ["CPUExecutionProvider"]
    assert report["threads"] == 1 and "backend" not in report
    rows = report["results"]
    assert [(r["path"], r["batch"], r["calls"]) for r in rows] == [("onnxruntime", 1, 3), ("onnxruntime", 5, 3)]
    for row in rows:
        assert row["samples_per_s"] > 0 and 0 < row["median_ms"] <= row["p90_ms"]
        assert row["onnxruntime_speedup"] == 1.0


def test_an_onnx_model_as_a_table(runner, model):
    result = runner.invoke(app, ["bench", str(model), "--batch", "2", "--seconds", "0.05", "--provider", "cpu"])
    assert result.exit_code == 0, result.output
    assert "onnxruntime on CPU" in result.stdout and "samples/s" in result.stdout and "p90 ms" in result.stdout
    assert "keras" not in result.stdout and result.stderr == ""


def test_bench_help_imports_no_backend():
    assert _imported_after("bench", "--help") == set()


def test_parse_batches():
    assert bench.parse_batches("1, 64,256") == [1, 64, 256]
    assert bench.parse_batches("8,8,2") == [8, 2]


def test_measure_interleaves_and_spends_the_budget():
    order: list[str] = []
    paths = {name: (lambda name=name: order.append(name)) for name in "ab"}
    times = bench.measure(paths, seconds=None, repeats=7, warmup=2, slices=3)
    assert {name: len(t) for name, t in times.items()} == {"a": 7, "b": 7}
    # warm-up first, then slices of 2, 2 and 3 calls, the order reversed every other slice
    assert "".join(order) == "aabb" + "aabb" + "bbaa" + "aaabbb"
    timed = bench.measure(paths, seconds=0.03, repeats=None, warmup=0, slices=3)
    assert all(len(t) >= 3 for t in timed.values())
    order.clear()
    settled = bench.measure(paths, seconds=None, repeats=2, warmup=0, slices=1, settle=0.01)
    assert {name: len(t) for name, t in settled.items()} == {"a": 2, "b": 2}  # settling calls are not timed
    assert order.count("a") > 2 and order.count("b") > 2 and order.index("b") > order.count("a") - 1


@pytest.mark.parametrize("args, expected", [
    (["--batch", "1,x"], "--batch '1,x': each batch size must be a whole number of at least 1"),
    (["--batch", "0"], "'0' is not"),
    (["--batch", "-4"], "'-4' is not"),
    (["--batch", "1.5"], "'1.5' is not"),
    (["--batch", "1,,2"], "'' is not"),
    (["--seconds", "0"], "--seconds must be more than 0"),
    (["--repeats", "0"], "--repeats must be at least 1"),
    (["--seconds", "1", "--repeats", "2"], "give --seconds or --repeats, not both"),
    (["--warmup", "-1"], "--warmup must be 0 or more"),
    (["--threads", "0"], "--threads must be at least 1"),
    (["--provider", "rocm"], "unknown execution provider 'rocm'; use one of: auto, cpu, cuda, tensorrt"),
    (["--backend", "jax"], "--backend is for run directories"),
])
def test_bad_options_are_one_line_errors(runner, model, args, expected):
    result = runner.invoke(app, ["bench", str(model), *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and expected in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


@pytest.mark.parametrize("kind, expected", [
    ("missing", "does not exist; give an ONNX model file or a run directory"),
    ("folder", "is a folder, not an ONNX model or a ganctl run directory"),
    ("text", "is not an ONNX model onnxruntime can load"),
])
def test_bad_sources_are_one_line_errors(runner, tmp_path, kind, expected):
    path = tmp_path / "thing.onnx"
    if kind == "folder":
        path.mkdir()
    elif kind == "text":
        path.write_text("not a model\n")
    result = runner.invoke(app, ["bench", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and expected in result.stderr and "Traceback" not in result.output


# -- run directories: trains a tiny run, so once per Keras backend in CI --------------------------

_TRAINED: dict[str, Path] = {}


@pytest.fixture
def run(runner, write, tmp_path) -> Path:
    """A copy (in tmp_path) of a conditional dcgan trained for two steps, trained once per module."""
    if "run" not in _TRAINED:
        recipe = write("tiny.yaml", RECIPE)
        result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "original"), "-q"])
        assert result.exit_code == 0, result.output
        _TRAINED["run"] = tmp_path / "original"
    shutil.copytree(_TRAINED["run"], tmp_path / "run")
    return tmp_path / "run"


@pytest.mark.backends
def test_a_run_directory_is_exported_first_then_timed_on_keras_too(runner, run):
    export = run / "exports" / "generator.onnx"
    assert not export.exists()
    result = runner.invoke(app, ["bench", str(run), "--batch", "1,4", "--provider", "cpu", "--json", *FAST])
    assert result.exit_code == 0, result.output
    assert f"{run} has no ONNX export: exporting it first" in result.stderr and export.is_file()
    assert json.loads((run / "run.json").read_text())["exports"]["onnx"]["step"] == 2
    report = json.loads(result.stdout)
    assert report["model"] == str(export) and report["run"] == str(run) and report["step"] == 2
    rows = [(r["path"], r["batch"], r["calls"]) for r in report["results"]]
    assert rows == [(p, b, 3) for b in (1, 4) for p in ("onnxruntime", "keras predict", "keras direct")]
    assert all(r["samples_per_s"] > 0 and r["onnxruntime_speedup"] > 0 for r in report["results"])

    # the second time the export is there; a stale one is timed, with a warning
    info = json.loads((run / "run.json").read_text())
    info["exports"]["onnx"]["step"] = 1
    (run / "run.json").write_text(json.dumps(info))
    result = runner.invoke(app, ["bench", str(run), "--batch", "2", "--seconds", "0.05"])
    assert result.exit_code == 0, result.output
    assert "exporting it first" not in result.stderr and "was exported at step 1" in result.stderr
    for path in ("onnxruntime", "keras predict", "keras direct"):
        assert path in result.stdout


@pytest.mark.backends
def test_a_run_directory_whose_export_cannot_run_here(runner, run, monkeypatch):
    from ganctl_export.onnx import OnnxExporter

    monkeypatch.setattr(OnnxExporter, "unavailable", lambda self, backend: "needs a converter")
    result = runner.invoke(app, ["bench", str(run)])
    assert result.exit_code == 2, result.output
    assert "has no ONNX export" in result.stderr and "needs a converter" in result.stderr
    assert "Traceback" not in result.output and not (run / "exports").exists()


# -- bench/harness.py -------------------------------------------------------------------------------


@pytest.fixture
def harness(monkeypatch) -> Any:
    """bench/harness.py, imported as the bench scripts import it (``python bench/NAME.py``)."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    return importlib.import_module("harness")


def _child_script(path: Path, body: str) -> Path:
    path.write_text(f"import sys\nsys.path.insert(0, {str(ROOT / 'bench')!r})\nimport harness\n\n"
                    + textwrap.dedent(body))
    return path


def test_the_harness_drives_a_child_over_a_pipe(harness, tmp_path):
    script = _child_script(tmp_path / "child.py", """
        import os

        def build():
            print("a library's chatter")  # goes to the log, never into the protocol
            return {"setup_s": 0.0, "pid": os.getpid()}, lambda request: {"double": 2 * request["x"]}

        harness.serve(build)
    """)
    child = harness.Child("doubler", [sys.executable, str(script)], tmp_path / "doubler.log", {"EXTRA": "1"})
    try:
        assert child.ready == {"setup_s": 0.0, "pid": child.pid}
        assert [child.ask({"x": x})["double"] for x in (1, 5, 7)] == [2, 10, 14]
    finally:
        child.close()
    assert child.proc.returncode == 0  # closing its input ends serve()
    assert "a library's chatter" in (tmp_path / "doubler.log").read_text()


def test_a_child_that_dies_ends_the_benchmark_with_its_log(harness, tmp_path):
    script = _child_script(tmp_path / "child.py", """
        def build():
            raise RuntimeError("cannot build")

        harness.serve(build)
    """)
    with pytest.raises(SystemExit, match=r"(?s)the broken child exited \(1\).*RuntimeError: cannot build"):
        harness.Child("broken", [sys.executable, str(script)], tmp_path / "broken.log")


def test_the_harness_runs_commands_and_summarises(harness):
    done = harness.run([sys.executable, "-c", "import os; print(os.environ['BENCH_X'])"], {"BENCH_X": "42"})
    assert done.returncode == 0 and done.stdout == "42\n" and done.seconds > 0
    with pytest.raises(SystemExit, match=r"failed \(3\):\nno luck"):
        harness.run([sys.executable, "-c", "import sys; sys.stderr.write('no luck'); sys.exit(3)"])
    assert harness.run([sys.executable, "-c", "raise SystemExit(2)"], check=False).returncode == 2
    assert harness.ganctl("train", "r.yaml") == [sys.executable, "-m", "ganctl", "train", "r.yaml"]

    assert harness.rotated([1, 2, 3], 4) == [2, 3, 1] and harness.rotated([1, 2, 3], 0) == [1, 2, 3]
    assert harness.summary([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "runs": 3}
    assert harness.summary([1.0], "_s") == {"median_s": 1.0, "min_s": 1.0, "max_s": 1.0, "runs": 1}
    assert harness.spread([1.0, 2.0, 3.0]) == 1.0
    assert harness.versions(["os", "pytest", "not_imported_anywhere"]) == {"os": "?", "pytest": pytest.__version__}

    load = harness.Load()
    sum(range(10**6))  # this process's own work is not another process's
    share = load.foreign()
    assert share is None or 0.0 <= share <= 1.0


# -- bench/evaluate.py ------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_evaluate_benchmark_runs_quick(tmp_path):
    """``bench/evaluate.py --quick``: trains its own two models (1 epoch of 2 steps), then times one
    round of every path at n=2000 (about 2 minutes on 2 cores, most of it the training)."""
    require_fashion_mnist()
    out = tmp_path / "evaluate.json"
    done = subprocess.run([sys.executable, "bench/evaluate.py", "--quick", "--json", str(out)], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "target: a 10000-sample FID in < 60 s: not checked (this run used --n 2000)" in done.stdout
    results = json.loads(out.read_text())["results"]
    assert results["n"] == 2000 and results["rounds"] == 1
    assert set(results["trained_here"]) == {"generator", "classifier"}
    assert set(results["cases"]) == {"onnx cold", "onnx warm", "keras cold", "cli cold"}
    [found] = results["per_round"]
    assert [found[case]["real_features_cached"] for case in ("onnx cold", "onnx warm", "keras cold", "cli cold")] \
        == [False, True, False, False]
    for case in ("onnx cold", "onnx warm", "keras cold"):
        stages = found[case]["stages"]
        assert all(seconds >= -1e-3 for seconds in stages.values()), stages
        assert sum(stages.values()) == pytest.approx(found[case]["seconds"], rel=1e-6)
        assert stages["generation"] > 0 and stages["fake features"] > 0
    assert found["onnx warm"]["stages"]["data"] == 0  # cached real features: the dataset is not read
    difference = results["relative_difference"]
    assert difference["warm_vs_cold"] == 0 and difference["cli_vs_onnx"] < 1e-6
    assert difference["keras_vs_onnx"] < 1e-3


# -- bench/tables.py: ganctl's table models side by side with ctgan and SDV --------------------------

SMALL_TABLE = "\n".join(["x,colour,n"] + [
    f"{'' if i % 6 == 1 else round(i * 0.37 % 5, 3)},{'' if i % 9 == 2 else 'rgb'[i % 3]},{i % 4}"
    for i in range(60)]) + "\n"


@pytest.fixture
def tables_bench(monkeypatch) -> Any:
    """bench/tables.py, imported as the script imports harness."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    return importlib.import_module("tables")


def test_the_tables_bench_options(tables_bench):
    full = tables_bench.parse_args([])
    assert full.tables == ["penguins", "wine", "breast-cancer", "diabetes"] and full.seeds == [0, 1, 2]
    assert (full.epochs, full.batch_size, full.rows) == (150, 100, 1000)
    assert full.ganctl == ["tvae", "ctgan"] and full.anchors == list(tables_bench.ANCHORS)
    quick = tables_bench.parse_args(["--quick", "--seeds", "4,5", "--anchors", "none", "--ganctl", "tvae,tvae"])
    assert (quick.epochs, quick.seeds, quick.tables, quick.anchors, quick.ganctl) == (
        2, [4, 5], ["penguins", "diabetes"], [], ["tvae"])
    for argv, says in ((["--tables", "penguins,titanic"], "--tables: unknown titanic"),
                       (["--anchors", "gretel"], "--anchors: unknown gretel"),
                       (["--seeds", "a"], "--seeds: expected whole numbers"),
                       (["--epochs", "0"], "--epochs must be at least 1"),
                       (["--ganctl", "none", "--anchors", "none"], "nothing to run")):
        with pytest.raises(SystemExit, match=says):
            tables_bench.parse_args(argv)


def test_the_tables_bench_trains_ganctl_from_a_shipped_recipe_with_its_data_and_budget(tables_bench):
    from ganctl.plugins import get_host
    from ganctl.recipe.load import load_recipe

    assert tables_bench.ganctl_recipe("tvae", "diabetes") == ROOT / "recipes" / "diabetes-tvae.yaml"
    recipe = tables_bench.ganctl_recipe("ctgan", "wine")
    assert recipe == ROOT / "recipes" / "penguins-ctgan.yaml"  # no wine-ctgan.yaml: the model's first recipe
    assert tables_bench.ganctl_recipe("no-such-model", "wine") is None
    command = tables_bench.ganctl_train_command(recipe, tables_bench.TABLES["wine"], 7, 12, 50, Path("out"), "torch")
    assert command[:5] == [sys.executable, "-m", "ganctl", "train", str(recipe)] and command[-2:] == ["--backend", "torch"]
    sets = [command[i + 1] for i, a in enumerate(command) if a == "--set"]
    loaded = load_recipe(recipe, get_host(), sets)  # the overrides as ganctl reads them
    data = loaded.data.params
    assert (loaded.data.plugin, data.name, data.split, data.numeric_strategy) == ("csv", "wine", "train", "knn")
    assert data.inject_missing.rate == 0.1 and loaded.seed == 7
    assert (loaded.train.epochs, loaded.train.batch_size, loaded.train.sample_every) == (12, 50, 12)
    assert list(loaded.metrics) == []  # no recipe metrics: the anchors measure none during fitting


def test_the_tables_bench_reports_medians_and_ranges_per_table(tables_bench):
    Record = tables_bench.Record
    records = [Record("wine", "ganctl-tvae", s, 10.0 + s, 9.0, None, 5.0 + s, 1000,
                      {"column-similarity": 0.8 + s / 100, "sdmetrics-quality": None}) for s in range(3)]
    records.append(Record("wine", "sdv-copula", 0, 0.2, 0.2, 0.1, 4.0, 1000, {"column-similarity": 0.9,
                                                                              "sdmetrics-quality": 0.75}))
    text = tables_bench.markdown(records, {"column-similarity": True, "missingness": False})
    lines = text.splitlines()
    assert lines[0] == "**wine** (median over 3 seeds, range in brackets)"
    assert lines[2] == ("| model | fit s | fit CPU s | sampling rows/s | new process: sample s | column-similarity ↑ "
                        "| missingness ↓ | sdmetrics-quality ↑ |")
    assert lines[3] == "| --- " * 8 + "|"
    assert lines[4] == "| ganctl-tvae | 11 (10-12) | 9 | n/a | 6 (5-7) | 0.81 (0.8-0.82) | n/a | n/a |"
    assert lines[5] == "| sdv-copula | 0.2 | 0.2 | 1e+04 | 4 | 0.9 | n/a | 0.75 |"
    records.append(Record("wine", "sdv-tvae", 0, 5.5, 5.0, 0.1, 4.0, 1000, {"column-similarity": 0.85,
                                                                           "sdmetrics-quality": 0.7}))
    records.append(Record("wine", "tvae", 0, 22.0, 20.0, 0.1, 4.0, 1000, {"column-similarity": 0.75,
                                                                         "missingness": 0.01}))
    # ganctl's tvae against the ctgan package's (it ran on this table), not SDV's
    assert tables_bench.verdicts(records, {"column-similarity": True, "missingness": False}) == [
        "wine: ganctl-tvae vs tvae: fit time 0.50x; better on column-similarity 0.81 vs 0.75; worse on nothing."]


def test_a_generated_csv_is_scored_against_the_held_out_rows_like_a_run(tmp_path):
    """``real_table``, ``read_table_csv`` and ``evaluate_table_file`` (ganctl/evaluation/table_files.py):
    the held-out rows written back as a CSV file score as a perfect generator; the training rows
    come as read, holes included; a file without a column, or with a word for a number, is refused."""
    from ganctl import api
    from ganctl.evaluation.table_files import evaluate_table_file, read_table_csv, real_table
    from ganctl.plugins import get_host

    pytest.importorskip("pandas")
    (tmp_path / "t.csv").write_text(SMALL_TABLE)
    data = {"plugin": "csv", "path": str(tmp_path / "t.csv"), "split": "train", "max_modes": 3}
    host = get_host()
    train = real_table(data, host, split="train")
    held_out = real_table(data, host)
    assert (train.n, held_out.n) == (48, 12) and held_out.section.params.split == "test"
    raw = train.values
    assert np.isnan(raw["x"]).sum() == np.isnan(train.columns["x"]).sum() > 0  # holes as read, not filled
    assert np.allclose(raw["x"][~np.isnan(raw["x"])], train.columns["x"][~np.isnan(raw["x"])], atol=1e-5)
    assert sum(v is None for v in raw["colour"]) > 0 and set(raw["colour"]) <= {"r", "g", "b", None}

    def write(path: Path, columns: dict, header: list[str]) -> Path:
        rows = [[("" if v is None or (isinstance(v, float) and np.isnan(v)) else repr(float(v))
                  if isinstance(v, float) else str(v)) for v in values] for values in zip(*columns.values(), strict=True)]
        path.write_text("\n".join([",".join(header)] + [",".join(r) for r in rows]) + "\n")
        return path

    same = write(tmp_path / "same.csv", held_out.columns, list(held_out.columns))
    assert {k: (np.asarray(v, object) == np.asarray(held_out.columns[k], object)).sum() for k, v in
            read_table_csv(same, held_out.spec).items() if k != "x"} == {"colour": 12, "n": 12}
    found = {r.metric: r for r in evaluate_table_file(same, data, host, seed=3)}
    assert found["column-similarity"].values["column_similarity"] == 1.0
    assert found["correlation-difference"].values["correlation_difference"] == pytest.approx(0.0, abs=1e-12)
    assert found["missingness"].values["missing_rate_difference"] == 0.0
    protocol = found["missingness"].protocol
    assert (protocol["n_real"], protocol["n_fake"], protocol["seed"], protocol["generated"]) == (12, 12, 3, str(same))
    assert protocol["data"]["split"] == "test"

    short = write(tmp_path / "short.csv", {k: held_out.columns[k] for k in ("x", "n")}, ["x", "n"])
    with pytest.raises(api.DataError, match=r"short\.csv has no column 'colour'"):
        read_table_csv(short, held_out.spec)
    (tmp_path / "word.csv").write_text("x,colour,n\n1.5,r,2\nlots,g,1\n")
    with pytest.raises(api.DataError, match=r"word\.csv:3: column 'x' is numeric .* holds 'lots'"):
        read_table_csv(tmp_path / "word.csv", held_out.spec)


@pytest.mark.slow
def test_the_tables_bench_runs_ganctl_quick_and_scores_its_csv_as_ganctl_evaluate_does(tmp_path):
    """``bench/tables.py`` on ganctl's side only (the anchors are an extra): 1 epoch on the penguins,
    its CSV scored like ``ganctl evaluate RUN`` scores the run with the same rows and seed."""
    out, keep = tmp_path / "tables.json", tmp_path / "keep"
    done = subprocess.run([sys.executable, "bench/tables.py", "--tables", "penguins", "--seeds", "1", "--epochs", "1",
                           "--rows", "69", "--ganctl", "tvae,no-such-model", "--anchors", "none", "--json", str(out),
                           "--keep", str(keep)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "ganctl-no-such-model: no ganctl model 'no-such-model' is installed here" in done.stderr
    assert "| ganctl-tvae |" in done.stdout
    report = json.loads(out.read_text())
    [record] = report["runs"]
    assert (record["table"], record["model"], record["seed"], record["rows"]) == ("penguins", "ganctl-tvae", 1, 69)
    assert record["fit_s"] > 0 and record["fresh_sample_s"] > 0 and record["sample_s"] is None  # ganctl: commands
    assert record["notes"]["held_out_rows"] == 69 and record["notes"]["recipe"] == "recipes/penguins-tvae.yaml"
    run = keep / "penguins" / "ganctl-tvae" / "seed-1" / "run"
    evaluated = subprocess.run([sys.executable, "-m", "ganctl", "evaluate", str(run), "--n", "69", "--seed", "1",
                                "--json"], cwd=ROOT, capture_output=True, text=True)
    assert evaluated.returncode == 0, evaluated.stderr
    for result in json.loads(evaluated.stdout):
        headline = next(iter(result["values"].values()))
        assert record["metrics"][result["metric"]] == pytest.approx(headline, abs=1e-6), result["metric"]


@pytest.mark.slow
def test_the_tables_bench_runs_the_anchors_quick(tmp_path):
    """The anchors' side: SDV's Gaussian copula (seconds) on a table with holes, ctgan's TVAE refused
    there with its reason; the SDMetrics cross-check is computed."""
    pytest.importorskip("sdv")
    pytest.importorskip("ctgan")
    out = tmp_path / "tables.json"
    done = subprocess.run([sys.executable, "bench/tables.py", "--quick", "--tables", "penguins", "--ganctl", "none",
                           "--anchors", "sdv-copula,tvae", "--json", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "tvae on penguins: the ctgan package refuses missing numbers" in done.stdout
    [record] = json.loads(out.read_text())["runs"]
    assert record["model"] == "sdv-copula" and 0 < record["metrics"]["sdmetrics-quality"] <= 1
    assert 0 < record["metrics"]["column-similarity"] <= 1


# -- bench/quantize.py: quantised and pruned exports in one table -----------------------------------


@pytest.fixture
def quantize_bench(monkeypatch) -> Any:
    """bench/quantize.py, imported as a bench script (``python bench/quantize.py``)."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    return importlib.import_module("quantize")


def _pruned_copy(source: Path, path: Path, fraction: float) -> Path:
    """``source`` with the first ``fraction`` of its weight matrix ``W`` set to zero."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    for index, tensor in enumerate(model.graph.initializer):
        if tensor.name == "W":
            values = numpy_helper.to_array(tensor).copy()
            values.reshape(-1)[: round(fraction * values.size)] = 0
            model.graph.initializer[index].CopyFrom(numpy_helper.from_array(values, "W"))
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def test_the_quantize_bench_counts_zeros_and_compressed_bytes(quantize_bench, tmp_path):
    dense = onnx_models.generator(tmp_path / "dense.onnx", latent_dim=16, shape=(8, 8, 1))
    pruned = _pruned_copy(dense, tmp_path / "pruned.onnx", 0.9)
    facts = {name: quantize_bench.file_facts(path) for name, path in [("dense", dense), ("pruned", pruned)]}
    assert facts["dense"]["zeros"] == 0.0 and facts["pruned"]["zeros"] == pytest.approx(0.9, abs=1 / 1024)
    assert facts["pruned"]["bytes"] == facts["dense"]["bytes"] == dense.stat().st_size  # zeros take room raw
    assert facts["pruned"]["compressed_bytes"] < 0.4 * facts["dense"]["compressed_bytes"]  # not compressed
    assert facts["dense"]["compressed_bytes"] <= facts["dense"]["bytes"]
    assert quantize_bench.data_of(dense) == quantize_bench.data_of(pruned) != quantize_bench.data_of(
        onnx_models.generator(tmp_path / "other.onnx", latent_dim=8, shape=(8, 8, 1)))


def _row(path: Path, name: str, fmt: str, sparsity: float | None = None, tuned: str | None = None) -> dict:
    return {"run": f"/runs/{name}", "name": name, "sparsity": sparsity, "fine_tuned_from": tuned, "format": fmt,
            "path": str(path), "bytes": 2048, "compressed_bytes": 1024, "zeros": sparsity or 0.0,
            "fid": 6.3, "c2st": 0.63}


def test_the_quantize_bench_times_written_exports_apart_from_their_quality(quantize_bench, tmp_path, capsys):
    """``--latency-only DIR``: the files an earlier run listed in DIR/table.json, timed side by side
    (two named generator.onnx), their latency added and the quality kept."""
    first = onnx_models.generator(tmp_path / "base" / "generator.onnx", latent_dim=4, num_classes=3)
    second = _pruned_copy(first, tmp_path / "base-p80" / "generator.onnx", 0.8)
    rows = [_row(first, "base", "float32"), _row(second, "base-p80", "float32", 0.8, "/runs/base")]
    floor = {"n": 360, "fid": 2.04, "c2st": 0.49}
    (tmp_path / "table.json").write_text(json.dumps({"runs": [], "groups": [{"data": "d", "rows": rows,
                                                                             "floor": floor}], "latency": None}))
    quantize_bench.main(["--latency-only", str(tmp_path), "--seconds", "0.05"])
    table = json.loads((tmp_path / "table.json").read_text())
    [group] = table["groups"]
    assert group["floor"] == floor and table["latency"]["batches"] == [1, 256]
    for row in group["rows"]:
        assert row["fid"] == 6.3 and row["ms_batch_1"] > 0 and row["ms_batch_256"] > 0
    printed = capsys.readouterr().out
    assert "| floor (real held-out images) | | | | | 2.04 | 0.49 | | |" in printed
    assert "| base-p80 (pruned 80%, fine-tuned) | float32 | 2 | 1 | 80% | 6.3 | 0.63 |" in printed


def test_the_quantize_bench_labels_runs_by_what_was_done_to_them(quantize_bench, tmp_path):
    path = tmp_path / "x.onnx"
    assert quantize_bench.label(_row(path, "qs", "fp16")) == "qs"
    assert quantize_bench.label(_row(path, "qs-ft", "float32", None, "/runs/qs")) == "qs-ft (fine-tuned, not pruned)"
    assert quantize_bench.label(_row(path, "qs-p90", "float32", 0.9)) == "qs-p90 (pruned 90%)"


@pytest.mark.parametrize("argv, expected", [
    ([], "give the run directories and --out DIR"),
    (["runs/x"], "give the run directories and --out DIR"),
    (["--latency-only", "{tmp}", "runs/x"], "give no runs and no --out"),
    (["--latency-only", "{tmp}"], "is not a table this script wrote"),
    (["runs/x", "--out", "{tmp}", "--modes", "fp16,int4"], "list formats among float32, fp16, int8-dynamic"),
    (["runs/x", "--out", "{tmp}", "--formats", "y=fp16"], "--formats y=fp16: no run named 'y' among the runs given"),
    (["runs/x", "--out", "{tmp}", "--formats", "x=fp32"], "--formats x=fp32: 'fp32': list formats among"),
])
def test_the_quantize_bench_refuses_bad_usage(quantize_bench, tmp_path, capsys, argv, expected):
    with pytest.raises(SystemExit) as stopped:
        quantize_bench.main([a.format(tmp=tmp_path) for a in argv])
    assert stopped.value.code == 2 and expected in capsys.readouterr().err


def test_the_quantize_bench_refuses_a_table_whose_exports_are_gone(quantize_bench, tmp_path, capsys):
    rows = [_row(tmp_path / "gone" / "generator.onnx", "gone", "float32")]
    (tmp_path / "table.json").write_text(json.dumps({"groups": [{"data": "d", "rows": rows, "floor": {}}]}))
    with pytest.raises(SystemExit):
        quantize_bench.main(["--latency-only", str(tmp_path)])
    assert "gone/generator.onnx of" in capsys.readouterr().err


@pytest.mark.slow
def test_the_quantize_bench_measures_float32_quantised_and_pruned_runs(runner, tmp_path):
    """End to end on the quickstart's model trained for a few steps, and a copy of it pruned by
    fine-tuning: exports, sizes, FID and C2ST against one floor, then the latency apart."""
    quickstart = ROOT / "recipes" / "quickstart.yaml"
    base, pruned = tmp_path / "qs", tmp_path / "qs-p80"
    few = ["--set", "train.epochs=2", "--set", "train.steps_per_epoch=3", "-q"]
    assert runner.invoke(app, ["train", str(quickstart), "--out", str(base), *few]).exit_code == 0
    prune = "train.prune={sparsity: 0.8, players: [generator], begin_epoch: 0, end_epoch: 1, every: 1}"
    result = runner.invoke(app, ["train", str(quickstart), "--out", str(pruned), *few, "--set", f"init={{from: {base}}}",
                                 "--set", prune])
    assert result.exit_code == 0, result.output
    out = tmp_path / "table"
    command = [sys.executable, "bench/quantize.py", str(base), str(pruned), "--out", str(out), "--modes",
               "float32,fp16", "--n", "60", "--quality-n", "60", "--no-latency"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = json.loads((out / "table.json").read_text())
    [group] = table["groups"]
    assert group["floor"]["n"] == 60 and table["latency"] is None
    assert [(r["name"], r["format"], r["sparsity"]) for r in group["rows"]] == [
        ("qs", "float32", None), ("qs", "fp16", None), ("qs-p80", "float32", 0.8)]
    plain, half, sparse = group["rows"]
    assert half["bytes"] < plain["bytes"] and sparse["bytes"] == plain["bytes"]
    assert sparse["compressed_bytes"] < 0.5 * plain["compressed_bytes"] and sparse["zeros"] > 0.7
    assert all(r["fid"] > 0 and 0 <= r["c2st"] <= 1 and Path(r["path"]).is_file() for r in group["rows"])
    assert "| qs-p80 (pruned 80%, fine-tuned) | float32 |" in done.stdout
    written = {r["path"]: Path(r["path"]).stat().st_mtime_ns for r in group["rows"]}
    again = subprocess.run([*command, "--reuse"], cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: Path(p).stat().st_mtime_ns for p in written} == written  # kept, not exported again
    assert json.loads((out / "table.json").read_text())["groups"][0]["floor"] == group["floor"]

    timed = subprocess.run([sys.executable, "bench/quantize.py", "--latency-only", str(out), "--seconds", "0.05",
                            "--json"], cwd=ROOT, capture_output=True, text=True)
    assert timed.returncode == 0, timed.stderr[-3000:]
    rows = json.loads(timed.stdout)["groups"][0]["rows"]
    assert all(r["ms_batch_1"] > 0 and r["ms_batch_256"] > 0 and r["fid"] > 0 for r in rows)
