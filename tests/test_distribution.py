"""``train.distribution``: one global batch split over several devices of one process (JAX).

This process has one device, and JAX fixes its devices when it starts, so the runs over two
devices happen in one subprocess started with ``XLA_FLAGS=--xla_force_host_platform_device_count=2``
(two virtual CPU devices); it writes what it found, and this process checks it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganctl.cli import app
from ganctl.engine import backends
from ganctl.errors import ConfigError
from tests.conftest import ROOT, final_checkpoint

# The quickstart's model (a conditional DCGAN on 8x8 digits), a few steps.
RECIPE = """\
name: dist
seed: 0
data: {plugin: digits, split: train, limit: 256}
model: {plugin: dcgan, latent_dim: 32, filters: 64, loss: bce, conditional: true}
train:
  epochs: 2
  steps_per_epoch: 2
  batch_size: 32
  optimizer: {type: adam, learning_rate: 2.0e-4, beta_1: 0.5}
  sample_every: 1
  checkpoint_every: 1
  log_every: 1
"""

TWO_DEVICES = r"""
import json, sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from ganctl.cli import app

out = Path(sys.argv[1])
recipe = str(out / "recipe.yaml")
runner = CliRunner()
found = {}


def train(*args):
    result = runner.invoke(app, ["train", *args, "-q"])
    return {"code": result.exit_code, "output": result.output}


split = ["--set", "train.distribution.devices=2"]
found["one"] = train(recipe, "--out", str(out / "one"), "--set", "export=[onnx]")
found["two"] = train(recipe, "--out", str(out / "two"), "--set", "export=[onnx]", *split)
found["first"] = train(recipe, "--out", str(out / "resumed"), "--set", "train.epochs=1", *split)
found["resumed"] = train("--resume", str(out / "resumed"), "--set", "train.epochs=2")
found["uneven"] = train(recipe, "--out", str(out / "uneven"), "--set", "train.distribution.devices=auto",
                        "--set", "train.batch_size=33")
found["too_many"] = train(recipe, "--out", str(out / "too_many"), "--set", "train.distribution.devices=4")

# Sampling inside a distributed session, with a batch that does not split over the devices, gives
# what one device gives; and a session without a distribution clears it.
import keras

from ganctl.console import load_plugins
from ganctl.recipe.load import load_recipe
from ganctl.session.assemble import open_session

host = load_plugins()
z = np.random.default_rng(1).standard_normal((7, 32)).astype("float32")
labels = np.arange(7, dtype="int32")
split_session = open_session(load_recipe(recipe, host, ["train.distribution.devices=2"]), host, "jax")
found["session_devices"] = split_session.engine.placement.devices
found["variable_devices"] = len(split_session.model.generator.weights[0].value.sharding.device_set)
np.save(out / "split.npy", split_session.engine.generate(z, labels))
plain = open_session(load_recipe(recipe, host), host, "jax")
found["cleared"] = keras.distribution.distribution() is None and plain.engine.placement is None
np.save(out / "plain.npy", plain.engine.generate(z, labels))
(out / "found.json").write_text(json.dumps(found))
"""


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The subprocess's runs: ``one`` (one device), ``two`` (two devices), ``resumed`` (two
    devices, 2 steps then resumed to 4), and the refused ones."""
    out = tmp_path_factory.mktemp("distribution")
    (out / "recipe.yaml").write_text(RECIPE)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "KERAS_BACKEND": "jax",
           "GANCTL_LOAD_PLUGINS": ""}
    done = subprocess.run([sys.executable, "-c", TWO_DEVICES, str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads((out / "found.json").read_text())
    for name in ("one", "two", "first", "resumed"):
        assert found[name]["code"] == 0, found[name]["output"]
    return out, found


def _losses(run: Path) -> list[dict]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [line for line in lines if "type" not in line]


def test_two_devices_train_as_one(two_devices: tuple[Path, dict]) -> None:
    out, _ = two_devices
    one, two = final_checkpoint(out / "one"), final_checkpoint(out / "two")
    assert one.keys() == two.keys()
    for key in one:  # weights, optimizer state, seeds after 4 steps on the same global batches
        np.testing.assert_allclose(two[key], one[key], rtol=0, atol=1e-5, err_msg=key)
    losses_one, losses_two = _losses(out / "one"), _losses(out / "two")
    assert [r["step"] for r in losses_two] == [1, 2, 3, 4]
    for a, b in zip(losses_one, losses_two, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], abs=1e-5), key


def test_two_devices_recorded(two_devices: tuple[Path, dict]) -> None:
    out, _ = two_devices
    info = json.loads((out / "two" / "run.json").read_text())
    assert info["distribution"] == {"devices": ["cpu:0", "cpu:1"], "processes": 1, "global_batch": 32,
                                    "per_device_batch": 16}
    assert "distribution" not in json.loads((out / "one" / "run.json").read_text())
    assert "distribution" not in (out / "one" / "recipe.yaml").read_text()
    assert "devices: 2" in (out / "two" / "recipe.yaml").read_text()


def test_two_devices_resume_exactly(two_devices: tuple[Path, dict]) -> None:
    out, _ = two_devices
    straight, resumed = final_checkpoint(out / "two"), final_checkpoint(out / "resumed")
    assert straight.keys() == resumed.keys()
    for key in straight:
        np.testing.assert_array_equal(resumed[key], straight[key], err_msg=key)


def test_two_devices_samples_and_exports_unchanged(two_devices: tuple[Path, dict]) -> None:
    from ganctl.inference.generator import Generator

    out, found = two_devices
    names = sorted(p.name for p in (out / "one" / "samples").glob("*.png"))
    assert names == sorted(p.name for p in (out / "two" / "samples").glob("*.png")) and names
    for name in names:
        a = np.asarray(Image.open(out / "one" / "samples" / name), dtype=np.int16)
        b = np.asarray(Image.open(out / "two" / "samples" / name), dtype=np.int16)
        assert np.abs(a - b).max() <= 1, name  # 8-bit pixels of weights within 1e-5
    z = np.random.default_rng(0).standard_normal((5, 32)).astype(np.float32)
    labels = np.arange(5)
    images = [Generator.open(out / run / "exports" / "generator.onnx", provider="cpu").run(z, labels)
              for run in ("one", "two")]
    np.testing.assert_allclose(images[1], images[0], rtol=0, atol=1e-5)
    # sampling 7 rows (not a multiple of 2) inside a two-device session, as on one device
    assert found["session_devices"] == 2 and found["variable_devices"] == 2
    np.testing.assert_allclose(np.load(out / "split.npy"), np.load(out / "plain.npy"), rtol=0, atol=1e-5)
    assert found["cleared"]


def test_two_devices_bad_values_refused_before_writing(two_devices: tuple[Path, dict]) -> None:
    out, found = two_devices
    uneven, too_many = (" ".join(found[name]["output"].split()) for name in ("uneven", "too_many"))
    assert found["uneven"]["code"] == 2 and "train.batch_size 33 does not split evenly over the 2 devices" in uneven
    assert found["too_many"]["code"] == 2
    assert "train.distribution.devices is 4, but this process has only 2 devices (cpu:0, cpu:1)" in too_many
    assert not (out / "uneven").exists() and not (out / "too_many").exists()


@pytest.mark.backends
def test_distribution_refused_here(runner, write, tmp_path: Path) -> None:
    """JAX with one device: two are more than exist; TensorFlow and PyTorch: JAX only. Nothing is written."""
    recipe = write("dist.yaml", RECIPE)
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run"), "-q",
                                 "--set", "train.distribution.devices=2"])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    if os.environ.get("KERAS_BACKEND", "jax") == "jax":
        assert "train.distribution.devices is 2, but this process has only 1 device (cpu:0)" in message
    else:
        assert "on the JAX backend only" in message and "--backend jax" in message
    assert str(recipe) in message
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_distribution_names_jax_on_other_backends(backend: str) -> None:
    with pytest.raises(ConfigError, match=f"JAX backend only .*this run uses {backend}"):
        backends.placement(2, 32, backend, "r.yaml")
    assert backends.placement(None, 32, backend, "r.yaml") is None


@pytest.mark.parametrize(("value", "problem"), [
    ("{devices: 0}", "1 or more, got 0"),
    ("{devices: two}", "train.distribution.devices"),
    ("{devices: 2.5}", "train.distribution.devices"),
    ("{devices: 3}", "batch_size 32 does not split evenly over distribution.devices 3"),
    ("{gpus: 2}", "gpus"),
])
def test_bad_distribution_in_recipe(runner, write, tmp_path: Path, value: str, problem: str) -> None:
    recipe = write("dist.yaml", RECIPE.replace("  log_every: 1\n", f"  log_every: 1\n  distribution: {value}\n"))
    result = runner.invoke(app, ["recipe", "validate", str(recipe)])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert problem in message and f"{recipe}:" in message
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 2 and not (tmp_path / "run").exists()
