"""`ganctl export`: the ONNX contract, parity with Keras, other formats, failure safety, bad input."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ganctl import api
from ganctl.cli import app
from ganctl.engine.backends import BACKENDS
from ganctl.plugins import set_host

from .conftest import make_host

pytestmark = pytest.mark.backends

RECIPE = """\
name: tiny
seed: 3
data: {{plugin: digits, limit: 256}}
model: {model}
train: {{epochs: 1, batch_size: 32, steps_per_epoch: 2}}
export: {export}
"""
CONDITIONAL = "{plugin: dcgan, latent_dim: 8, filters: 8, conditional: true}"
UNCONDITIONAL = "{plugin: gan, latent_dim: 6, hidden: [16]}"
METADATA = {"ganctl.format", "ganctl.version", "ganctl.kind", "ganctl.model", "ganctl.latent_dim", "ganctl.num_classes",
            "ganctl.class_names", "ganctl.value_range", "ganctl.layout", "ganctl.data_shape",
            "ganctl.recipe_hash", "ganctl.data", "ganctl.backend", "ganctl.step"}


def backend() -> str:
    return os.environ.get("KERAS_BACKEND", "jax")


_TRAINED: dict[tuple[str, str], Path] = {}


def trained(runner, write, tmp_path: Path, model: str = CONDITIONAL, export: str = "[]", name: str = "run") -> Path:
    """A copy (in tmp_path) of a run trained for two steps; each recipe is trained once per module."""
    key = (model, export)
    if key not in _TRAINED:
        recipe = write(f"{name}.yaml", RECIPE.format(model=model, export=export))
        result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / f"{name}-original"), "-q"])
        assert result.exit_code == 0, result.output
        _TRAINED[key] = tmp_path / f"{name}-original"
    shutil.copytree(_TRAINED[key], tmp_path / name)
    return tmp_path / name


def shape(value) -> list:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def test_onnx_export_follows_the_contract_and_matches_keras(runner, write, tmp_path):
    import onnx
    import onnxruntime as ort

    run = trained(runner, write, tmp_path)
    result = runner.invoke(app, ["export", str(run), "--onnx"])
    assert result.exit_code == 0, result.output
    path = run / "exports" / "generator.onnx"
    assert f"onnx: wrote {path}" in result.stdout and "batch sizes 1, 7, 64" in result.stdout
    assert sorted(p.name for p in path.parent.iterdir()) == ["generator.onnx"]  # self-contained, no scratch left

    model = onnx.load(str(path), load_external_data=False)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    onnx.checker.check_model(model, full_check=True)
    inputs = {i.name: i for i in model.graph.input}
    assert list(inputs) == ["z", "label"] and [o.name for o in model.graph.output] == ["images"]
    assert inputs["z"].type.tensor_type.elem_type == onnx.TensorProto.FLOAT and shape(inputs["z"]) == ["batch", 8]
    assert inputs["label"].type.tensor_type.elem_type == onnx.TensorProto.INT64 and shape(inputs["label"]) == ["batch"]
    assert shape(model.graph.output[0]) == ["batch", 8, 8, 1]
    meta = {p.key: p.value for p in model.metadata_props}
    assert set(meta) == METADATA
    assert (meta["ganctl.model"], meta["ganctl.backend"], meta["ganctl.step"]) == ("dcgan", backend(), "2")
    assert (meta["ganctl.latent_dim"], meta["ganctl.num_classes"]) == ("8", "10")
    assert json.loads(meta["ganctl.data_shape"]) == [8, 8, 1] and json.loads(meta["ganctl.value_range"]) == [-1, 1]
    info = json.loads((run / "run.json").read_text())
    assert meta["ganctl.recipe_hash"] == info["recipe_hash"]
    assert json.loads(meta["ganctl.data"]) == {"plugin": "digits", "split": "train", "limit": 256}
    record = info["exports"]["onnx"]
    assert record["max_abs_diff"] <= 1e-4 and record["step"] == 2 and len(record["sha256"]) == 64

    # the batch axis is dynamic, and the labels steer the output
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    z = np.random.default_rng(0).standard_normal((5, 8), dtype=np.float32)
    same = session.run(["images"], {"z": z, "label": np.zeros(5, np.int64)})[0]
    other = session.run(["images"], {"z": z, "label": np.full(5, 7, np.int64)})[0]
    assert same.shape == (5, 8, 8, 1) and np.abs(same).max() <= 1.0
    assert not np.allclose(same, other)


def test_unconditional_export_has_only_z(runner, write, tmp_path):
    import onnx

    run = trained(runner, write, tmp_path, model=UNCONDITIONAL)
    out = tmp_path / "deploy" / "g.onnx"
    result = runner.invoke(app, ["export", str(run), "--onnx", "--out", str(out), "--atol", "1e-5"])
    assert result.exit_code == 0, result.output
    model = onnx.load(str(out))
    assert [i.name for i in model.graph.input] == ["z"] and [o.name for o in model.graph.output] == ["images"]
    meta = {p.key: p.value for p in model.metadata_props}
    assert (meta["ganctl.num_classes"], meta["ganctl.latent_dim"], meta["ganctl.model"]) == ("0", "6", "gan")


def test_keras_format_reloads_in_safe_mode(runner, write, tmp_path):
    import keras

    run = trained(runner, write, tmp_path)
    result = runner.invoke(app, ["export", str(run), "--format", "keras"])
    assert result.exit_code == 0, result.output
    model = keras.saving.load_model(str(run / "exports" / "generator.keras"), safe_mode=True)
    assert [i.name for i in model.inputs] == ["z", "label"]
    assert json.loads((run / "run.json").read_text())["exports"]["keras"]["max_abs_diff"] == 0.0


def test_recipe_export_list_runs_at_the_end_of_training(runner, write, tmp_path):
    run = trained(runner, write, tmp_path, model=UNCONDITIONAL, export="[onnx, keras]")
    assert sorted(p.name for p in (run / "exports").iterdir()) == ["generator.keras", "generator.onnx"]
    # and `ganctl export RUN` without a format re-runs that list
    before = (run / "exports" / "generator.onnx").stat().st_mtime_ns
    result = runner.invoke(app, ["export", str(run)])
    assert result.exit_code == 0, result.output
    assert "onnx: wrote" in result.stdout and "keras: wrote" in result.stdout
    assert (run / "exports" / "generator.onnx").stat().st_mtime_ns >= before


# -- failures leave nothing behind ----------------------------------------------------------------


class Skewed(api.Exporter):
    """A broken exporter: its file computes the generator plus an offset."""

    suffix = ".npy"

    class Params(api.Params):
        offset: float = 1e-3

    def export(self, source, path):
        self.generator = source.generator
        np.save(path, np.zeros(1))

    def load(self, path):
        import keras

        def run(z, labels):
            inputs = z if labels is None else [z, labels.astype("int32")]
            return keras.ops.convert_to_numpy(self.generator(inputs, training=False)) + self.params.offset

        return run


class Unavailable(Skewed):
    """An exporter whose converter is missing."""

    def unavailable(self, backend):
        return "needs the frobnicate package; install with: pip install frobnicate"


class Crashing(Skewed):
    """An exporter whose converter raises."""

    def export(self, source, path):
        path.write_bytes(b"half a file")
        raise ValueError("unsupported op: Frobnicate")


class Broken:
    @staticmethod
    @api.hookimpl
    def register_exporters(register):
        register("skewed", Skewed)
        register("unavailable", Unavailable)
        register("crashing", Crashing)


@pytest.fixture
def broken_host():
    host = make_host((Broken, "broken"))
    set_host(host)
    return host


def test_an_export_that_differs_from_keras_is_refused_and_keeps_the_old_file(runner, write, tmp_path, broken_host):
    run = trained(runner, write, tmp_path, model=UNCONDITIONAL)
    out = tmp_path / "model.npy"
    out.write_bytes(b"an earlier export")
    result = runner.invoke(app, ["export", str(run), "--format", "skewed", "--out", str(out)])
    assert result.exit_code == 1
    assert "does not compute what Keras computes: max abs difference 0.001 > --atol 0.0001" in result.stderr
    assert "Traceback" not in result.output
    assert out.read_bytes() == b"an earlier export"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no scratch left
    assert "exports" not in json.loads((run / "run.json").read_text())
    # a tolerance the user chooses lets it through
    result = runner.invoke(app, ["export", str(run), "--format", "skewed", "--out", str(out), "--atol", "0.01"])
    assert result.exit_code == 0, result.output
    assert np.load(out).shape == (1,)


def test_a_converter_that_raises_is_a_clear_error_and_writes_nothing(runner, write, tmp_path, broken_host):
    run = trained(runner, write, tmp_path, model=UNCONDITIONAL)
    out = tmp_path / "model.npy"
    result = runner.invoke(app, ["export", str(run), "--format", "crashing", "--out", str(out)])
    assert result.exit_code == 1
    assert "the crashing exporter failed on this model (ValueError: unsupported op: Frobnicate)" in result.stderr
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_unavailable_exporter_in_a_recipe_stops_training_before_it_starts(runner, write, tmp_path, broken_host):
    recipe = write("r.yaml", RECIPE.format(model=UNCONDITIONAL, export="[unavailable]"))
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "export[0]: the unavailable exporter cannot run" in result.stderr
    assert "pip install frobnicate" in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "onnx", "--format", "keras", "--out", "x.onnx"], "--out names one file"),
        (["--format", "keras", "--opset", "17"], "--opset is an ONNX setting"),
        (["--format", "onxx"], "'onxx'"),
        (["--onnx", "--out", "model.keras"], "must end in .onnx"),
        (["--onnx", "--atol", "0"], "--atol must be positive"),
        (["--onnx", "--opset", "3"], "opset"),
    ],
)
def test_bad_export_options_are_clear_errors(runner, write, tmp_path, args, message):
    run = trained(runner, write, tmp_path, model=UNCONDITIONAL)
    result = runner.invoke(app, ["export", str(run), *args])
    assert result.exit_code != 0
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert not (run / "exports").exists()


def test_export_needs_a_trained_run(runner, tmp_path):
    result = runner.invoke(app, ["export", str(tmp_path), "--onnx"])
    assert result.exit_code == 2 and "is not a ganctl run directory" in result.stderr
    result = runner.invoke(app, ["export", "--onnx"])
    assert result.exit_code == 2 and "give the run directory" in result.stderr


def test_list_shows_every_exporter_and_why_one_is_unavailable(runner):
    result = runner.invoke(app, ["export", "--list", "--backend", "torch"])
    assert result.exit_code == 0, result.output
    for name in ("onnx", "keras", "tf_saved_model"):
        assert name in result.stdout
    assert "--backend" in result.stdout  # tf_saved_model explains how to get it from a torch run


# -- other backends and formats -------------------------------------------------------------------


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


@pytest.mark.parametrize("other", BACKENDS)
def test_a_run_exports_from_another_backend(runner, write, tmp_path, other):
    """Weights are portable: a run trained here exports to ONNX from each other installed backend."""
    if other == backend():
        pytest.skip("same backend")
    if not _installed(other):
        pytest.skip(f"{other} is not installed")
    if other == "tensorflow" and not _installed("tf2onnx"):  # the onnx exporter's converter on tensorflow
        pytest.skip("tf2onnx is not installed (pip install 'ganctl[tensorflow]')")
    run = trained(runner, write, tmp_path)
    out = tmp_path / f"{other}.onnx"
    done = subprocess.run([sys.executable, "-m", "ganctl", "export", str(run), "--onnx", "--backend", other,
                           "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"({other})" in done.stdout or f", {other})" in done.stdout
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["ganctl.backend"] == other


def test_saved_model_export_where_keras_supports_it(runner, write, tmp_path):
    run = trained(runner, write, tmp_path)
    result = runner.invoke(app, ["export", str(run), "--format", "tf_saved_model"])
    if backend() == "torch" or not _installed("tensorflow"):
        assert result.exit_code == 2 and "cannot run on the" in result.stderr
        return
    assert result.exit_code == 0, result.output
    assert (run / "exports" / "generator" / "saved_model.pb").is_file()


# -- serving the export -----------------------------------------------------------------------------


def test_generate_gives_the_same_images_from_the_run_and_from_its_onnx_export(runner, write, tmp_path):
    run = trained(runner, write, tmp_path)
    assert runner.invoke(app, ["export", str(run), "--onnx"]).exit_code == 0
    outputs = {}
    for name, source in (("keras", run), ("onnx", run / "exports" / "generator.onnx")):
        out = tmp_path / f"{name}.npz"
        result = runner.invoke(app, ["generate", str(source), "-n", "300", "--seed", "11", "--out", str(out)])
        assert result.exit_code == 0, result.output
        with np.load(out) as archive:
            outputs[name] = (archive["images"], archive["labels"])
    np.testing.assert_array_equal(outputs["keras"][1], outputs["onnx"][1])
    np.testing.assert_allclose(outputs["onnx"][0], outputs["keras"][0], atol=1e-4, rtol=0)
    assert outputs["keras"][0].std() > 0.01  # not a degenerate comparison


def test_the_plain_onnxruntime_example_in_the_docs_runs(runner, write, tmp_path):
    """docs/export.md shows how to sample without ganctl; it must match `ganctl generate`."""
    import re

    run = trained(runner, write, tmp_path)
    assert runner.invoke(app, ["export", str(run), "--onnx"]).exit_code == 0
    doc = (Path(__file__).parents[1] / "docs" / "export.md").read_text()
    snippet = re.search(r"```python\n(import numpy as np\nimport onnxruntime.*?)```", doc, re.S).group(1)
    scope: dict = {}
    exec(snippet.replace("RUN_DIR", str(run)), scope)
    out = tmp_path / "ganctl.npz"
    assert runner.invoke(app, ["generate", str(run / "exports" / "generator.onnx"), "-n", "16", "--seed", "0",
                               "--out", str(out)]).exit_code == 0
    with np.load(out) as archive:
        np.testing.assert_allclose(scope["images"], archive["images"], atol=1e-6)


def test_openvino_export_where_it_can_run(runner, write, tmp_path):
    run = trained(runner, write, tmp_path)
    result = runner.invoke(app, ["export", str(run), "--format", "openvino"])
    if backend() == "jax" or not _installed("openvino"):
        assert result.exit_code == 2 and "cannot run on the" in result.stderr
        assert ("--backend torch" in result.stderr) if backend() == "jax" else ("ganctl[openvino]" in result.stderr)
        return
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (run / "exports" / "generator").iterdir()) == ["generator.bin", "generator.xml"]


def test_litert_export_from_tensorflow(runner, write, tmp_path):
    """LiteRT runs an MLP generator; DCGAN's convolutions become TF 'select' ops it cannot run."""
    mlp = trained(runner, write, tmp_path, model=UNCONDITIONAL, name="mlp")
    result = runner.invoke(app, ["export", str(mlp), "--format", "litert"])
    if backend() != "tensorflow":
        assert result.exit_code == 2 and "--backend tensorflow" in result.stderr
        return
    assert result.exit_code == 0, result.output
    assert (mlp / "exports" / "generator.tflite").is_file()
    dcgan = trained(runner, write, tmp_path, name="dcgan")
    result = runner.invoke(app, ["export", str(dcgan), "--format", "litert"])
    assert result.exit_code == 1 and "cannot be run back for the check against Keras" in result.stderr
    assert "Traceback" not in result.output and not (dcgan / "exports" / "generator.tflite").exists()
