"""Training progress: a Rich live display on a terminal, plain log lines elsewhere, or nothing.

The trainer calls the same four methods whatever the display; :func:`reporter` picks one.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def _losses(logs: dict[str, float]) -> str:
    return "  ".join(f"{key}={value:.4g}" for key, value in logs.items())


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Reporter:
    """Quiet: shows nothing. The base of the others."""

    def start(self, epochs: int, steps_per_epoch: int, step: int, epoch: int) -> None:
        self.epochs, self.steps_per_epoch = epochs, steps_per_epoch
        self.total = epochs * steps_per_epoch
        self.first_step, self.started = step, time.perf_counter()

    def rate(self, step: int) -> tuple[float, float]:
        """Steps per second since start, and seconds left."""
        elapsed = time.perf_counter() - self.started
        done = step - self.first_step
        speed = done / elapsed if elapsed > 0 and done > 0 else 0.0
        return speed, (self.total - step) / speed if speed else 0.0

    def step(self, step: int, epoch: int, step_in_epoch: int, logs: dict[str, float], batch_size: int) -> None:
        pass

    def epoch(self, epoch: int, means: dict[str, float]) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


class PlainReporter(Reporter):
    """One line every ``every`` steps and one per epoch: for logs, pipes and CI."""

    def __init__(self, every: int, stream: TextIO | None = None) -> None:
        self.every = every
        self.stream = stream or sys.stdout

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def step(self, step: int, epoch: int, step_in_epoch: int, logs: dict[str, float], batch_size: int) -> None:
        if step % self.every == 0:
            speed, left = self.rate(step)
            self._print(
                f"epoch {epoch + 1}/{self.epochs} step {step}/{self.total}  {_losses(logs)}  "
                f"{speed * batch_size:.0f} samples/s  eta {_clock(left)}"
            )

    def epoch(self, epoch: int, means: dict[str, float]) -> None:
        self._print(f"epoch {epoch + 1}/{self.epochs} done  {_losses(means)}")

    def note(self, text: str) -> None:
        self._print(text)


class RichReporter(Reporter):
    """Live bars for epochs and steps, with the latest losses, samples/s and ETA."""

    def __init__(self, console: Any = None) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
            transient=False,
        )

    def start(self, epochs: int, steps_per_epoch: int, step: int, epoch: int) -> None:
        super().start(epochs, steps_per_epoch, step, epoch)
        self.epoch_task = self.progress.add_task("epochs", total=epochs, completed=epoch, info="")
        self.step_task = self.progress.add_task(
            "steps", total=steps_per_epoch, completed=step - epoch * steps_per_epoch, info=""
        )
        self.progress.start()

    def step(self, step: int, epoch: int, step_in_epoch: int, logs: dict[str, float], batch_size: int) -> None:
        speed, _ = self.rate(step)
        self.progress.update(
            self.step_task, completed=step_in_epoch,
            info=f"{_losses(logs)}  {speed * batch_size:.0f} samples/s",
        )

    def epoch(self, epoch: int, means: dict[str, float]) -> None:
        self.progress.update(self.epoch_task, completed=epoch + 1, info=_losses(means))
        if epoch + 1 < self.epochs:
            self.progress.reset(self.step_task, total=self.steps_per_epoch)

    def note(self, text: str) -> None:
        self.progress.console.print(text)

    def close(self) -> None:
        self.progress.stop()


def reporter(quiet: bool, log_every: int, terminal: bool | None = None) -> Reporter:
    """Rich on a terminal, plain lines when stdout is not one, nothing with ``quiet``."""
    if quiet:
        return Reporter()
    if terminal is None:
        terminal = sys.stdout.isatty()
    return RichReporter() if terminal else PlainReporter(log_every)


def summary(values: list[dict[str, Any]]) -> dict[str, float]:
    """Mean of each logged value over a list of step logs."""
    keys = {key for logs in values for key in logs}
    return {key: sum(v[key] for v in values if key in v) / max(1, sum(key in v for v in values)) for key in sorted(keys)}
