"""``ganctl launch``: N local ``ganctl train`` processes that train as one, for a quick try.

Like ``torchrun`` on one machine: process ``i`` is ``ganctl train ARGS --coordinator
127.0.0.1:PORT --num-processes N --process-id i``, each in its own session (so a Ctrl-C in the
terminal reaches only this command). Process 0's output is shown; the others' stdout is dropped
and their stderr kept aside, shown when one fails. When one exits with an error, the others are
given time to notice (process 0 then says how to resume), then stopped; this command exits with
the failed process's code and names it. Ctrl-C asks process 0 to stop at its next safe point
(it checkpoints), then the others are stopped; a second Ctrl-C kills them all.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import typer

from ganctl.console import guarded

GRACE = 45.0
"""Seconds the others get to stop by themselves after one process failed or process 0 ended
(a collective fails at once; JAX's heartbeat, 30 s by default, catches the rest)."""
_RESERVED = ("--coordinator", "--num-processes", "--process-id")


def register(app: typer.Typer) -> None:
    app.command("launch", options_metavar="-n N [--port PORT] RECIPE [TRAIN'S OPTIONS]",
                context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(launch)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _exit_code(code: int) -> int:
    """A child's return code as a shell would report it (killed by signal S: 128 + S)."""
    return 128 - code if code < 0 else code


def _how(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


@guarded
def launch(
    ctx: typer.Context,
    processes: int = typer.Option(..., "-n", "--num-processes", min=1, metavar="N",
                                  help="How many local processes to start."),
    port: int = typer.Option(None, "--port", min=1, max=65535, metavar="PORT",
                             help="The coordinator's port on 127.0.0.1 (default: a free one)."),
) -> None:
    """Train as N cooperating local processes: ganctl launch -n N RECIPE [train's options] (JAX).

    Each process is `ganctl train` with the coordinator, the process count and its id added;
    process 0 writes the run directory and its output is shown here.
    """
    from ganctl.errors import ConfigError

    args = list(ctx.args)
    clash = [a for a in args if a.split("=")[0] in _RESERVED]
    if clash:
        raise ConfigError(f"ganctl launch sets {', '.join(_RESERVED)} itself; leave out {', '.join(clash)}.")
    if not args:
        raise ConfigError("give the recipe to train: ganctl launch -n N RECIPE [train's options], "
                          "or a run to continue: ganctl launch -n N --resume RUN_DIR.")
    address = f"127.0.0.1:{port or _free_port()}"
    with tempfile.TemporaryDirectory(prefix="ganctl-launch-") as scratch:
        code = _run(processes, args, address, Path(scratch))
    if code:
        raise typer.Exit(code)


def _run(n: int, args: list[str], address: str, scratch: Path) -> int:
    from ganctl import interrupts

    children: list[subprocess.Popen[Any]] = []
    logs: list[IO[str] | None] = []
    for index in range(n):
        command = [sys.executable, "-m", "ganctl", "train", *args, "--coordinator", address,
                   "--num-processes", str(n), "--process-id", str(index)]
        log = None if index == 0 else (scratch / f"process-{index}.err").open("w")
        # The others' scratch run directories (ganctl.training.followers) go in ours, removed at the end
        # even when JAX aborts a process whose peer died.
        env = None if index == 0 else {**os.environ, "TMPDIR": str(scratch)}
        children.append(subprocess.Popen(command, stdout=None if index == 0 else subprocess.DEVNULL,
                                         stderr=log, env=env, start_new_session=True))
        logs.append(log)
    typer.echo(f"ganctl launch: {n} processes on {address} (pids {', '.join(str(c.pid) for c in children)}); "
               "the output below is process 0's", err=True)
    failed: tuple[int, int] | None = None  # (process, return code) of the first that failed
    asked = False  # Ctrl-C / SIGTERM: process 0 was asked to stop
    try:
        with interrupts.deferred():
            while [c.poll() for c in children].count(None):  # poll() each: it sets returncode
                if interrupts.requested() is not None and not asked:  # Ctrl-C: process 0 checkpoints and stops
                    asked = True
                    _signal(children[0], signal.SIGINT)
                ended = [(i, c.returncode) for i, c in enumerate(children) if c.returncode is not None]
                failed = failed or next(((i, code) for i, code in ended if code), None)
                if failed is not None or children[0].returncode is not None:
                    break
                time.sleep(0.05)
            failed = _finish(children, failed)
    except interrupts.Interrupt:  # a second Ctrl-C: stop everything now
        interrupts.caught()
        for child in children:
            _signal(child, signal.SIGKILL)
            child.wait()
        typer.echo("error: stopped: every process was killed.", err=True)
        return 130
    finally:
        for log in logs:
            if log is not None:
                log.close()
    if failed is None:
        return 0
    index, code = failed
    if index:
        _show(scratch / f"process-{index}.err", index)
    why = "stopped as asked: " if asked and not index else ""
    typer.echo(f"error: ganctl launch: {why}process {index} of {n} {_how(code)}; the others were stopped.", err=True)
    return _exit_code(code)


def _finish(children: list[subprocess.Popen[Any]], failed: tuple[int, int] | None) -> tuple[int, int] | None:
    """Wait for the others to end by themselves (a failed peer stops them), then stop those left."""
    deadline = time.monotonic() + GRACE
    for stop in (None, signal.SIGTERM, signal.SIGKILL):
        if stop is not None:
            for child in children:
                _signal(child, stop)
            deadline = time.monotonic() + GRACE
        while any(c.poll() is None for c in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        if all(c.returncode is not None for c in children):
            break
    for child in children:
        child.wait()
    if failed is None:
        failed = next(((i, c.returncode) for i, c in enumerate(children) if c.returncode), None)
    return failed


def _signal(child: subprocess.Popen[Any], signum: int) -> None:
    if child.poll() is None:
        try:
            os.kill(child.pid, signum)
        except ProcessLookupError:
            pass


def _show(path: Path, index: int) -> None:
    """A failed process's own messages (its ``error:`` lines; else the end of its stderr)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return
    errors = [line for line in lines if line.startswith("error:")]
    for line in errors or lines[-5:]:
        typer.echo(f"[process {index}] {line}", err=True)
