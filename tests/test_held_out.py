"""A generative model on held-out images (API 1.6): held-out values per epoch, reconstruction grids,
``begin_training``, and ``ganctl evaluate`` / ``ganctl report`` showing them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from ganctl import api
from ganctl.cli import app
from ganctl.evaluation.held_out import abilities, held_out_means
from ganctl.plugins import set_host

from .conftest import make_host

RECIPE = """\
name: echo
seed: 3
data: {{plugin: digits, limit: 300{split}}}
model: {{plugin: echo{params}}}
train: {{epochs: {epochs}, batch_size: 32}}
"""
STEPS_PER_EPOCH = 300 // 32  # 9
PAIRS = 16  # RECONSTRUCTION_PAIRS


class Echo(api.GenerativeModel):
    """A tiny autoencoder: held-out ``mse`` and ``brightness``; its "reconstructions" are the images
    mirrored left to right, so that the test knows every pixel of the grid."""

    players = ("net",)
    latent_dim = 4
    begun: ClassVar[list[int]] = []

    class Params(api.Params):
        held_out: bool = api.Field(True, description="Give held-out values and reconstructions.")

    def __init__(self, params, spec):
        super().__init__(params, spec)
        import keras

        size = int(np.prod(spec.shape))
        layers = keras.layers  # named: state names must not depend on what the process built before
        self.encoder = keras.Sequential([keras.Input(spec.shape), layers.Flatten(name="flat"),
                                         layers.Dense(4, name="code")], name="encoder")
        self.decoder = keras.Sequential([keras.Input((4,)), layers.Dense(size, activation="tanh", name="pixels"),
                                         layers.Reshape(spec.shape, name="image")], name="decoder")
        images = keras.Input(spec.shape)
        self.net = keras.Model(images, self.decoder(self.encoder(images)), name="echo")
        self.per_epoch = keras.Variable(0.0, trainable=False, name="per_epoch")
        self.net.per_epoch = self.per_epoch  # tracked: part of the model's state (checkpoints)

    def networks(self):
        return {"net": self.net}

    @property
    def generator(self):
        return self.decoder

    def begin_training(self, steps_per_epoch):
        Echo.begun.append(steps_per_epoch)
        self.per_epoch.assign(float(steps_per_epoch))

    def loss(self, player, images, labels, z):
        from keras import ops

        value = ops.mean((self.net(images, training=True) - images) ** 2)
        return value, {"loss": value}

    def held_out_logs(self, images, labels):
        from keras import ops

        if not self.params.held_out:
            return {}
        error = ops.mean((self.net(images, training=False) - images) ** 2, axis=(1, 2, 3))
        return {"mse": ops.mean(error), "brightness": ops.mean(images)}

    def reconstruct(self, images, labels):
        from keras import ops

        return ops.flip(images, axis=2) if self.params.held_out else None


class EchoPlugin:
    @staticmethod
    @api.hookimpl
    def register_models(register):
        register("echo", Echo)


@pytest.fixture(autouse=True)
def _echo_host():
    set_host(make_host((EchoPlugin, "echo")))
    Echo.begun.clear()


def train(runner, write, out: Path, *, epochs: int = 2, params: str = "", split: str = "", extra=()):
    recipe = write(f"{out.name}.yaml", RECIPE.format(epochs=epochs, params=params, split=split))
    result = runner.invoke(app, ["train", str(recipe), "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return result


def epochs_of(run: Path) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r.get("type") == "epoch"]


def held_out_images(limit: int = 300) -> np.ndarray:
    from ganctl_datasets.digits import Digits

    dataset = Digits(Digits.Params(split="test", limit=limit))
    return dataset.take(np.arange(len(dataset))).images


def final_state(run: Path) -> dict[str, np.ndarray]:
    newest = sorted((run / "checkpoints").glob("ckpt-*.npz"))[-1]
    with np.load(newest) as archive:
        return {k: archive[k] for k in archive.files if k != "__meta__"}


_WHOLE: dict[str, Path] = {}


def whole_run(runner, write, tmp_path_factory) -> Path:
    """The 2-epoch run, trained once per module (the tests only read it)."""
    if "run" not in _WHOLE:
        _WHOLE["run"] = tmp_path_factory.mktemp("echo") / "whole"
        result = train(runner, write, _WHOLE["run"])
        _WHOLE["stdout"] = result.stdout  # type: ignore[assignment]
        _WHOLE["begun"] = list(Echo.begun)  # type: ignore[assignment]
    return _WHOLE["run"]


@pytest.mark.backends
def test_held_out_values_join_each_epoch_record_and_resume_exactly(runner, write, tmp_path, tmp_path_factory):
    run = whole_run(runner, write, tmp_path_factory)
    assert _WHOLE["begun"] == [STEPS_PER_EPOCH]
    records = epochs_of(run)
    assert [r["epoch"] for r in records] == [1, 2]
    images = held_out_images()  # the test split of the same data, limit included: 256 + 44 in two batches
    expected = float(np.mean(images, dtype=np.float64))
    unweighted = (float(images[:256].mean()) + float(images[256:].mean())) / 2
    assert unweighted != pytest.approx(expected, rel=1e-5)  # the weighting is what is tested
    for record in records:
        assert {k for k in record if k.startswith("held_out/")} == {"held_out/mse", "held_out/brightness"}
        assert record["held_out/brightness"] == pytest.approx(expected, rel=1e-5)
        assert 0 < record["held_out/mse"] < 4
    assert records[0]["held_out/mse"] != records[1]["held_out/mse"]  # measured with the weights of each epoch
    assert "held_out/mse=" in _WHOLE["stdout"]  # the epoch's progress line
    assert final_state(run)[next(k for k in final_state(run) if "per_epoch" in k)] == STEPS_PER_EPOCH

    # stopped after one epoch and resumed: begin_training again, the same values, the same state
    resumed = tmp_path / "resumed"
    Echo.begun.clear()
    train(runner, write, resumed, epochs=1)
    result = runner.invoke(app, ["train", "--resume", str(resumed), "--set", "train.epochs=2", "-q"])
    assert result.exit_code == 0, result.output
    assert Echo.begun == [STEPS_PER_EPOCH, STEPS_PER_EPOCH]
    assert epochs_of(resumed) == epochs_of(run)
    whole, again = final_state(run), final_state(resumed)
    assert whole.keys() == again.keys()
    for key in whole:
        np.testing.assert_array_equal(whole[key], again[key], err_msg=key)


@pytest.mark.backends
def test_reconstruction_grids_pair_fixed_held_out_images(runner, write, tmp_path_factory):
    from PIL import Image

    run = whole_run(runner, write, tmp_path_factory)
    names = {p.name for p in (run / "samples").iterdir()}
    assert {"reconstructions-epoch-0001.png", "reconstructions-epoch-0002.png",
            "reconstructions-final.png"} <= names
    pixels = np.asarray(Image.open(run / "samples" / "reconstructions-final.png"))
    chosen = held_out_images()[np.linspace(0, 299, PAIRS).astype(int)]
    # 8x8 cells enlarged 4x to 32 px; 2 px padding; 4 pairs to a row, 8 px between pairs
    assert pixels.shape == (4 * 34 + 2, 4 * (2 * 34 + 8) - 8 + 2)

    def cell(image: np.ndarray) -> np.ndarray:
        values = np.clip(np.rint((image[..., 0] + 1.0) * 127.5), 0, 255).astype(np.uint8)
        return values.repeat(4, axis=0).repeat(4, axis=1)

    for i, image in enumerate(chosen):
        row, column = divmod(i, 4)
        y, x = 2 + row * 34, 2 + column * 76
        np.testing.assert_array_equal(pixels[y : y + 32, x : x + 32], cell(image))
        np.testing.assert_array_equal(pixels[y : y + 32, x + 34 : x + 66], cell(image[:, ::-1]))
    assert not pixels[:, 68:78].any()  # the gap between the first two pairs
    epoch_one = np.asarray(Image.open(run / "samples" / "reconstructions-epoch-0001.png"))
    np.testing.assert_array_equal(epoch_one, pixels)  # the same held-out images at every epoch


@pytest.mark.backends
def test_evaluate_and_report_show_the_held_out_values(runner, write, tmp_path, tmp_path_factory, monkeypatch):
    import shutil

    monkeypatch.setenv("GANCTL_CACHE_DIR", str(tmp_path / "cache"))
    run = tmp_path / "run"
    shutil.copytree(whole_run(runner, write, tmp_path_factory), run)
    last = epochs_of(run)[-1]
    result = runner.invoke(app, ["evaluate", str(run), "-m", "fid", "--n", "64", "--json", "--features", "pixels"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [r["metric"] for r in records] == ["fid", "held_out"]
    held_out = records[1]
    assert held_out["values"] == pytest.approx({k: v for k, v in last.items() if k.startswith("held_out/")},
                                               rel=1e-5)
    assert held_out["protocol"]["n"] == 300
    assert held_out["protocol"]["data"] == {"plugin": "digits", "split": "test", "limit": 300}
    logged = [json.loads(line) for line in (run / "evaluations.jsonl").read_text().splitlines()]
    assert [r["metric"] for r in logged] == ["fid", "held_out"]
    table = runner.invoke(app, ["evaluate", str(run), "-m", "fid", "--n", "64", "--features", "pixels"], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    row = next(line for line in table.stdout.splitlines() if "held_out/mse" in line)
    assert "held_out/brightness" in row and "300 images of the test split" in row
    assert runner.invoke(app, ["report", str(run)]).exit_code == 0
    page = (run / "report.html").read_text()
    assert "<h2>Reconstructions</h2>" in page and "reconstructions-final" in page
    assert "Held-out values" in page and "held_out/mse" in page


@pytest.mark.backends
def test_a_model_without_held_out_values_opens_no_held_out_data(runner, write, tmp_path, monkeypatch):
    import ganctl.training.validation as validation

    def refuse(*args, **kwargs):
        raise AssertionError("the held-out data was opened")

    monkeypatch.setattr(validation, "open_held_out", refuse)
    run = tmp_path / "quiet"
    result = train(runner, write, run, epochs=1, params=", held_out: false")
    assert Echo.begun == [STEPS_PER_EPOCH]
    assert not any(k.startswith("held_out/") for r in epochs_of(run) for k in r)
    assert not list((run / "samples").glob("reconstructions-*")) and "warning" not in result.stderr
    evaluated = runner.invoke(app, ["evaluate", str(run), "-m", "fid", "--n", "32", "--json", "--features", "pixels"],
                              env={"GANCTL_CACHE_DIR": str(tmp_path / "cache")})
    assert evaluated.exit_code == 0, evaluated.output
    assert [r["metric"] for r in json.loads(evaluated.stdout)] == ["fid"]


def test_without_a_held_out_split_it_warns_once_and_skips(runner, write, tmp_path):
    run = tmp_path / "all"
    result = train(runner, write, run, epochs=2, split=", split: all")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "held-out values and reconstructions" in warnings[0] and "split: train" in warnings[0]
    assert not any(k.startswith("held_out/") for r in epochs_of(run) for k in r)
    assert not list((run / "samples").glob("reconstructions-*"))


class _Plain(api.GenerativeModel):
    players = ("generator",)

    def networks(self):
        return {}

    @property
    def generator(self):
        return None

    def loss(self, player, images, labels, z):
        raise AssertionError


class _Refusing:
    """An engine that must not be asked anything."""

    def __init__(self, model):
        self.model = model

    def held_out_logs(self, images, labels):
        raise AssertionError("asked for held-out values")

    reconstruct = held_out_logs


class _Counting:
    """An engine whose model's held-out value is each image's mean pixel; records the batch sizes."""

    def __init__(self):
        self.sizes = []

    def held_out_logs(self, images, labels):
        self.sizes.append(len(images))
        return {"pixel": float(images.mean())}


def test_held_out_means_are_weighted_by_batch_and_capped():
    spec = api.DataSpec(height=2, width=2, channels=1)
    plain = _Plain(api.Params(), spec)
    assert not abilities(_Refusing(plain), spec)  # the API's defaults: nothing is run
    values = np.arange(10, dtype=np.uint8)[:, None, None, None].repeat(2, axis=1).repeat(2, axis=2)
    dataset = api.ArrayDataset(values, raw_range=(0, 15))
    engine = _Counting()
    found, n = held_out_means(engine, dataset, batch_size=4)
    scaled = dataset.take(np.arange(10)).images
    assert engine.sizes == [4, 4, 2] and n == 10
    assert found == {"held_out/pixel": pytest.approx(float(scaled.mean()))}
    engine = _Counting()
    found, n = held_out_means(engine, dataset, limit=6, batch_size=4)
    assert engine.sizes == [4, 2] and n == 6
    assert found == {"held_out/pixel": pytest.approx(float(scaled[:6].mean()))}


class _Shrinking:
    """An engine whose model's reconstructions have the wrong shape."""

    def reconstruct(self, images, labels):
        return images[:, :1]


def test_reconstructions_of_the_wrong_shape_are_a_plugin_bug():
    from ganctl.evaluation.held_out import reconstruction_pairs

    dataset = api.ArrayDataset(np.zeros((3, 2, 2, 1), np.uint8), raw_range=(0, 1))
    with pytest.raises(api.GanctlError, match=r"reconstruct\(\) returned shape \[3, 1, 2, 1\] for images of shape"):
        reconstruction_pairs(_Shrinking(), dataset)
