"""Ctrl-C and SIGTERM at any instant of a run's life, and kill -9.

No test here waits for time to pass. A spawned ``ganctl train`` writes one progress line per
step into a pipe of one page (4 KiB): once the test has read the line it waits for, the process
can be at most a page of output ahead, and blocks there until the test reads on. So a signal
sent right after a line always lands in the phase that line announced, and the run always has
far more steps left than a page can hold. Start-up is found from /proc: the moment the
process's signal mask says ganctl's handlers are installed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ganctl.cli import app

from .test_train import assert_same_state, backend, final_state

BACKENDS = pytest.mark.backends  # CI runs these once per backend; the other moments run on the default one

PIPE_SIZE = 4096
EPOCHS, STEPS = 12, 16  # 192 steps of ~100 bytes of progress each: several pages

RECIPE = f"""\
name: signals
seed: 7
data: {{plugin: digits, limit: 512}}
model: {{plugin: gan, latent_dim: 8, hidden: [32]}}
train:
  epochs: {EPOCHS}
  batch_size: 32
  log_every: 1
  checkpoint_every: 3
metrics: [{{plugin: kid, n: 64, every: 1, subsets: 2, subset_size: 32, features: pixels}}]
"""


class Spawned:
    """``python -m ganctl ARGS`` with stdout in a one-page pipe and stderr in a file."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.stderr_path = tmp_path / f"stderr-{len(list(tmp_path.glob('stderr-*')))}.txt"
        env = {**os.environ, "GANCTL_LOAD_PLUGINS": "", "KERAS_BACKEND": backend()}
        with self.stderr_path.open("w") as stderr:
            self.proc = subprocess.Popen([sys.executable, "-m", "ganctl", *args], stdout=subprocess.PIPE,
                                         stderr=stderr, text=True, env=env, pipesize=PIPE_SIZE)
        self.lines: list[str] = []

    def read_until(self, wanted: Callable[[str], bool]) -> str:
        """Read progress lines until one satisfies ``wanted``; fail if the process ends first."""
        for line in self.proc.stdout:
            self.lines.append(line)
            if wanted(line):
                return line
        self.proc.wait()
        raise AssertionError(f"the process ended (exit {self.proc.returncode}) before the awaited line:\n"
                             f"{''.join(self.lines[-5:])}{self.stderr_path.read_text()}")

    def wait_for_handlers(self) -> None:
        """Block until ganctl's SIGTERM handler is installed (/proc/PID/status, SigCgt)."""
        bit = 1 << (signal.SIGTERM - 1)
        while True:
            try:
                status = Path(f"/proc/{self.proc.pid}/status").read_text()
            except FileNotFoundError:
                raise AssertionError("the process ended during start-up") from None
            caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
            if caught & bit:
                return
            assert self.proc.poll() is None, self.stderr_path.read_text()
            os.sched_yield()

    def finish(self) -> tuple[int, str, str]:
        rest = self.proc.stdout.read()
        self.proc.wait()
        return self.proc.returncode, "".join(self.lines) + rest, self.stderr_path.read_text()


def step_at_least(n: int) -> Callable[[str], bool]:
    pattern = re.compile(r"\bstep (\d+)/")
    return lambda line: bool((m := pattern.search(line)) and int(m.group(1)) >= n)


def starts(prefix: str) -> Callable[[str], bool]:
    return lambda line: line.startswith(prefix)


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    """The same recipe, never interrupted: what every interrupted and resumed run must equal."""
    from typer.testing import CliRunner

    folder = tmp_path_factory.mktemp("whole")
    (folder / "signals.yaml").write_text(RECIPE)
    result = CliRunner().invoke(app, ["train", str(folder / "signals.yaml"), "--out", str(folder / "run"), "-q"])
    assert result.exit_code == 0, result.output
    return folder / "run"


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# Where the signal lands (after which line; None: during start-up), which signal, how many in a row.
INT, TERM = signal.SIGINT, signal.SIGTERM
MOMENTS = {
    "start-up": (None, INT, 1),
    "start-up, twice": (None, TERM, 2),
    "compiling the first step": (starts("run "), TERM, 1),
    "compiling, twice": (starts("run "), INT, 2),
    "mid-epoch": (step_at_least(40), INT, 1),
    "mid-epoch, twice": (step_at_least(40), TERM, 2),
    "end-of-epoch metrics and samples": (starts("epoch 3/12 done"), TERM, 1),
    "end-of-epoch, twice": (starts("epoch 6/12 done"), INT, 2),
    "the last step": (step_at_least(EPOCHS * STEPS), INT, 1),
    "after done": (starts("done:"), TERM, 1),
    "after done, twice": (starts("done:"), INT, 2),
}


ON_EVERY_BACKEND = ("start-up", "mid-epoch, twice", "end-of-epoch metrics and samples", "after done")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="start-up is found through /proc")
@pytest.mark.parametrize("moment", [pytest.param(m, marks=[BACKENDS] if m in ON_EVERY_BACKEND else [])
                                    for m in MOMENTS])
def test_a_signal_at_any_instant_leaves_a_resumable_run(runner, tmp_path, whole, moment):
    wanted, signum, count = MOMENTS[moment]
    (tmp_path / "signals.yaml").write_text(RECIPE)
    run = tmp_path / "run"
    child = Spawned(tmp_path, "train", str(tmp_path / "signals.yaml"), "--out", str(run))
    if wanted is None:
        child.wait_for_handlers()
    else:
        child.read_until(wanted)
    for _ in range(count):
        child.proc.send_signal(signum)
    code, stdout, stderr = child.finish()

    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert code in (0, 128 + signum), (code, stderr)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    if code == 0:
        assert not errors and "done:" in stdout
        assert json.loads((run / "run.json").read_text())["status"] == "completed"
    else:
        assert len(errors) == 1 and signal.Signals(signum).name in errors[0], stderr
    if not (run / "run.json").exists():  # stopped before the run directory was made
        assert code != 0 and ("no run directory was made" in errors[0] or "nothing was written" in errors[0])
        return
    info = json.loads((run / "run.json").read_text())
    assert info["status"] != "running"
    if code != 0:
        assert info["status"] == "interrupted" and f"ganctl train --resume {run}" in errors[0]

    result = runner.invoke(app, ["train", "--resume", str(run), "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    assert_same_state(final_state(whole), final_state(run))
    logged = records(run)
    assert [r["step"] for r in logged if "type" not in r] == list(range(1, EPOCHS * STEPS + 1))
    for kind in ("epoch", "diversity", "eval"):
        assert [r["epoch"] for r in logged if r.get("type") == kind] == list(range(1, EPOCHS + 1)), kind
    # the same values as the run that never stopped, epoch means included
    assert [r for r in logged if r.get("type") == "epoch"] == [r for r in records(whole) if r.get("type") == "epoch"]


@BACKENDS
def test_a_signal_mid_epoch_checkpoints_that_step(tmp_path):
    (tmp_path / "signals.yaml").write_text(RECIPE)
    run = tmp_path / "run"
    child = Spawned(tmp_path, "train", str(tmp_path / "signals.yaml"), "--out", str(run))
    child.read_until(step_at_least(20))
    child.proc.send_signal(signal.SIGINT)
    code, _, stderr = child.finish()
    assert code == 130, stderr
    info = json.loads((run / "run.json").read_text())
    newest = sorted((run / "checkpoints").glob("ckpt-*.npz"))[-1]
    assert int(newest.stem.split("-")[1]) == info["step"] and info["step"] % STEPS != 0  # mid-epoch
    assert info["step"] < EPOCHS * STEPS // 2  # at most a page of progress past step 20
    assert f"stopped at step {info['step']} and saved a checkpoint" in stderr


@BACKENDS
def test_kill_9_then_resume_equals_an_uninterrupted_run(runner, tmp_path, whole):
    (tmp_path / "signals.yaml").write_text(RECIPE)
    run = tmp_path / "run"
    child = Spawned(tmp_path, "train", str(tmp_path / "signals.yaml"), "--out", str(run))
    child.read_until(step_at_least(3 * STEPS * 2 + 5))  # two checkpoints written (every 3 epochs), mid-epoch
    child.proc.send_signal(signal.SIGKILL)
    child.finish()
    assert json.loads((run / "run.json").read_text())["status"] == "running"  # nothing could say otherwise
    assert len(list((run / "checkpoints").glob("ckpt-*.npz"))) < EPOCHS // 3
    result = runner.invoke(app, ["train", "--resume", str(run), "-q"])
    assert result.exit_code == 0, result.output
    assert_same_state(final_state(whole), final_state(run))
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["step"] == EPOCHS * STEPS
    assert [r["step"] for r in records(run) if "type" not in r] == list(range(1, EPOCHS * STEPS + 1))


def test_the_pipe_holds_less_than_what_is_left_to_print(tmp_path):
    """The synchronisation above rests on this: one page is far less than a run's progress."""
    import fcntl

    read, write = os.pipe()
    try:
        fcntl.fcntl(write, 1031, PIPE_SIZE)  # F_SETPIPE_SZ, as Popen(pipesize=...) does
        assert fcntl.fcntl(write, 1032) == PIPE_SIZE  # F_GETPIPE_SZ
    finally:
        os.close(read)
        os.close(write)
    shortest = "epoch 1/12 step 40/192  discriminator/loss=1.386  generator/loss=0.6931"  # and more
    assert len(shortest) * (EPOCHS * STEPS - 40) > 2 * PIPE_SIZE  # after the mid-epoch moments' line


def test_an_epoch_resumed_in_its_middle_reports_the_means_of_all_its_steps():
    from ganctl.training.loop import EpochMeans

    whole, first = EpochMeans(), EpochMeans()
    logs = [{"a": 1.0, "b": 2.0}, {"a": 3.0}, {"a": 0.5, "b": 4.0}]
    for entry in logs:
        whole.add(entry)
    first.add(logs[0])
    second = EpochMeans.from_dict(json.loads(json.dumps(first.to_dict())))  # through a checkpoint's JSON
    for entry in logs[1:]:
        second.add(entry)
    assert second.means() == whole.means() == {"a": 1.5, "b": 3.0}
    assert np.isclose(EpochMeans.from_dict(None).means().get("a", 0.0), 0.0)


SWALLOWING = {
    "a gc callback (as JAX's)": """
def callback(phase, info):
    if phase == "start" and not sent:
        sent.append(1)
        os.kill(os.getpid(), signal.SIGINT)
        sum(i for i in range(10000))  # the handler runs in here
gc.callbacks.append(callback)
gc.collect()
""",
    "a __del__": """
class Finalised:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)
        sum(i for i in range(10000))
Finalised()
""",
    "a weakref callback (sys.unraisablehook)": """
class Thing:
    pass
def callback(ref):
    os.kill(os.getpid(), signal.SIGINT)
    sum(i for i in range(10000))
thing = Thing()
ref = weakref.ref(thing, callback)
del thing
""",
}


@pytest.mark.parametrize("place", list(SWALLOWING))
def test_a_signal_where_python_swallows_exceptions_is_not_lost(place):
    """A signal whose handler runs where Python swallows exceptions is sent again, and raised after."""
    code = ("import gc, os, signal, sys, weakref\nfrom ganctl import interrupts\ninterrupts.install()\nsent = []\n"
            "try:\n" + "".join(f"    {line}\n" for line in SWALLOWING[place].strip().splitlines())
            + "    for _ in range(10**9):  # the signal comes back within milliseconds; this takes a minute\n"
              "        pass\n    print('not interrupted')\n"
            "except interrupts.Interrupt as stop:\n    print('interrupted by', stop.name)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "interrupted by SIGINT" and "Exception ignored" not in done.stderr, \
        done.stdout + done.stderr
