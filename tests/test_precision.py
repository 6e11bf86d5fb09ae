"""`train.precision`: Keras dtype policies, loss scaling for float16 (a skipped step is not a NaN
failure, a real divergence still is), exact resume, float32 exports, bad values refused before
anything is written, and float32 runs unchanged."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from ganctl.cli import app
from ganctl.plugins import set_host
from tests.conftest import assert_same_state, final_checkpoint, make_host, trained_in_two_parts

QUICKSTART = "{plugin: dcgan, latent_dim: 32, filters: 64, loss: bce, conditional: true}"
VAE = "{plugin: vae, latent_dim: 4, filters: 8, conditional: true}"
RECIPE = """\
name: prec
seed: 3
data: {{plugin: digits, limit: 256}}
model: {model}
train:
  epochs: {epochs}
  batch_size: 16
  steps_per_epoch: 2
  log_every: 1
  precision: {precision}
"""
GAN = "{plugin: gan, latent_dim: 8, hidden: [32]}"


def backend() -> str:
    return os.environ.get("KERAS_BACKEND", "jax")


def open_recipe(write, text: str):
    from ganctl.console import load_plugins
    from ganctl.recipe.load import load_recipe
    from ganctl.session.assemble import open_session

    host = load_plugins()
    return open_session(load_recipe(write("p.yaml", text), host), host, backend()), host


def dtype(value) -> str:
    import keras

    return keras.backend.standardize_dtype(value.dtype)


def scale_name(engine, player: str) -> str:
    """The checkpoint name of ``player``'s loss scale."""
    target = engine.optimizers[player].dynamic_scale
    return next(name for name, v in engine.state_variables().items() if v is target)


def iterations_name(engine, player: str) -> str:
    """The checkpoint name of ``player``'s update count (the inner optimizer's)."""
    target = engine.optimizers[player].iterations
    return next(name for name, v in engine.state_variables().items() if v is target)


@pytest.mark.backends
@pytest.mark.parametrize(("model", "precision"), [
    (QUICKSTART, "mixed_bfloat16"), (QUICKSTART, "bfloat16"), (VAE, "mixed_bfloat16"), (VAE, "bfloat16"),
])
def test_reduced_precision_trains_with_float32_losses_and_last_layers(write, model, precision):
    session, _ = open_recipe(write, RECIPE.format(model=model, epochs=1, precision=precision))
    import keras

    assert keras.config.dtype_policy().name == "float32"  # the policy does not outlive the model's building
    assert session.precision == precision
    engine, net = session.engine, session.model
    weights = "float32" if precision.startswith("mixed") else "bfloat16"
    layers: dict = {}
    todo = [*engine.networks.values(), net.generator]
    while todo:  # every layer, inside nested networks too (the vae's encoder and decoder)
        layer = todo.pop()
        layers[layer.name] = layer
        todo += getattr(layer, "layers", [])
    hidden = layers["g_up_1"] if "g_up_1" in layers else layers["d_up_1"]
    assert hidden.compute_dtype == "bfloat16" and hidden.variable_dtype == weights
    assert dtype(hidden.kernel) == weights
    last = layers["g_tanh"]
    assert last.compute_dtype == "float32"
    batch = session.dataset.take(np.arange(16))
    labels = batch.labels.astype(np.int32)
    z = np.random.default_rng(0).standard_normal((16, net.latent_dim)).astype(np.float32)
    for player in net.players:
        loss, _ = net.loss(player, keras.ops.convert_to_tensor(batch.images), keras.ops.convert_to_tensor(labels),
                           keras.ops.convert_to_tensor(z))
        assert dtype(loss) == "float32"
    before = engine.state_arrays()
    for _ in range(2):
        for player in net.players:
            logs = engine.step(player, batch.images, labels, z)
            assert logs and all(np.isfinite(v) for v in logs.values()), logs
    after = engine.state_arrays()
    assert all(a.dtype != np.dtype("V2") for a in after.values())  # bfloat16 is stored as float32
    assert any(not np.array_equal(after[k], before[k]) for k in before if k.startswith("model/"))
    images = engine.generate(z[:4], labels[:4])
    assert images.dtype == np.float32 and np.all(np.isfinite(images))


@pytest.mark.backends
def test_a_float16_overflow_skips_the_update_and_is_no_nan_failure(write):
    from ganctl.training.loop import Trainer
    from ganctl.training.progress import reporter

    session, host = open_recipe(write, RECIPE.format(model=GAN, epochs=1, precision="mixed_float16"))
    engine = session.engine
    optimizer = engine.optimizers["generator"]
    assert type(optimizer).__name__ == "LossScaleOptimizer"
    name = scale_name(engine, "generator")
    engine.load_state({name: np.float32(1e38)}, only=[name])  # any gradient overflows float16
    before = engine.state_arrays()
    trainer = Trainer(session, reporter(True, 1, None), host)
    batch = next(session.dataset.batches(16, seed=0, epoch=0))
    logs = trainer.train_step(0, batch, {"generator": 1, "discriminator": 1})  # no NonFinite raised
    assert all(np.isfinite(v) for v in logs.values()), logs
    after = engine.state_arrays()
    mine = {id(v) for v in session.model.generator.trainable_variables}
    generator = [k for k, v in engine.state_variables().items() if id(v) in mine]
    assert generator and all(np.array_equal(after[k], before[k]) for k in generator)  # skipped
    assert after[name] == np.float32(5e37)  # the scale halved
    assert int(np.asarray(after[iterations_name(engine, "generator")])) == 0  # no update counted


@pytest.mark.backends
def test_a_real_divergence_under_float16_is_still_a_nan_failure(runner, write, tmp_path):
    from tests.test_train import TINY, ExplodingPlugin

    set_host(make_host((ExplodingPlugin, "exploding")))
    text = TINY.replace("plugin: gan, latent_dim: 8, hidden: [32]", "plugin: exploding") + "  precision: mixed_float16\n"
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(write("nan.yaml", text)), "--out", str(out)])
    assert result.exit_code == 1
    assert "the net loss became nan at step 11" in result.stderr
    assert json.loads((out / "run.json").read_text())["status"] == "failed"


@pytest.mark.slow  # three short trainings and an ONNX export
@pytest.mark.backends
def test_mixed_float16_resumes_exactly_and_exports_float32(runner, write, tmp_path):
    text = RECIPE.format(model=GAN, epochs=2, precision="mixed_float16") + (
        "  ema: 0.9\n  optimizer: {schedule: {type: warmup, warmup_steps: 3}}\nexport: [onnx]\n")
    recipe = write("f16.yaml", text)
    straight = tmp_path / "straight"
    result = runner.invoke(app, ["train", str(recipe), "--out", str(straight), "-q"])
    assert result.exit_code == 0, result.output
    expected = final_checkpoint(straight)
    scales = [k for k in expected if k.endswith("dynamic_scale")]
    assert len(scales) == 2  # one per player, in the checkpoint
    assert_same_state(trained_in_two_parts(runner, recipe, tmp_path / "parts", 1, 2), expected)
    info = json.loads((straight / "run.json").read_text())
    assert info["precision"] == "mixed_float16"
    assert info["exports"]["onnx"]["max_abs_diff"] <= info["exports"]["onnx"]["atol"]
    import onnx

    graph = onnx.load(info["exports"]["onnx"]["path"]).graph
    half = {onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
    assert graph.initializer and not {t.data_type for t in graph.initializer} & half
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    from ganctl.console import load_plugins
    from ganctl.runs.trained import open_trained

    trained = open_trained(straight, load_plugins())
    assert trained.session.precision == "float32" and trained.weights == "ema"
    assert {dtype(v) for v in trained.session.model.generator.variables} == {"float32"}


@pytest.mark.parametrize(("value", "hint"), [
    ("float16", "use mixed_float16"), ("fp16", "use mixed_float16"), ("bf16", "mixed_bfloat16"),
    ("int8", "mixed_bfloat16 on CPUs"),
])
def test_a_bad_precision_is_one_clear_error_and_nothing_is_written(runner, write, tmp_path, value, hint):
    recipe = write("bad.yaml", RECIPE.format(model=GAN, epochs=1, precision="float32"))
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run"),
                                 "--set", f"train.precision={value}"])
    assert result.exit_code == 2, result.output
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "train.precision" in line and hint in line, line
    assert not (tmp_path / "run").exists()


def test_a_precision_the_device_cannot_run_is_refused_before_anything_is_written(runner, write, tmp_path,
                                                                                monkeypatch):
    from ganctl.session import precision

    monkeypatch.setattr(precision, "_probed", {})
    monkeypatch.setattr(precision, "_probe", lambda name: "No OpKernel for Conv2D with T=DT_HALF")
    recipe = write("f16.yaml", RECIPE.format(model=GAN, epochs=1, precision="mixed_float16"))
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "train.precision is mixed_float16" in line and "float16" in line and "DT_HALF" in line
    assert "Set train.precision: mixed_bfloat16" in line
    assert not (tmp_path / "run").exists()


def test_the_device_probe_passes_here(write):
    from ganctl.session.precision import check_precision

    open_recipe(write, RECIPE.format(model=GAN, epochs=1, precision="float32"))  # activates the backend
    for name in ("mixed_bfloat16", "bfloat16", "mixed_float16"):
        check_precision(name, backend(), "p.yaml")  # CPUs compute all three with these frameworks


def test_float32_runs_keep_their_recipe_and_no_policy_leaks(write):
    from ganctl.console import load_plugins
    from ganctl.recipe.load import load_recipe
    from ganctl.runs.rundir import recipe_hash

    host = load_plugins()
    plain = RECIPE.format(model=GAN, epochs=1, precision="float32").replace("  precision: float32\n", "")
    explicit = load_recipe(write("a.yaml", RECIPE.format(model=GAN, epochs=1, precision="float32")), host)
    implicit = load_recipe(write("b.yaml", plain), host)
    assert "precision" not in implicit.to_dict()["train"]
    assert recipe_hash(explicit.to_dict()) == recipe_hash(implicit.to_dict())
    mixed = load_recipe(write("c.yaml", RECIPE.format(model=GAN, epochs=1, precision="mixed_bfloat16")), host)
    assert mixed.to_dict()["train"]["precision"] == "mixed_bfloat16"
    open_recipe(write, RECIPE.format(model=GAN, epochs=1, precision="mixed_bfloat16"))
    session, _ = open_recipe(write, plain)  # after a mixed session: float32 again
    assert session.precision == "float32"
    assert all(layer.compute_dtype == "float32" for layer in session.model.generator.layers)
    assert all(type(o).__name__ != "LossScaleOptimizer" for o in session.engine.optimizers.values())



def test_init_copies_optimizer_state_between_precisions(runner, write, tmp_path):
    source = tmp_path / "source"
    recipe = write("src.yaml", RECIPE.format(model=GAN, epochs=1, precision="float32"))
    assert runner.invoke(app, ["train", str(recipe), "--out", str(source), "-q"]).exit_code == 0
    text = RECIPE.format(model=GAN, epochs=1, precision="mixed_float16") + f"init: {{from: {source}, optimizer: true}}\n"
    result = runner.invoke(app, ["train", str(write("dst.yaml", text)), "--out", str(tmp_path / "dst"), "-q"])
    assert result.exit_code == 0, result.output
    state = final_checkpoint(tmp_path / "dst")
    counts = {k: int(v) for k, v in state.items() if k.startswith("optimizer/generator/") and k.endswith("/iteration")}
    assert sorted(counts.values()) == [0, 4]  # the copied 2 updates and 2 more; the wrapper's own count is unused
    assert any(k.endswith("generator_optimizer/iteration") and v == 4 for k, v in counts.items())
