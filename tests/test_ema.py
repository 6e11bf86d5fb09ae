"""`train.ema`: the moving average of the generator's weights, its checkpoints and exact resume, and
`--weights ema|raw` for generate, evaluate and export (ONNX parity with each)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ganctl.cli import app

RECIPE = """\
name: tiny
seed: 7
data: {plugin: digits, limit: 256}
model: {plugin: gan, latent_dim: 8, hidden: [32]}
train:
  epochs: 3
  batch_size: 32
  steps_per_epoch: 3
  log_every: 4
  ema: 0.9
"""
MOMENTUM = np.float32(0.9)


def backend() -> str:
    return os.environ.get("KERAS_BACKEND", "jax")


def final_state(run: Path) -> dict[str, np.ndarray]:
    newest = sorted((run / "checkpoints").glob("ckpt-*.npz"))[-1]
    with np.load(newest) as archive:
        return {k: archive[k] for k in archive.files if k != "__meta__"}


def train(runner, recipe: Path, out: Path, *extra: str):
    return runner.invoke(app, ["train", str(recipe), "--out", str(out), "-q", *extra])


def npz(path: Path) -> np.ndarray:
    with np.load(path) as archive:
        return archive["images"]


@pytest.fixture
def session(write):
    from ganctl.console import load_plugins
    from ganctl.recipe.load import load_recipe
    from ganctl.session.assemble import open_session

    host = load_plugins()
    text = RECIPE + "metrics: [{plugin: fid, n: 16, features: pixels}]\n"
    return open_session(load_recipe(write("ema.yaml", text), host), host, backend()), host


@pytest.mark.backends
def test_the_average_follows_its_formula_and_swapping_leaves_training_alone(session, tmp_path, monkeypatch):
    from ganctl.runs.checkpoint import Progress
    from ganctl.runs.images import grid
    from ganctl.training import metrics, samples

    session, host = session
    engine = session.engine
    assert engine.average_player == "generator" and engine.weights == "raw"
    names = engine.average_names()
    assert names and all(k.startswith("model/") and v.startswith("optimizer/generator/") for k, v in names.items())
    batch = session.dataset.take(np.arange(32)).images
    expected: dict[str, np.ndarray] = {}
    for step in range(4):
        z = np.random.default_rng(step).standard_normal((32, 8)).astype(np.float32)
        engine.step("discriminator", batch, None, z)  # its optimizer keeps no average
        engine.step("generator", batch, None, z)
        arrays = engine.state_arrays()
        for name, average in names.items():
            raw = arrays[name]
            # the average starts from the first update's weights, then w_avg <- m * w_avg + (1 - m) * w
            # with m ramping up to train.ema: min(0.9, (1 + t) / (10 + t)) at update t
            m = np.float32(min(MOMENTUM, (1 + step) / (10 + step)))
            expected[name] = raw if step == 0 else m * expected[name] + (np.float32(1) - m) * raw
            np.testing.assert_allclose(arrays[average], expected[name], rtol=1e-6, atol=1e-7, err_msg=name)
    assert not any("average" in k for k in arrays if k.startswith("optimizer/discriminator/"))
    assert any(not np.array_equal(arrays[k], arrays[v]) for k, v in names.items())

    z = np.random.default_rng(9).standard_normal((16, 8)).astype(np.float32)
    raw_images = engine.generate(z)
    with engine.averaged():
        assert engine.weights == "ema"
        inside = engine.state_arrays()
        averaged_images = engine.generate(z)
    assert engine.weights == "raw"
    for name, average in names.items():
        np.testing.assert_array_equal(inside[name], arrays[average])
    after = engine.state_arrays()
    for key in arrays:  # swapped back exactly: training's state is untouched
        np.testing.assert_array_equal(after[key], arrays[key], err_msg=key)
    assert not np.allclose(raw_images, averaged_images)
    np.testing.assert_array_equal(engine.generate(z), raw_images)

    # sample grids and in-training metrics draw with the average
    grids: list[np.ndarray] = []
    monkeypatch.setattr(samples, "save_png", lambda image, path: grids.append(image))
    samples.SampleGrids(session, SimpleNamespace(samples=tmp_path)).write("x")
    z, labels = samples.sample_inputs(session)
    with engine.averaged():
        np.testing.assert_array_equal(grids[0], grid(engine.generate(z, labels), labels))
    seen: list = []

    def fake_evaluate(subject, requests, host, **kwargs):
        seen.append((subject.weights, subject.engine, subject.draw(z[:4], None)))
        return []

    monkeypatch.setattr(metrics, "evaluate", fake_evaluate)
    tracker = metrics.TrackMetrics(session, host, SimpleNamespace(log=lambda record: None),
                                   SimpleNamespace(note=lambda text: None), None,
                                   lambda: pytest.fail("the recipe's metrics name their features"))
    tracker.evaluate(Progress(step=4, epoch=1), last=True)
    with engine.averaged():
        np.testing.assert_array_equal(seen[0][2], engine.generate(z[:4]))
    assert seen[0][0] == "ema" and "ema weights" in seen[0][1]
    for key, value in engine.state_arrays().items():
        np.testing.assert_array_equal(value, arrays[key], err_msg=key)


@pytest.mark.backends
def test_an_ema_run_resumes_exactly_and_generate_evaluate_export_choose_the_weights(runner, write, tmp_path):
    recipe = write("ema.yaml", RECIPE)
    assert train(runner, recipe, tmp_path / "whole").exit_code == 0
    assert train(runner, recipe, tmp_path / "resumed", "--set", "train.epochs=1").exit_code == 0
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "resumed"), "-q", "--set", "train.epochs=3"])
    assert result.exit_code == 0, result.output
    whole, resumed = final_state(tmp_path / "whole"), final_state(tmp_path / "resumed")
    assert whole.keys() == resumed.keys() and any(k.endswith("_average") for k in whole)
    for key in whole:  # the averages too: bit-identical to the uninterrupted run
        np.testing.assert_array_equal(whole[key], resumed[key], err_msg=key)

    run = tmp_path / "whole"
    for weights in ("default", "ema", "raw"):
        extra = [] if weights == "default" else ["--weights", weights]
        result = runner.invoke(app, ["generate", str(run), "-n", "8", "--seed", "1", "--out",
                                     str(tmp_path / f"{weights}.npz"), *extra])
        assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(npz(tmp_path / "default.npz"), npz(tmp_path / "ema.npz"))
    assert not np.allclose(npz(tmp_path / "ema.npz"), npz(tmp_path / "raw.npz"))

    for weights in ("ema", "raw"):  # ONNX parity holds with each, and the file says which
        out = tmp_path / f"{weights}.onnx"
        extra = [] if weights == "ema" else ["--weights", "raw"]
        result = runner.invoke(app, ["export", str(run), "--onnx", "--out", str(out), *extra])
        assert result.exit_code == 0, result.output
        assert f"{weights} weights" in result.stdout
        import onnx

        meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
        assert meta["ganctl.weights"] == weights
        result = runner.invoke(app, ["generate", str(out), "-n", "8", "--seed", "1", "--out",
                                     str(tmp_path / f"{weights}-onnx.npz")])
        assert result.exit_code == 0, result.output
        np.testing.assert_allclose(npz(tmp_path / f"{weights}-onnx.npz"), npz(tmp_path / f"{weights}.npz"), atol=1e-4)
    info = json.loads((run / "run.json").read_text())
    assert info["exports"]["onnx"]["weights"] == "raw"  # the latest export's record

    result = runner.invoke(app, ["evaluate", str(run), "-m", "fid", "--n", "20", "--weights", "raw", "--json",
                                 "--features", "pixels"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["protocol"]["weights"] == "raw"
    records = [json.loads(line) for line in (run / "evaluations.jsonl").read_text().splitlines()]
    assert records[-1]["protocol"]["weights"] == "raw" and "raw weights" in records[-1]["protocol"]["engine"]


def test_bad_values_and_weights_are_one_clear_error(runner, write, tmp_path):
    for value in ("1.5", "0", "1"):
        result = train(runner, write("bad.yaml", RECIPE.replace("ema: 0.9", f"ema: {value}")), tmp_path / "bad")
        assert result.exit_code == 2 and "bad.yaml:10:3: train.ema: the momentum" in result.stderr, result.output
        assert "such as 0.999" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    classifier = RECIPE.replace("model: {plugin: gan, latent_dim: 8, hidden: [32]}", "model: {plugin: classifier}")
    result = train(runner, write("classifier.yaml", classifier), tmp_path / "classifier")
    assert result.exit_code == 2 and not (tmp_path / "classifier").exists()
    assert "classifier.yaml:10" in result.stderr and "has no generator whose weights" in result.stderr
    assert "Remove train.ema" in result.stderr

    plain = RECIPE.replace("  ema: 0.9\n", "").replace("epochs: 3", "epochs: 1")
    assert train(runner, write("plain.yaml", plain), tmp_path / "plain").exit_code == 0
    stored = (tmp_path / "plain" / "recipe.yaml").read_text()
    assert "ema" not in stored  # runs without an average keep their resolved recipe
    for command in (["generate", "--out", str(tmp_path / "x.npz")], ["export", "--onnx"], ["evaluate", "-m", "fid"]):
        result = runner.invoke(app, [command[0], str(tmp_path / "plain"), *command[1:], "--weights", "ema"])
        assert result.exit_code == 2 and "keeps no moving average" in result.stderr, result.output
        assert "--weights raw" in result.stderr
    result = runner.invoke(app, ["generate", str(tmp_path / "plain"), "--out", str(tmp_path / "x.npz"),
                                 "--weights", "best"])
    assert result.exit_code == 2 and "--weights must be one of auto, ema, raw" in result.stderr


def test_the_momentum_ramps_up_to_train_ema():
    from keras import ops

    from ganctl.session.optimizers import ema_momentum

    found = [float(ops.convert_to_numpy(ema_momentum(0.999, t))) for t in (0, 1, 90, 890, 8990, 10**6)]
    assert found[0] == 0.0  # the first update sets the average to the weights
    np.testing.assert_allclose(found[1:], [2 / 11, 0.91, 0.99, 0.999, 0.999], rtol=1e-6)
