"""Quantised ONNX exports (`ganctl export RUN --onnx --quantize MODE`, `quantize:` in a recipe's
export: list): written from a checked float32 export, checked for quality against the float32
generator (image error, FID and C2ST), refused when FID rises too much, and compared by `ganctl bench`."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from ganctl import api
from ganctl.cli import app

from .test_export import RECIPE as TINY  # a tiny run with an export: list

MODES = ("fp16", "int8-dynamic", "int8-static")
QUICKSTART = Path(__file__).resolve().parents[1] / "recipes" / "quickstart.yaml"
FEW_STEPS = ["--set", "train.epochs=1", "--set", "train.steps_per_epoch=3"]
N = ["--quality-n", "200"]

_RUNS: dict[str, Path] = {}


def quickstart_run(runner, tmp_path: Path, name: str = "run") -> Path:
    """A copy of the quickstart's dcgan (latent 32, 64 filters, conditional) trained for three steps."""
    key = os.environ.get("KERAS_BACKEND", "jax")
    if key not in _RUNS:
        original = tmp_path / "quickstart-original"
        result = runner.invoke(app, ["train", str(QUICKSTART), *FEW_STEPS, "--out", str(original), "-q"])
        assert result.exit_code == 0, result.output
        _RUNS[key] = original
    shutil.copytree(_RUNS[key], tmp_path / name)
    return tmp_path / name


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(path: Path):
    import onnx

    return onnx.load(str(path))


def metadata(model) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_writes_a_checked_quantised_export(runner, tmp_path, mode):
    import onnx

    run = quickstart_run(runner, tmp_path)
    result = runner.invoke(app, ["export", str(run), "--onnx", "--quantize", mode, *N])
    assert result.exit_code == 0, result.output
    path = run / "exports" / f"generator-{mode}.onnx"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no float32 file, no scratch left
    assert "images: max abs difference" in result.stdout and "fid" in result.stdout and "c2st" in result.stdout

    model = load(path)
    onnx.checker.check_model(model, full_check=True)
    found = metadata(model)
    assert found["ganctl.quantization"] == mode and found["ganctl.kind"] == "generator"
    assert found["ganctl.latent_dim"] == "32" and found["ganctl.num_classes"] == "10"
    assert [i.name for i in model.graph.input] == ["z", "label"] and [o.name for o in model.graph.output] == ["images"]
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # float32 in and out
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    weights = {onnx.helper.tensor_dtype_to_np_dtype(t.data_type) for t in model.graph.initializer}
    assert np.dtype(np.float16 if mode == "fp16" else np.int8) in weights
    ops = {node.op_type for node in model.graph.node}
    assert {"fp16": "Cast", "int8-dynamic": "ConvInteger", "int8-static": "QuantizeLinear"}[mode] in ops

    record = json.loads((run / "run.json").read_text())["exports"][f"onnx-{mode}"]
    quality = record["quality"]
    assert record["path"] == str(path) and record["max_abs_diff"] <= 1e-4  # the float32 file matched Keras
    assert quality["quantization"] == mode and quality["max_fid_increase"] == 1.0
    assert 0 < quality["mean_abs_diff"] <= quality["max_abs_diff"] < {"fp16": 0.01}.get(mode, 0.5)
    assert set(quality["metrics"]) == {"fid", "c2st"}
    fid = quality["metrics"]["fid"]
    assert fid["quantized"] - fid["float32"] <= 1.0

    # ganctl generate runs it unchanged, and draws what Keras draws, within the measured error
    grid = runner.invoke(app, ["generate", str(path), "-n", "20", "--seed", "5", "--out", str(tmp_path / "q.npz")])
    keras = runner.invoke(app, ["generate", str(run), "-n", "20", "--seed", "5", "--out", str(tmp_path / "k.npz")])
    assert grid.exit_code == 0 and keras.exit_code == 0, grid.output + keras.output
    quantised, exact = (np.load(tmp_path / f"{x}.npz")["images"] for x in "qk")
    assert quantised.dtype == np.float32 and quantised.shape == exact.shape
    assert float(np.max(np.abs(quantised - exact))) < {"fp16": 0.01}.get(mode, 0.5)


@pytest.mark.slow
def test_a_quantised_export_that_loses_too_much_fid_is_refused_and_nothing_is_written(runner, tmp_path,
                                                                                     monkeypatch):
    from ganctl.evaluation import quantised

    run = quickstart_run(runner, tmp_path)
    assert runner.invoke(app, ["export", str(run), "--onnx", "--quantize", "int8-static", *N]).exit_code == 0
    path = run / "exports" / "generator-int8-static.onnx"
    before, info = digest(path), json.loads((run / "run.json").read_text())
    assert set(info["exports"]["onnx-int8-static"]["quality"]["metrics"]) >= {"fid", "c2st"}

    # Whether int8 raises or lowers FID on a generator is noise-sized, either sign; so the second
    # export's check is made to see a quantisation that costs 5 in FID, through the real scores.
    real = quantised.judge

    def costly(*args, **kwargs):
        score = real(*args, **kwargs)

        def judged(draw):
            found = score(draw)
            return {**found, "fid": (found["fid"][0], found["fid"][0] + 5.0)}

        return judged

    monkeypatch.setattr(quantised, "judge", costly)
    result = runner.invoke(app, ["export", str(run), "--onnx", "--quantize", "int8-static", *N,
                                 "--max-fid-increase", "1"])
    assert result.exit_code == 1
    assert "draws worse images" in result.output and "--max-fid-increase" in result.output
    assert "Nothing was written" in result.output and "Traceback" not in result.output
    assert digest(path) == before  # the earlier export stays, and no scratch file is left
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert json.loads((run / "run.json").read_text())["exports"] == info["exports"]


@pytest.mark.slow
def test_bench_compares_float32_and_quantised_files(runner, tmp_path):
    run = quickstart_run(runner, tmp_path)
    assert runner.invoke(app, ["export", str(run), "--onnx"]).exit_code == 0
    assert runner.invoke(app, ["export", str(run), "--onnx", "--quantize", "fp16", *N]).exit_code == 0
    files = [run / "exports" / "generator.onnx", run / "exports" / "generator-fp16.onnx"]
    result = runner.invoke(app, ["bench", *map(str, files), "--batch", "1,256", "--repeats", "2", "--warmup", "0",
                                 "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["results"]
    assert [(r["path"], r["batch"]) for r in rows] == [("generator.onnx", 1), ("generator-fp16.onnx", 1),
                                                      ("generator.onnx", 256), ("generator-fp16.onnx", 256)]
    assert [r["bytes"] for r in rows[:2]] == [f.stat().st_size for f in files] and rows[1]["bytes"] < rows[0]["bytes"]
    assert [r["quantization"] for r in rows[:2]] == ["", "fp16"] and rows[0]["speedup"] == 1.0
    table = runner.invoke(app, ["bench", *map(str, files), "--batch", "1", "--repeats", "1", "--warmup", "0"])
    assert table.exit_code == 0 and "size KB" in table.stdout and "generator-fp16.onnx" in table.stdout

    mismatch = runner.invoke(app, ["bench", str(files[0]), str(run)])
    assert mismatch.exit_code == 2 and "is not an ONNX file" in mismatch.output


def test_a_recipe_export_list_can_quantise_and_plain_exports_keep_their_resolved_recipe(runner, write, tmp_path):
    model = "{plugin: dcgan, latent_dim: 8, filters: 8, conditional: true}"
    recipe = write("q.yaml", TINY.format(model=model, export="[onnx, {plugin: onnx, quantize: int8-dynamic}]"))
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    exports = tmp_path / "run" / "exports"
    assert sorted(p.name for p in exports.iterdir()) == ["generator-int8-dynamic.onnx", "generator.onnx"]
    assert "exported onnx-int8-dynamic" in result.stdout and "fid" in result.stdout
    assert metadata(load(exports / "generator-int8-dynamic.onnx"))["ganctl.quantization"] == "int8-dynamic"
    assert "ganctl.quantization" not in metadata(load(exports / "generator.onnx"))
    resolved = (tmp_path / "run" / "recipe.yaml").read_text()
    assert resolved.count("quantize") == 1  # only the entry that asks for it: other exports' recipes are unchanged


BAD_RECIPES = [
    ("[{plugin: keras, quantize: fp16}]", "quantize"),
    ("[{plugin: onnx, quantize: int4}]", "int8-static"),
]


@pytest.mark.parametrize(("export", "expected"), BAD_RECIPES)
def test_bad_quantize_in_a_recipe_is_refused_before_training(runner, write, tmp_path, export, expected):
    recipe = write("bad.yaml", TINY.format(model="{plugin: gan, latent_dim: 6, hidden: [16]}", export=export))
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert f"{recipe}:6" in result.output and expected in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_bad_quantize_options_are_refused_before_anything_is_written(runner, write, tmp_path):
    recipe = write("gan.yaml", TINY.format(model="{plugin: gan, latent_dim: 6, hidden: [16]}", export="[]"))
    assert runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run"), "-q"]).exit_code == 0
    run = tmp_path / "run"
    cases = [
        (["--onnx", "--quantize", "int4"], "not a quantisation; choose one of fp16, int8-dynamic, int8-static"),
        (["--format", "keras", "--quantize", "fp16"], "--quantize is an ONNX setting"),
        (["--onnx", "--format", "keras", "--quantize", "fp16"], "--quantize is an ONNX setting"),
        (["--onnx", "--max-fid-increase", "2"], "use them with --quantize"),
        (["--onnx", "--quantize", "fp16", "--quality-n", "1"], "--quality-n must be at least 2"),
        (["--onnx", "--quantize", "fp16", "--max-fid-increase", "-1"], "--max-fid-increase must be 0 or more"),
    ]
    for options, expected in cases:
        result = runner.invoke(app, ["export", str(run), *options])
        assert result.exit_code == 2, (options, result.output)
        assert expected in result.output and "Traceback" not in result.output, (options, result.output)
    assert not (run / "exports").exists() or not list((run / "exports").iterdir())


def test_quantising_a_classifier_is_refused(runner, write, tmp_path):
    recipe = write("c.yaml", TINY.format(model="{plugin: classifier, filters: 8, features: 16}", export="[]"))
    assert runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run"), "-q"]).exit_code == 0
    result = runner.invoke(app, ["export", str(tmp_path / "run"), "--onnx", "--quantize", "int8-dynamic"])
    assert result.exit_code == 2 and "quantisation is for generators" in result.output, result.output
    assert not (tmp_path / "run" / "exports").exists() or not list((tmp_path / "run" / "exports").iterdir())


def test_int8_on_a_graph_without_quantisable_operations_is_refused(tmp_path):
    """onnxruntime quantises convolutions and matrix products; a graph of neither is refused with that reason."""
    import onnx
    from onnx import TensorProto, helper

    from ganctl_export.quantize import quantize

    graph = helper.make_graph(
        [helper.make_node("Tanh", ["z"], ["flat"]),
         helper.make_node("Reshape", ["flat", "shape"], ["images"])],
        "tanh", [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 2, 2, 1])],
        [helper.make_tensor("shape", TensorProto.INT64, [4], [-1, 2, 2, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    exported = tmp_path / "float.onnx"
    onnx.save_model(model, str(exported))
    source = api.ExportSource(generator=None, spec=api.DataSpec(height=2, width=2, channels=1), latent_dim=4,
                              conditional=False, backend="jax", metadata={})
    for mode in ("int8-dynamic", "int8-static"):
        with pytest.raises(api.ConfigError, match=f"{mode} quantises none of this generator's operations"):
            quantize(source, exported, tmp_path / f"{mode}.onnx", mode)
        assert not (tmp_path / f"{mode}.onnx").exists()


@pytest.mark.slow
@pytest.mark.backends
@pytest.mark.parametrize("mode", ["fp16", "int8-static"])
def test_each_backend_s_export_quantises(runner, write, tmp_path, mode):
    """The graphs of jax2onnx, tf2onnx and PyTorch's exporter differ; each quantises and passes its check."""
    model = "{plugin: dcgan, latent_dim: 8, filters: 8, conditional: true}"
    recipe = write("b.yaml", TINY.format(model=model, export="[]"))
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", str(recipe), "--out", str(run), "-q"]).exit_code == 0
    result = runner.invoke(app, ["export", str(run), "--onnx", "--quantize", mode, *N])
    assert result.exit_code == 0, result.output
    record = json.loads((run / "run.json").read_text())["exports"][f"onnx-{mode}"]
    assert record["backend"] == os.environ.get("KERAS_BACKEND", "jax") and record["quality"]["quantization"] == mode
    assert metadata(load(run / "exports" / f"generator-{mode}.onnx"))["ganctl.quantization"] == mode
