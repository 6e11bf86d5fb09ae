"""`ganctl train` end to end: run directory, determinism, resume, data that moved, NaN, bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from ganctl import api
from ganctl.cli import app
from ganctl.plugins import set_host
from ganctl.runs.checkpoint import Progress
from ganctl.training.callbacks import Callback, CallbackList

from .conftest import make_host

pytestmark = pytest.mark.backends

TINY = """\
name: tiny
seed: 7
data: {plugin: digits, limit: 256}
model: {plugin: gan, latent_dim: 8, hidden: [32]}
train:
  epochs: 3
  batch_size: 32
  log_every: 4
"""


def backend() -> str:
    return os.environ.get("KERAS_BACKEND", "jax")


def final_state(run: Path) -> dict[str, np.ndarray]:
    newest = sorted((run / "checkpoints").glob("ckpt-*.npz"))[-1]
    with np.load(newest) as archive:
        return {k: archive[k] for k in archive.files if k != "__meta__"}


def assert_same_state(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def train(runner, recipe: Path, out: Path, *extra: str):
    return runner.invoke(app, ["train", str(recipe), "--out", str(out), *extra])


def test_train_writes_a_complete_run_directory(runner, write, tmp_path):
    recipe = write("tiny.yaml", TINY)
    result = train(runner, recipe, tmp_path / "run")
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    assert str(run) in result.stdout
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["backend"] == backend()
    assert (info["step"], info["epoch"], info["seed"]) == (24, 3, 7)
    assert info["keras"] and info["devices"] and info["plugins"]["ganctl_models"].startswith("ganctl ")
    resolved = yaml.safe_load((run / "recipe.yaml").read_text())
    assert resolved["model"]["hidden"] == [32] and resolved["train"]["log_every"] == 4
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "ckpt-00000008.npz", "ckpt-00000016.npz", "ckpt-00000024.npz"]
    assert {p.name for p in (run / "samples").iterdir()} == {
        "epoch-0001.png", "epoch-0002.png", "epoch-0003.png", "final.png"}
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r.get("type") == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert {"discriminator/loss", "generator/loss"} <= set(epochs[0])
    assert [r["step"] for r in records if "type" not in r] == [4, 8, 12, 16, 20, 24]
    # not a TTY: plain progress lines
    assert "epoch 3/3 done" in result.stdout


def test_same_seed_same_weights_other_seed_other_weights(runner, write, tmp_path):
    recipe = write("tiny.yaml", TINY.replace("epochs: 3", "epochs: 1"))
    for name, extra in (("a", []), ("b", []), ("c", ["--set", "seed=8"])):
        assert train(runner, recipe, tmp_path / name, "-q", *extra).exit_code == 0
    a, b, c = (final_state(tmp_path / n) for n in "abc")
    assert_same_state(a, b)
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_quiet_prints_only_the_run_directory(runner, write, tmp_path):
    recipe = write("tiny.yaml", TINY.replace("epochs: 3", "epochs: 1"))
    result = train(runner, recipe, tmp_path / "run", "--quiet")
    assert result.exit_code == 0 and result.stdout.strip() == str(tmp_path / "run")


def test_rich_progress_on_a_terminal(write, tmp_path):
    from rich.console import Console

    from ganctl.training.progress import RichReporter

    ticks = iter(range(100))
    reporter = RichReporter(Console(file=open(os.devnull, "w"), force_terminal=True, width=120, record=True),
                            clock=lambda: float(next(ticks)))
    reporter.start(2, 3, 0, 0)
    for step in range(1, 4):
        reporter.step(step, 0, step, {"d/loss": 1.25, "g/loss": 0.5}, 32)
    reporter.epoch(0, {"d/loss": 1.0})
    reporter.close()
    text = reporter.console.export_text()
    assert "epochs" in text and "steps" in text and "d/loss=1" in text and "samples/s" in text


# -- callbacks -----------------------------------------------------------------------------------


class Recorder(Callback):
    """A callback that writes down each call, and asks to stop after epoch ``stop_after``."""

    def __init__(self, calls: list, name: str, stop_after: int | None = None) -> None:
        self.calls, self.name, self.stop_after = calls, name, stop_after

    def on_train_begin(self, progress):
        self.calls.append((self.name, "begin", progress.step))

    def on_step_end(self, progress, logs):
        self.calls.append((self.name, "step", progress.step))

    def on_epoch_end(self, progress, means, last):
        self.calls.append((self.name, "epoch", progress.epoch, last))
        return progress.epoch == self.stop_after

    def on_train_end(self, progress, completed):
        self.calls.append((self.name, "end", progress.step, completed))


def test_a_callback_list_calls_each_hook_in_order_and_a_stop_lets_the_others_run():
    calls: list = []
    callbacks = CallbackList([Recorder(calls, "a", stop_after=1), Recorder(calls, "b"), Callback()])
    callbacks.on_train_begin(Progress())
    assert callbacks.on_step_end(Progress(1, 0, 1), {"x": 1.0}) is False
    assert callbacks.on_epoch_end(Progress(1, 1, 0), {"x": 1.0}, False) is True  # a asks; b still runs
    assert callbacks.on_epoch_end(Progress(2, 2, 0), {"x": 1.0}, True) is False
    callbacks.on_train_end(Progress(2, 2, 0), True)
    assert calls == [("a", "begin", 0), ("b", "begin", 0), ("a", "step", 1), ("b", "step", 1),
                     ("a", "epoch", 1, False), ("b", "epoch", 1, False), ("a", "epoch", 2, True),
                     ("b", "epoch", 2, True), ("a", "end", 2, True), ("b", "end", 2, True)]


def test_a_callback_that_stops_training_ends_the_run_checkpointed_and_completed(write, tmp_path):
    from ganctl.console import load_plugins
    from ganctl.recipe.load import load_recipe
    from ganctl.runs.rundir import RunDir
    from ganctl.session.assemble import open_session
    from ganctl.training.loop import Trainer
    from ganctl.training.progress import Reporter
    from ganctl.training.run_info import run_info

    host = load_plugins()
    every = "log_every: 4\n  checkpoint_every: 5\n  sample_every: 5"  # none of either before the stop
    recipe = load_recipe(write("tiny.yaml", TINY.replace("log_every: 4", every)), host)
    session = open_session(recipe, host, backend())
    run = RunDir.create(recipe.output, recipe.name, recipe.to_dict(), tmp_path / "run")
    run.write_info(run_info(session, {}))
    calls: list = []
    outcome = Trainer(session, Reporter(), host).use(run).fit(Progress(), [Recorder(calls, "stopper", stop_after=1)])
    assert calls == [("stopper", "begin", 0), *(("stopper", "step", s) for s in range(1, 9)),
                     ("stopper", "epoch", 1, False), ("stopper", "end", 8, True)]
    assert (outcome.progress.step, outcome.progress.epoch) == (8, 1)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert (info["status"], info["step"], info["epoch"]) == ("completed", 8, 1)
    assert [p.name for p in (tmp_path / "run" / "checkpoints").glob("*.npz")] == ["ckpt-00000008.npz"]  # at the stop
    assert {p.name for p in (tmp_path / "run" / "samples").iterdir()} == {"final.png"}


# -- resume --------------------------------------------------------------------------------------


# Signals and kill -9: tests/test_interrupts.py.


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(runner, write, tmp_path):
    recipe = write("tiny.yaml", TINY)
    assert train(runner, recipe, tmp_path / "run", "-q", "--set", "train.epochs=2").exit_code == 0
    checkpoints = sorted((tmp_path / "run" / "checkpoints").glob("ckpt-*.npz"))
    data = checkpoints[-1].read_bytes()
    checkpoints[-1].write_bytes(data[: len(data) // 2])  # a truncated file
    (tmp_path / "run" / "checkpoints" / ".ckpt-00000099.npz.abc.tmp").write_bytes(b"partial")
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "run"), "--set", "train.epochs=3"])
    assert result.exit_code == 0, result.output
    assert "skipped 1 newer checkpoint" in result.output and "ckpt-00000016.npz is corrupt" in result.output
    assert "resuming from" in result.output and "ckpt-00000008.npz (step 8)" in result.output
    assert json.loads((tmp_path / "run" / "run.json").read_text())["step"] == 24


def test_resume_of_a_finished_run_says_how_to_continue(runner, write, tmp_path):
    recipe = write("tiny.yaml", TINY.replace("epochs: 3", "epochs: 1"))
    assert train(runner, recipe, tmp_path / "run", "-q").exit_code == 0
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "run")])
    assert result.exit_code == 0 and "already finished its 1 epochs" in result.stdout
    assert "--set train.epochs=2" in result.stdout


def test_a_run_cannot_be_shortened_by_a_resume(runner, write, tmp_path):
    recipe = write("tiny.yaml", TINY.replace("epochs: 3", "epochs: 2"))
    assert train(runner, recipe, tmp_path / "run", "-q").exit_code == 0
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "run"), "--set", "train.epochs=1"])
    assert result.exit_code == 2 and "has already trained 2 epochs, more than train.epochs=1" in result.stderr
    assert "--set train.epochs=4" in result.stderr
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "run"), str(tmp_path / "run" / "recipe.yaml")])
    assert result.exit_code == 0 and "already finished its 2 epochs" in result.stdout  # its own recipe is fine


# -- data locations ------------------------------------------------------------------------------


def _digits_npz(path: Path, offset: int = 0) -> Path:
    from sklearn.datasets import load_digits

    images = np.minimum(load_digits().images[offset : offset + 256] * 16, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, images=images)
    return path


def test_a_run_resumes_from_anywhere_and_follows_data_that_moved(runner, write, tmp_path, monkeypatch):
    _digits_npz(tmp_path / "project" / "data" / "digits.npz")
    recipe = write("project/tiny.yaml", TINY.replace("{plugin: digits, limit: 256}",
                                                     "{plugin: npz, path: data/digits.npz}"))
    monkeypatch.chdir(tmp_path / "project")
    run = tmp_path / "run"
    assert train(runner, recipe, run, "-q", "--set", "train.epochs=1").exit_code == 0
    stored = yaml.safe_load((run / "recipe.yaml").read_text())
    assert stored["data"]["path"] == str(tmp_path / "project" / "data" / "digits.npz")  # resolved when created
    info = json.loads((run / "run.json").read_text())
    assert info["data_locations"]["data.path"]["given"] == "data/digits.npz"  # and what the recipe said
    assert info["data_fingerprint"]["examples"] == 256

    monkeypatch.chdir(tmp_path)  # another directory
    result = runner.invoke(app, ["train", "--resume", str(run), "-q", "--set", "train.epochs=2"])
    assert result.exit_code == 0, result.output

    (tmp_path / "project" / "data").rename(tmp_path / "moved")
    result = runner.invoke(app, ["train", "--resume", str(run), "--set", "train.epochs=3"])
    assert result.exit_code != 0 and "--set data.path=NEW_PATH" in result.stderr and "Traceback" not in result.output
    result = runner.invoke(app, ["train", "--resume", str(run), "-q", "--set", "train.epochs=3",
                                 "--set", "data.path=moved/digits.npz"])
    assert result.exit_code == 0, result.output
    info = json.loads((run / "run.json").read_text())
    assert info["step"] == 24 and info["data_locations"]["data.path"] == {
        "given": "data/digits.npz", "path": str(tmp_path / "moved" / "digits.npz"),
        "moved_from": str(tmp_path / "project" / "data" / "digits.npz")}
    assert yaml.safe_load((run / "recipe.yaml").read_text())["data"]["path"] == str(tmp_path / "moved" / "digits.npz")

    _digits_npz(tmp_path / "other" / "digits.npz", offset=256)  # same size and shape, other images
    result = runner.invoke(app, ["train", "--resume", str(run), "--set", "train.epochs=4",
                                 "--set", f"data.path={tmp_path / 'other' / 'digits.npz'}"])
    assert result.exit_code == 2 and "is not the data" in result.stderr and "different images" in result.stderr
    assert json.loads((run / "run.json").read_text())["step"] == 24  # nothing was trained or written


def test_only_data_locations_and_epochs_may_change_on_resume(runner, write, tmp_path):
    _digits_npz(tmp_path / "digits.npz")
    recipe = write("tiny.yaml", TINY.replace("{plugin: digits, limit: 256}", f"{{plugin: npz, path: {tmp_path}/digits.npz}}"))
    assert train(runner, recipe, tmp_path / "run", "-q", "--set", "train.epochs=1").exit_code == 0
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "run"), "--set", "data.images_key=x"])
    assert result.exit_code == 2 and "at: data.images_key" in result.stderr


def test_a_damaged_checkpoint_is_named_once_by_each_command_that_falls_back(runner, write, tmp_path):
    recipe = write("tiny.yaml", TINY)
    run = tmp_path / "run"
    assert train(runner, recipe, run, "-q").exit_code == 0
    newest = run / "checkpoints" / "ckpt-00000024.npz"
    newest.write_bytes(newest.read_bytes()[:100])
    commands = [
        ["generate", str(run), "-n", "4", "--out", str(tmp_path / "g.png")],
        ["export", str(run), "--onnx", "--out", str(tmp_path / "g.onnx")],
        ["evaluate", str(run), "--metric", "fid", "--n", "64", "--features", "pixels"],
    ]
    for args in commands:
        import ganctl.runs.trained

        ganctl.runs.trained._warned.clear()  # once per process: each command here is a process of its own
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        warnings = [line for line in result.stderr.splitlines() if "ckpt-00000024.npz" in line]
        assert len(warnings) == 1, (args, result.stderr)
        assert warnings[0].startswith("warning: skipped 1 newer checkpoint") and "(step 16)" in warnings[0]


# -- bad input -----------------------------------------------------------------------------------


def test_bad_input_fails_before_anything_is_written(runner, write, tmp_path):
    np.savez(tmp_path / "odd.npz", images=np.zeros((64, 13, 13), np.uint8))
    cases = [
        (TINY.replace("{plugin: digits, limit: 256}", f"{{plugin: npz, path: {tmp_path / 'odd.npz'}}}")
         .replace("plugin: gan, latent_dim: 8, hidden: [32]", "plugin: dcgan"),
         "cannot make 13x13 images"),
        (TINY.replace("batch_size: 32", "batch_size: 300"), "batch size 300 is larger than the dataset (256 examples)"),
        (TINY.replace("epochs: 3", "epochs: 3\n  steps_per_epoch: 99"), "train.steps_per_epoch is 99"),
        (TINY.replace("plugin: gan,", "plugin: gam,"), "unknown model plugin 'gam'. Did you mean 'gan'?"),
    ]
    for text, expected in cases:
        result = train(runner, write("bad.yaml", text), tmp_path / "never")
        assert result.exit_code == 2, result.output
        assert expected in result.stderr and "Traceback" not in result.output
        assert not (tmp_path / "never").exists()


def test_unwritable_output(runner, write, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = train(runner, write("tiny.yaml", TINY), blocker / "run")
    assert result.exit_code == 2 and "cannot create the run directory" in result.stderr
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("precious")
    result = train(runner, write("tiny.yaml", TINY), existing)
    assert result.exit_code == 2 and "already exists" in result.stderr
    assert (existing / "keep.txt").read_text() == "precious"


def test_resume_refuses_another_recipe_or_backend(runner, write, tmp_path):
    recipe = write("tiny.yaml", TINY.replace("epochs: 3", "epochs: 1"))
    assert train(runner, recipe, tmp_path / "run", "-q").exit_code == 0
    other = write("other.yaml", TINY.replace("latent_dim: 8", "latent_dim: 9"))
    result = runner.invoke(app, ["train", str(other), "--resume", str(tmp_path / "run")])
    assert result.exit_code == 2 and "would be ignored" in result.stderr and str(other) in result.stderr
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "run"), "--set", "model.latent_dim=9"])
    assert result.exit_code == 2 and "model.latent_dim" in result.stderr
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "run"), "--set", "train.batch_size=16"])
    assert result.exit_code == 2 and "train.batch_size" in result.stderr
    foreign = "torch" if backend() != "torch" else "jax"
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "run"), "--backend", foreign])
    assert result.exit_code == 2 and f"trained on the {backend()} backend" in result.stderr
    assert runner.invoke(app, ["train", "--resume", str(tmp_path / "nope")]).exit_code == 2
    assert runner.invoke(app, ["train"]).exit_code == 2


def test_all_checkpoints_corrupt_is_a_clear_error(runner, write, tmp_path):
    recipe = write("tiny.yaml", TINY.replace("epochs: 3", "epochs: 1"))
    assert train(runner, recipe, tmp_path / "run", "-q").exit_code == 0
    for path in (tmp_path / "run" / "checkpoints").glob("*.npz"):
        path.write_bytes(b"garbage")
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "run"), "--set", "train.epochs=2"])
    assert result.exit_code == 2 and "no usable checkpoint" in result.stderr


# -- NaN -----------------------------------------------------------------------------------------


class Exploding(api.GenerativeModel):
    """A one-player model whose loss turns NaN at its 11th step."""

    players = ("net",)
    latent_dim = 1

    class Params(api.Params):
        pass

    def __init__(self, params, spec):
        super().__init__(params, spec)
        import keras

        self.net = keras.Sequential([keras.Input(spec.shape), keras.layers.Flatten(), keras.layers.Dense(1)])
        self.counter = keras.Variable(0.0, trainable=False, name="counter")
        self.net.counter = self.counter  # tracked, so it is part of the model's state

    def networks(self):
        return {"net": self.net}

    @property
    def generator(self):
        return self.net

    def loss(self, player, images, labels, z):
        from keras import ops

        self.counter.assign(self.counter + 1.0)
        value = ops.mean(self.net(images) ** 2)
        value = ops.where(self.counter > 10.0, ops.log(-ops.ones_like(value)), value)
        return value, {"loss": value}

    def generate(self, z, labels=None):
        from keras import ops

        return ops.tanh(ops.reshape(ops.repeat(self.net.layers[-1].kernel[0, 0], 64), (1, 8, 8, 1)) * z[:, :1, None, None])


class ExplodingPlugin:
    @staticmethod
    @api.hookimpl
    def register_models(register):
        register("exploding", Exploding)


def test_nan_stops_keeps_the_last_finite_checkpoint(runner, write, tmp_path):
    set_host(make_host((ExplodingPlugin, "exploding")))
    text = TINY.replace("plugin: gan, latent_dim: 8, hidden: [32]", "plugin: exploding")
    result = train(runner, write("nan.yaml", text), tmp_path / "run")
    assert result.exit_code == 1
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "the net loss became nan at step 11" in line
    assert "ckpt-00000008.npz (step 8)" in line and "learning_rate" in line
    assert [p.name for p in (tmp_path / "run" / "checkpoints").glob("*.npz")] == ["ckpt-00000008.npz"]
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"] == "failed" and "step 11" in info["error"]


# -- generate ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A conditional dcgan trained for one epoch on 8x8 digits."""
    from typer.testing import CliRunner

    folder = tmp_path_factory.mktemp("trained")
    recipe = folder / "r.yaml"
    recipe.write_text(TINY.replace("plugin: gan, latent_dim: 8, hidden: [32]",
                                   "plugin: dcgan, latent_dim: 8, filters: 16, conditional: true")
                      .replace("epochs: 3", "epochs: 1"))
    set_host(None)
    result = CliRunner().invoke(app, ["train", str(recipe), "--out", str(folder / "run"), "-q"])
    assert result.exit_code == 0, result.output
    return folder / "run"


def test_generate_npz_and_png(runner, trained, tmp_path):
    result = runner.invoke(app, ["generate", str(trained), "-n", "300", "--seed", "3", "--out", str(tmp_path / "a.npz")])
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "a.npz") as data:
        images, labels = data["images"], data["labels"]
    assert images.shape == (300, 8, 8, 1) and images.dtype == np.float32
    assert images.min() >= -1 and images.max() <= 1
    assert labels.dtype == np.int64 and list(labels[:12]) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    again = runner.invoke(app, ["generate", str(trained), "-n", "300", "--seed", "3", "--out", str(tmp_path / "b.npz")])
    assert again.exit_code == 0
    with np.load(tmp_path / "b.npz") as data:
        np.testing.assert_array_equal(data["images"], images)
    seven = runner.invoke(app, ["generate", str(trained), "-n", "5", "--label", "7", "--out", str(tmp_path / "7.npz")])
    assert seven.exit_code == 0
    with np.load(tmp_path / "7.npz") as data:
        assert list(data["labels"]) == [7] * 5
    png = runner.invoke(app, ["generate", str(trained), "-n", "10", "--out", str(tmp_path / "g.png")])
    assert png.exit_code == 0 and (tmp_path / "g.png").stat().st_size > 0


@pytest.mark.parametrize(
    "args, expected",
    [
        (["-n", "0"], "-n must be at least 1"),
        (["--label", "10"], "--label 10 is outside the classes of this model: use 0 to 9"),
        (["--out", "x.jpg"], "must end in .png"),
        (["--out", "/proc/nope/x.npz"], "cannot write /proc/nope/x.npz"),
    ],
)
def test_generate_bad_input(runner, trained, tmp_path, args, expected):
    full = ["generate", str(trained), "--out", str(tmp_path / "o.npz"), *args]
    result = runner.invoke(app, full)
    assert result.exit_code == 2 and expected in result.stderr, result.output


def test_generate_label_on_unconditional_and_missing_run(runner, write, tmp_path):
    recipe = write("tiny.yaml", TINY.replace("epochs: 3", "epochs: 1"))
    assert train(runner, recipe, tmp_path / "run", "-q").exit_code == 0
    result = runner.invoke(app, ["generate", str(tmp_path / "run"), "--label", "1", "--out", str(tmp_path / "o.png")])
    assert result.exit_code == 2 and "--label is only for conditional models" in result.stderr
    result = runner.invoke(app, ["generate", str(tmp_path), "--out", str(tmp_path / "o.png")])
    assert result.exit_code == 2 and "is not a ganctl run directory" in result.stderr


# -- learning-rate schedules ---------------------------------------------------------------------


SCHEDULED = TINY + """\
  optimizer: {schedule: {type: cosine, warmup_steps: 4, decay_steps: 20, final_fraction: 0.1}}
  optimizers:
    discriminator: {schedule: {type: exponential, decay_steps: 8, decay_rate: 0.5}}
"""


def test_scheduled_run_resumes_exactly(runner, write, tmp_path):
    recipe = write("scheduled.yaml", SCHEDULED)
    assert train(runner, recipe, tmp_path / "whole", "-q").exit_code == 0
    assert train(runner, recipe, tmp_path / "resumed", "-q", "--set", "train.epochs=1").exit_code == 0
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "resumed"), "-q", "--set", "train.epochs=3"])
    assert result.exit_code == 0, result.output
    whole = final_state(tmp_path / "whole")
    assert_same_state(whole, final_state(tmp_path / "resumed"))
    # the schedules changed the updates: a constant rate ends elsewhere
    assert train(runner, write("tiny.yaml", TINY), tmp_path / "constant", "-q").exit_code == 0
    constant = final_state(tmp_path / "constant")
    assert any(not np.array_equal(whole[k], constant[k]) for k in whole if k.startswith("model/"))
    stored = yaml.safe_load((tmp_path / "whole" / "recipe.yaml").read_text())["train"]
    assert stored["optimizers"]["discriminator"]["schedule"]["type"] == "exponential"
    records = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    rates = {r["step"]: (r["generator/lr"], r["discriminator/lr"]) for r in records if "type" not in r}
    assert rates[4] == pytest.approx((2e-4, 2e-4 * 0.5 ** 0.5))  # warmed up; half a decay period
    assert rates[24] == pytest.approx((2e-5, 2e-4 * 0.5 ** 3))  # cosine at final_fraction; 3 periods
    plain = (tmp_path / "constant" / "metrics.jsonl").read_text()
    assert "/lr" not in plain  # constant rates are not logged
