"""Feeding the engine ahead of the step (``train.prefetch``, ganctl/training/feed.py): the same
inputs in the same order at every depth, the same trained weights and resumes, and no thread left
behind at an epoch's end, an error, or a signal."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest
import yaml

from ganctl.cli import app
from ganctl.runs.checkpoint import Progress
from ganctl.training.callbacks import Callback
from ganctl.training.feed import Feed, depth_for

from .test_interrupts import Spawned, step_at_least
from .test_train import TINY, assert_same_state, backend, final_state


def feeders() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ganctl-feed"]


def _prepare(step: int, batch: int) -> tuple[int, int]:
    return step, batch * 10


@pytest.mark.parametrize("depth", [0, 1, 2, 5])
def test_every_depth_gives_the_same_inputs_in_order_and_ends_its_thread(depth):
    before = threading.active_count()
    staged: list = []
    feed = Feed(_prepare, lambda inputs: staged.append(inputs) or ("on device", inputs), depth)
    first = list(feed.epoch(iter(range(100)), 40, 7))  # 7 steps of an epoch, from global step 40
    second = list(feed.epoch(iter(range(3)), 47, 5))  # the batches run out first: the epoch ends there
    expected = [(b, (40 + b, b * 10)) for b in range(7)]
    if depth == 0:  # in the loop's thread, nothing staged
        assert first == expected and staged == []
    else:
        assert first == [(b, ("on device", inputs)) for b, inputs in expected]
        assert staged == [inputs for _, inputs in expected] + [(47 + b, b * 10) for b in range(3)]
    assert [b for b, _ in second] == [0, 1, 2]
    feed.close()
    assert threading.active_count() == before and feeders() == []


def test_an_error_while_preparing_is_raised_at_its_step_and_the_thread_ends():
    before = threading.active_count()

    def prepare(step: int, batch: int) -> int:
        if step == 3:
            raise OSError("the data file went away")
        return step

    feed = Feed(prepare, lambda inputs: inputs, 2)
    got = []
    with pytest.raises(OSError, match="went away"):
        for item in feed.epoch(iter(range(10)), 0, 10):
            got.append(item)
    assert got == [(0, 0), (1, 1), (2, 2)]
    assert threading.active_count() == before and feeders() == []


def test_closing_mid_epoch_stops_a_thread_blocked_on_a_full_queue():
    before = threading.active_count()
    prepared = threading.Semaphore(0)

    def prepare(step: int, batch: int) -> int:
        prepared.release()
        return step

    with Feed(prepare, lambda inputs: inputs, 1) as feed:
        batches = feed.epoch(iter(range(1000)), 0, 1000)
        assert next(batches) == (0, 0)
        for _ in range(3):  # step 0 taken, 1 queued, 2 prepared and waiting for room
            prepared.acquire()
    assert threading.active_count() == before and feeders() == []


def test_prefetch_auto_is_off_on_cpus_and_a_bad_value_is_refused(runner, write, tmp_path):
    assert depth_for(3, "jax") == 3 and depth_for(0, "torch") == 0
    for value, words in (("-1", "0 to 16, got -1"), ("17", "0 to 16, got 17"), ("yes", "Input should be 'auto'")):
        result = runner.invoke(app, ["train", str(write("tiny.yaml", TINY)), "--out", str(tmp_path / value),
                                     "--set", f"train.prefetch={value}"])
        assert result.exit_code == 2 and "prefetch" in result.output and words in result.output, result.output
        assert not (tmp_path / value).exists()


# -- training with a feeding thread --------------------------------------------------------------


@pytest.mark.backends
def test_prefetching_trains_and_resumes_exactly_as_without(runner, write, tmp_path):
    recipe = write("tiny.yaml", TINY)
    plain = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "plain"), "-q"])
    assert plain.exit_code == 0, plain.output
    ahead = ["--set", "train.prefetch=3"]
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "ahead"), "-q", *ahead])
    assert result.exit_code == 0, result.output
    assert_same_state(final_state(tmp_path / "plain"), final_state(tmp_path / "ahead"))
    logged = [(tmp_path / run / "metrics.jsonl").read_text() for run in ("plain", "ahead")]
    assert logged[0] == logged[1]
    # the setting is recorded only when made: runs that leave it keep their resolved recipe
    assert "prefetch" not in yaml.safe_load((tmp_path / "plain" / "recipe.yaml").read_text())["train"]
    assert yaml.safe_load((tmp_path / "ahead" / "recipe.yaml").read_text())["train"]["prefetch"] == 3
    # a resume from an epoch's end, feeding ahead: the same weights again
    first = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "resumed"), "-q", *ahead,
                                "--set", "train.epochs=1"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["train", "--resume", str(tmp_path / "resumed"), "-q", "--set", "train.epochs=3"])
    assert again.exit_code == 0, again.output
    assert_same_state(final_state(tmp_path / "plain"), final_state(tmp_path / "resumed"))
    assert feeders() == []


class _Signals(Callback):
    """Sends ``count`` SIGINTs to this process after step ``at`` (two: the second stops at once)."""

    def __init__(self, at: int, count: int = 2, error: bool = False) -> None:
        self.at, self.count, self.error = at, count, error

    def on_step_end(self, progress: Progress, logs: dict) -> bool:
        if progress.step == self.at:
            if self.error:
                raise RuntimeError("a callback broke")
            for _ in range(self.count):
                os.kill(os.getpid(), signal.SIGINT)
        return False


@pytest.mark.backends
@pytest.mark.parametrize("how", ["two signals", "an error", "completed"])
def test_no_feeding_thread_outlives_training(write, tmp_path, how):
    from ganctl.console import load_plugins
    from ganctl.recipe.load import load_recipe
    from ganctl.runs.rundir import RunDir
    from ganctl.session.assemble import open_session
    from ganctl.training.loop import Interrupted, Trainer
    from ganctl.training.progress import Reporter
    from ganctl.training.run_info import run_info

    host = load_plugins()
    recipe = load_recipe(write("tiny.yaml", TINY.replace("log_every: 4", "log_every: 4\n  prefetch: 2")), host)
    session = open_session(recipe, host, backend())
    run = RunDir.create(recipe.output, recipe.name, recipe.to_dict(), tmp_path / "run")
    run.write_info(run_info(session, {}))
    trainer = Trainer(session, Reporter(), host).use(run)
    assert trainer.feed.depth == 2
    assert depth_for("auto", backend()) == 0  # auto: none on CPUs (CI has no GPU)
    seen: list[int] = []

    class Watch(Callback):
        def on_step_end(self, progress: Progress, logs: dict) -> bool:
            seen.append(len(feeders()))
            return False

    extra = {"two signals": [_Signals(5)], "an error": [_Signals(5, error=True)], "completed": []}[how]
    expected = {"two signals": Interrupted, "an error": RuntimeError, "completed": None}[how]
    if expected is None:
        outcome = trainer.fit(Progress(), [Watch(), *extra])
        assert outcome.progress.step == 24
    else:
        with pytest.raises(expected):
            trainer.fit(Progress(), [Watch(), *extra])
    assert 1 in seen  # the thread fed the steps
    assert feeders() == []
    status = json.loads((tmp_path / "run" / "run.json").read_text())["status"]
    assert status == {"two signals": "interrupted", "an error": "failed", "completed": "completed"}[how]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="as tests/test_interrupts.py")
def test_a_signal_mid_epoch_while_feeding_ahead_resumes_to_the_same_weights(runner, write, tmp_path):
    epochs = 6  # 16 steps each, a progress line per step: more than a page of output after step 21
    text = TINY.replace("epochs: 3", f"epochs: {epochs}").replace("limit: 256", "limit: 512")
    recipe = write("tiny.yaml", text.replace("log_every: 4", "log_every: 1\n  checkpoint_every: 4\n  prefetch: 2"))
    whole = write("whole.yaml", text)  # fed in the loop's thread
    assert runner.invoke(app, ["train", str(whole), "--out", str(tmp_path / "whole"), "-q"]).exit_code == 0
    child = Spawned(tmp_path, "train", str(recipe), "--out", str(tmp_path / "run"))
    child.read_until(step_at_least(21))
    child.proc.send_signal(signal.SIGINT)
    code, _, stderr = child.finish()
    assert code == 130 and "Traceback" not in stderr, stderr
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"] == "interrupted" and info["step"] % 16 != 0  # stopped mid-epoch, checkpointed
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 0, result.output
    assert_same_state(final_state(tmp_path / "whole"), final_state(tmp_path / "run"))
