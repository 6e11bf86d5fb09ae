"""The ``vae`` model plugin (plugins/ganctl_models/vae.py): networks, loss, KL warm-up and its
exact resume, held-out ELBO and reconstructions, ONNX export parity, bad input.

Models are built directly from their Params and a DataSpec on the backend ganctl would pick
(KERAS_BACKEND, else jax); end-to-end tests run ``ganctl train`` / ``export`` on tiny sizes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from ganctl import api
from ganctl.engine import backends as ganctl_backend

ganctl_backend.activate(ganctl_backend.resolve()[0])  # before Keras is first imported

import keras  # noqa: E402

from ganctl.cli import app  # noqa: E402
from ganctl.engine import engine_for  # noqa: E402
from ganctl_models import VAE  # noqa: E402
from ganctl_models.vae import HELD_OUT_SEED  # noqa: E402

engine_for(keras.backend.backend())
pytestmark = pytest.mark.backends

DIGITS = api.DataSpec(height=8, width=8, channels=1, num_classes=10)
ODD = api.DataSpec(height=13, width=13, channels=3, num_classes=10)

RECIPE = """\
name: tiny-vae
seed: 5
data: {{plugin: digits, limit: 256}}
model: {model}
train:
  epochs: {epochs}
  batch_size: 32
  steps_per_epoch: {steps}
  log_every: 1
  optimizer: {{type: adam, learning_rate: 3.0e-3}}
export: {export}
"""
CONV = "{plugin: vae, latent_dim: 4, filters: 8, conditional: true}"
MLP = "{plugin: vae, architecture: mlp, latent_dim: 3, hidden: [16], likelihood: gaussian, sigma: 0.5}"


@pytest.fixture(autouse=True)
def _seed() -> None:
    keras.utils.set_random_seed(0)


def numpy(value) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(value))


def images_and_labels(spec: api.DataSpec, size: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.uniform(-1, 1, (size, *spec.shape)).astype(np.float32),
            rng.integers(0, max(spec.num_classes, 1), size).astype(np.int32))


def recipe(write, name: str, model: str, epochs: int = 1, steps: int = 2, export: str = "[]") -> Path:
    return write(f"{name}.yaml", RECIPE.format(model=model, epochs=epochs, steps=steps, export=export))


def records(run: Path, kind: str | None = None) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("type") == kind]


# -- networks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "spec"), [
    ({"filters": 8, "conditional": True}, DIGITS),
    ({"filters": 8, "likelihood": "gaussian"}, api.DataSpec(height=32, width=32, channels=3)),
    ({"architecture": "mlp", "hidden": (16, 8)}, ODD),
    ({"architecture": "mlp", "hidden": (16,), "likelihood": "gaussian", "conditional": True}, ODD),
])
def test_builds_conv_and_mlp_with_either_likelihood(params, spec):
    model = VAE(VAE.Params(latent_dim=5, **params), spec)
    images, labels = images_and_labels(spec)
    conditional = params.get("conditional", False)
    assert model.players == ("vae",) and list(model.networks()) == ["vae"] and model.conditional == conditional
    # the player's network holds encoder and decoder: every weight of both is trained
    trained = {id(v) for v in model.networks()["vae"].trainable_variables}
    assert {id(v) for v in model.encoder.trainable_variables + model.generator.trainable_variables} == trained
    names = [t.name for t in model.generator.inputs]
    assert names == (["z", "label"] if conditional else ["z"])
    assert [t.dtype for t in model.generator.inputs] == (["float32", "int32"] if conditional else ["float32"])
    z = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
    out = model.generate(z, labels if conditional else None)
    assert tuple(out.shape) == (4, *spec.shape) and keras.backend.standardize_dtype(out.dtype) == "float32"
    assert np.abs(numpy(out)).max() <= 1.0
    mean, log_variance = model.encoder([images, labels] if conditional else images)
    assert tuple(mean.shape) == tuple(log_variance.shape) == (4, 5)
    again = model.reconstruct(images, labels if conditional else None)
    np.testing.assert_allclose(numpy(again), numpy(model.generate(mean, labels if conditional else None)), atol=1e-6)
    loss, logs = model.loss("vae", images, labels if conditional else None, z)
    assert set(logs) == {"loss", "reconstruction", "kl", "elbo", "kl_weight"}
    assert math.isfinite(float(numpy(loss))) and float(numpy(logs["kl_weight"])) == 1.0
    assert float(numpy(logs["elbo"])) == pytest.approx(-float(numpy(logs["reconstruction"]) + numpy(logs["kl"])))


def test_conv_on_a_shape_it_cannot_tile_names_the_mlp_fix():
    with pytest.raises(api.ConfigError, match=r"cannot tile 13x13 images.*`model.architecture: mlp`"):
        VAE(VAE.Params(), ODD)


def test_conditional_needs_labels():
    with pytest.raises(api.ConfigError, match="no class labels, so the vae model has nothing to condition on"):
        VAE(VAE.Params(conditional=True), api.DataSpec(height=8, width=8, channels=1))


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_the_loss_terms_follow_the_documented_formulas(likelihood):
    model = VAE(VAE.Params(architecture="mlp", hidden=(8,), latent_dim=3, likelihood=likelihood), DIGITS)
    images, _ = images_and_labels(DIGITS)
    mean, log_variance = model.encoder(images)
    noise = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    rec, kl = model._terms(keras.ops.convert_to_tensor(images), None, mean, log_variance,
                           keras.ops.convert_to_tensor(noise), training=False)
    mean, log_variance = numpy(mean).astype(np.float64), numpy(log_variance).astype(np.float64)
    out = numpy(model.decoder(mean + np.exp(0.5 * log_variance) * noise)).astype(np.float64)
    x = images.astype(np.float64)
    if likelihood == "bernoulli":
        p, q = (x + 1) / 2, 1 / (1 + np.exp(-out))
        expected = -(p * np.log(q) + (1 - p) * np.log(1 - q))
    else:
        sigma = 0.1
        expected = (x - np.tanh(out)) ** 2 / (2 * sigma**2) + np.log(sigma) + 0.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(numpy(rec), expected.sum(axis=(1, 2, 3)), rtol=1e-4)
    expected_kl = 0.5 * (np.exp(log_variance) + mean**2 - 1 - log_variance).sum(axis=1)
    np.testing.assert_allclose(numpy(kl), expected_kl, rtol=1e-4, atol=1e-6)


def test_held_out_logs_are_the_deterministic_true_elbo_and_leave_training_noise_alone():
    model = VAE(VAE.Params(architecture="mlp", hidden=(8,), latent_dim=3, beta=4.0, kl_warmup_epochs=2,
                           conditional=True), DIGITS)
    images, labels = images_and_labels(DIGITS, size=6)
    noise_state = numpy(model.seed_generators()[0].state).copy()
    first = {k: float(numpy(v)) for k, v in model.held_out_logs(images, labels).items()}
    second = {k: float(numpy(v)) for k, v in model.held_out_logs(images, labels).items()}
    assert first == second and set(first) == {"elbo", "reconstruction", "kl"}
    np.testing.assert_array_equal(numpy(model.seed_generators()[0].state), noise_state)
    assert first["elbo"] == pytest.approx(-(first["reconstruction"] + first["kl"]))
    # the KL weight is 1 whatever beta and the warm-up: the same draw, by hand
    mean, log_variance = model.encoder([images, labels])
    noise = keras.random.normal(tuple(mean.shape), dtype="float32", seed=HELD_OUT_SEED)
    rec, kl = model._terms(keras.ops.convert_to_tensor(images), keras.ops.convert_to_tensor(labels), mean,
                           log_variance, noise, training=False)
    assert first["reconstruction"] == pytest.approx(float(numpy(rec).mean()), rel=1e-5)
    assert first["kl"] == pytest.approx(float(numpy(kl).mean()), rel=1e-5)


def test_kl_weight_rises_linearly_over_the_warm_up_updates():
    model = VAE(VAE.Params(architecture="mlp", hidden=(8,), beta=2.0, kl_warmup_epochs=2), DIGITS)
    with pytest.raises(api.GanctlError, match="begin_training"):
        model.kl_weight(0)
    model.begin_training(steps_per_epoch=5)  # 10 updates of warm-up
    assert [float(numpy(model.kl_weight(u))) for u in (0, 1, 5, 10, 99)] == pytest.approx([0, 0.2, 1.0, 2.0, 2.0])


# -- through the CLI -----------------------------------------------------------------------------


def test_kl_warm_up_logs_its_weight_and_resumes_exactly(runner, write, tmp_path):
    model = MLP.replace("}", ", beta: 2.0, kl_warmup_epochs: 2}")
    text = recipe(write, "warm", model, epochs=3, steps=2)
    assert runner.invoke(app, ["train", str(text), "--out", str(tmp_path / "whole"), "-q"]).exit_code == 0
    whole = records(tmp_path / "whole")
    # 2 epochs of 2 updates: update u (0-based) weighs the KL by 2 * min(1, u / 4)
    assert [r["vae/kl_weight"] for r in whole] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.0])
    result = runner.invoke(app, ["train", str(text), "--out", str(tmp_path / "resumed"), "-q", "--set", "train.epochs=1"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "resumed"), "-q", "--set", "train.epochs=3"])
    assert result.exit_code == 0, result.output
    assert records(tmp_path / "resumed") == whole  # every logged value, bit for bit
    final = {}
    for name in ("whole", "resumed"):
        newest = sorted((tmp_path / name / "checkpoints").glob("ckpt-*.npz"))[-1]
        with np.load(newest) as archive:
            final[name] = {k: archive[k] for k in archive.files if k != "__meta__"}
    assert final["whole"].keys() == final["resumed"].keys()
    for key, value in final["whole"].items():
        np.testing.assert_array_equal(final["resumed"][key], value, err_msg=key)


@pytest.mark.parametrize(("model", "name"), [(CONV, "conv"), (MLP, "mlp")])
def test_trains_through_the_cli_the_loss_decreases_and_the_onnx_export_matches_keras(
        runner, write, tmp_path, model, name):
    import onnx

    run = tmp_path / name
    text = recipe(write, name, model, steps=8, export="[onnx]")
    result = runner.invoke(app, ["train", str(text), "--out", str(run), "-q"])
    assert result.exit_code == 0, result.output
    steps = records(run)
    assert len(steps) == 8 and all(math.isfinite(r["vae/loss"]) for r in steps)
    assert steps[-1]["vae/loss"] + steps[-2]["vae/loss"] < steps[0]["vae/loss"] + steps[1]["vae/loss"] - 1.0
    assert steps[-1]["vae/elbo"] == pytest.approx(-(steps[-1]["vae/reconstruction"] + steps[-1]["vae/kl"]))
    path = run / "exports" / "generator.onnx"
    graph = onnx.load(str(path)).graph
    conditional = name == "conv"
    assert [i.name for i in graph.input] == (["z", "label"] if conditional else ["z"])
    assert [o.name for o in graph.output] == ["images"]
    record = json.loads((run / "run.json").read_text())["exports"]["onnx"]
    assert record["max_abs_diff"] <= 1e-4
    outputs = {}
    for kind, source in (("keras", run), ("onnx", path)):
        out = tmp_path / f"{name}-{kind}.npz"
        result = runner.invoke(app, ["generate", str(source), "-n", "50", "--seed", "3", "--out", str(out)])
        assert result.exit_code == 0, result.output
        with np.load(out) as archive:
            outputs[kind] = archive["images"]
    np.testing.assert_allclose(outputs["onnx"], outputs["keras"], atol=1e-4, rtol=0)
    assert outputs["keras"].std() > 0.01 and np.abs(outputs["keras"]).max() <= 1.0


def test_conditional_vae_on_unlabelled_data_is_refused(runner, write, tmp_path):
    np.savez(tmp_path / "plain.npz", images=np.zeros((64, 8, 8), np.uint8))
    text = RECIPE.format(model=CONV, epochs=1, steps=1, export="[]").replace(
        "{plugin: digits, limit: 256}", f"{{plugin: npz, path: {tmp_path / 'plain.npz'}}}")
    result = runner.invoke(app, ["train", str(write("plain.yaml", text)), "--out", str(tmp_path / "never")])
    assert result.exit_code == 2, result.output
    assert "model.conditional is true, but the data has no class labels" in result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "never").exists()


@pytest.mark.parametrize(("change", "expected"), [
    ("beta: 0", ["model.beta", "greater than 0"]),
    ("kl_warmup_epochs: -1", ["model.kl_warmup_epochs", "greater than or equal to 0"]),
    ("likelihood: poisson", ["model.likelihood", "bernoulli", "gaussian"]),
    ("architecture: resnet", ["model.architecture", "conv", "mlp"]),
    ("sigma: 0.2", ["sigma is 0.2", "likelihood: gaussian"]),
])
def test_bad_values_name_the_line_and_the_fix(runner, write, tmp_path, change, expected):
    text = RECIPE.format(model="\n  plugin: vae\n  " + change, epochs=1, steps=1, export="[]").replace(
        "model: \n", "model:\n")
    result = runner.invoke(app, ["train", str(write("bad.yaml", text)), "--out", str(tmp_path / "never")])
    assert result.exit_code == 2, result.output
    assert "bad.yaml:" in result.stderr and "Traceback" not in result.output
    for part in expected:
        assert part in result.stderr, result.stderr
    assert not (tmp_path / "never").exists()
