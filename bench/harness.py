"""What the bench scripts share: one harness for measuring ganctl.

The scripts run as ``python bench/NAME.py``, so this module imports as ``harness``. It holds:

- the machine and the versions measured on: :func:`machine`, :func:`versions`;
- commands run to their end (ganctl's own, a training of a recipe's copy), timed from launch to
  exit: :func:`ganctl`, :func:`run`, :func:`train_briefly`;
- measured child processes driven over a pipe (the Keras backend is fixed per process, so a
  benchmark comparing backends runs one child each): :class:`Child` on the parent's side,
  :func:`serve` on the child's, :func:`start` and :func:`rotated` to start and interleave them;
- what else the machine is doing: :class:`Load` (other processes' share of the CPUs, waiting for
  a quiet second) and :func:`refuse_if_busy` (the 1-minute load average);
- summaries of repeated measurements: :func:`summary`, :func:`spread`.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
"""The repository root: every command and child process runs there."""

# -- the machine --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """CPU count and model, platform and Python version."""
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "platform": platform.platform(),
            "python": platform.python_version()}


def versions(names: Iterable[str]) -> dict[str, str]:
    """``{name: __version__}`` of each of these modules that this process has imported, in order."""
    return {name: getattr(sys.modules[name], "__version__", "?") for name in names if name in sys.modules}


# -- commands run to their end ------------------------------------------------------------------


def ganctl(*args: str) -> list[str]:
    """The command line of ``ganctl ARGS`` with this Python (``python -m ganctl``)."""
    return [sys.executable, "-m", "ganctl", *args]


@dataclass(frozen=True)
class Finished:
    """A command that ran to its end: wall time from launch to exit, exit status, what it printed."""

    seconds: float
    returncode: int
    stdout: str
    stderr: str


def run(command: Sequence[str], env: Mapping[str, str] | None = None, check: bool = True) -> Finished:
    """Run ``command`` from the repository root, with ``env`` added to this process's environment,
    its output captured, and time it from launch to exit. With ``check``, a failure ends the
    benchmark with the command and the end of its stderr."""
    environment = {**os.environ, **(env or {})}
    began = time.perf_counter()
    done = subprocess.run(list(command), cwd=ROOT, env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if check and done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return Finished(seconds, done.returncode, done.stdout, done.stderr)


def train_briefly(recipe: str | Path, out: Path, env: Mapping[str, str] | None = None) -> float:
    """Train a copy of ``recipe`` for 1 epoch of 2 steps into ``out`` (speed does not depend on the
    weights: the networks have the recipe's shapes); the seconds it took."""
    return run(ganctl("train", str(recipe), "--set", "train.epochs=1", "--set", "train.steps_per_epoch=2",
                      "--out", str(out), "-q"), env).seconds


# -- measured child processes -------------------------------------------------------------------

CHILD_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
"""Added to every child's environment: no TensorFlow start-up chatter, no buffered output."""


class Child:
    """A measured child process, driven over a pipe (the parent's side of :func:`serve`).

    It runs ``command`` from the repository root with :data:`CHILD_ENV` and ``env`` added to this
    process's environment, and its stderr in ``log``. It first builds what it times and says it
    is ready (:attr:`ready`, the first JSON line it writes); then each :meth:`ask` sends one JSON
    request line and reads the one reply line. A child that dies ends the benchmark with the end
    of its log.
    """

    def __init__(self, name: str, command: Sequence[str], log: Path, env: Mapping[str, str] | None = None) -> None:
        self.name, self.log = name, log
        with log.open("w") as handle:
            self.proc = subprocess.Popen(list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=handle,
                                         text=True, cwd=ROOT, env={**os.environ, **CHILD_ENV, **(env or {})})
        self.ready: dict[str, Any] = self.receive()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def receive(self) -> dict[str, Any]:
        """The next JSON line the child writes; its log's end if it died instead."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise SystemExit(f"the {self.name} child exited ({self.proc.returncode}); the end of its log:\n"
                             + self.log.read_text()[-4000:])
        return json.loads(line)

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request; the child's reply."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self.receive()

    def close(self) -> None:
        """End the child: close its input (its :func:`serve` loop returns), wait a minute, then kill it."""
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


Answer = Callable[[dict[str, Any]], dict[str, Any]]
"""The child's work: a request from the parent in, the reply out."""


def serve(build: Callable[[], tuple[dict[str, Any], Answer]]) -> None:
    """The child's side of :class:`Child`: the protocol runs on the original stdout, and whatever the
    libraries print goes to stderr (the log) instead. ``build()`` builds and warms up what is timed
    and returns the ready message and the function that answers each request; then every request
    line on stdin is answered until the parent closes it."""
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    ready, answer = build()
    channel.write(json.dumps(ready) + "\n")
    for line in sys.stdin:
        channel.write(json.dumps(answer(json.loads(line))) + "\n")


C = TypeVar("C", bound=Child)


def start(what: str, make: Callable[[], C]) -> C:
    """Start one child with ``make()`` (children are started one at a time: building and compiling
    are not timed), saying so on stderr, with the seconds its set-up took (``ready['setup_s']``)."""
    print(f"starting {what} ...", file=sys.stderr, flush=True)
    child = make()
    print(f"  ready after {child.ready['setup_s']:.0f} s", file=sys.stderr, flush=True)
    return child


T = TypeVar("T")


def rotated(items: Sequence[T], shift: int) -> list[T]:
    """``items`` starting at ``shift`` (modulo their number): which child goes first changes each time."""
    k = shift % len(items)
    return [*items[k:], *items[:k]]


# -- what else the machine is doing -------------------------------------------------------------


def _machine_ticks() -> tuple[int, int] | None:
    """(busy, total) CPU time of the whole machine so far, in clock ticks (Linux /proc/stat); None elsewhere."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _process_ticks(pids: Iterable[int]) -> int:
    """CPU time (user + system, clock ticks) of these processes and of the children they waited for."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
        except (OSError, IndexError, ValueError):
            pass
    return total


class Load:
    """The share of the machine's CPU time that other processes used: all but ``pids`` (default: this
    process) and the children they waited for, such as a timed command.

    onnxruntime's spinning threads slow down 2-3x when another process wants the same cores, while
    JAX and TensorFlow degrade gracefully: a benchmark records this share with its figures, or drops
    the rounds it spoiled.
    """

    def __init__(self, pids: Iterable[int] | None = None) -> None:
        self.pids = list(pids) if pids is not None else [os.getpid()]
        self.reset()

    def reset(self) -> None:
        """Start counting now."""
        self.machine = _machine_ticks()
        self.own = _process_ticks(self.pids)

    def foreign(self) -> float | None:
        """Since the last :meth:`reset`: other processes' CPU time over all of the machine's (0 to 1);
        None where /proc/stat cannot tell."""
        now = _machine_ticks()
        if now is None or self.machine is None or now[1] <= self.machine[1]:
            return None
        own = _process_ticks(self.pids) - self.own
        return max(0.0, (now[0] - self.machine[0]) - own) / (now[1] - self.machine[1])

    def wait_until_quiet(self, threshold: float, patience: float) -> float | None:
        """Wait (at most ``patience`` seconds) for a second in which others use under ``threshold``;
        the share in the last second waited."""
        deadline = time.monotonic() + patience
        while True:
            self.reset()
            time.sleep(1.0)
            share = self.foreign()
            if share is None or share < threshold or time.monotonic() > deadline:
                return share


def refuse_if_busy(busy_ok: bool, limit: float = 0.5) -> tuple[float, bool]:
    """The 1-minute load average and whether it is over ``limit`` (the machine is busy). Busy, the
    benchmark stops here unless ``busy_ok``: a figure taken while tests or another benchmark share
    the cores is not ganctl's."""
    load = os.getloadavg()[0]
    busy = load > limit
    if busy and not busy_ok:
        raise SystemExit(f"the 1-minute load average is {load:.2f}: the machine is busy, so the figures would not "
                         "be ganctl's. Stop what runs, or pass --busy-ok to mark them.")
    return load, busy


# -- summaries ------------------------------------------------------------------------------------


def summary(values: Sequence[float], suffix: str = "") -> dict[str, float]:
    """Median, min, max and count of repeated measurements, as ``median{suffix}``, ... and ``runs``."""
    return {f"median{suffix}": statistics.median(values), f"min{suffix}": min(values),
            f"max{suffix}": max(values), "runs": len(values)}


def spread(values: Sequence[float]) -> float:
    """(max - min) / median: how much a measurement varied over rounds."""
    return (max(values) - min(values)) / statistics.median(values)
