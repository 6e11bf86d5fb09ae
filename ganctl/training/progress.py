"""Training progress: a Rich live display on a terminal, plain log lines elsewhere, or nothing.

The one channel from training to the user. :class:`ShowProgress` (a training callback) calls the
same methods whatever the display; the other callbacks print through :meth:`Reporter.note` and
:meth:`Reporter.warn`; :func:`reporter` picks the display.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from ganctl.runs.checkpoint import Progress
from ganctl.training.callbacks import Callback


def _losses(logs: dict[str, float]) -> str:
    return "  ".join(f"{key}={value:.4g}" for key, value in logs.items())


def _samples(per_second: float) -> str:
    return f"{per_second:.0f} samples/s"


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Reporter:
    """Quiet: shows nothing. The base of the others: it measures the speed and the run's ETA.

    The speed is measured from the end of the first step after :meth:`start` (a new run or a
    resume) on: that step includes compiling the training step, seconds that would make the ETA
    of a resumed run many times too long. Until a second step has ended there is no speed and no
    ETA (None). ``clock`` (seconds, monotonic) is there for tests.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock

    def start(self, epochs: int, steps_per_epoch: int, step: int, epoch: int) -> None:
        self.epochs, self.steps_per_epoch = epochs, steps_per_epoch
        self.total = epochs * steps_per_epoch
        self.current = step
        self.speed: float | None = None  # steps per second
        self._mark: tuple[int, float] | None = None  # (step, time) at the end of the first step

    def step(self, step: int, epoch: int, step_in_epoch: int, logs: dict[str, float], batch_size: int) -> None:
        """Called after each step; subclasses call it first, then show what they show."""
        now, self.current = self.clock(), step
        if self._mark is None:
            self._mark = (step, now)
        elif step > self._mark[0] and now > self._mark[1]:
            self.speed = (step - self._mark[0]) / (now - self._mark[1])

    def eta(self) -> float | None:
        """Seconds left until the end of the whole run (every epoch); None until the speed is known."""
        return None if self.speed is None else (self.total - self.current) / self.speed

    def epoch(self, epoch: int, means: dict[str, float]) -> None:
        pass

    def note(self, text: str) -> None:
        """A line for the user (what training did, what it found), shown as the display shows text."""

    def warn(self, text: str) -> None:
        """A warning: ``warning: TEXT`` on stderr, whatever the display (``--quiet`` too)."""
        print(f"warning: {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class PlainReporter(Reporter):
    """One line every ``every`` steps and one per epoch: for logs, pipes and CI."""

    def __init__(self, every: int, stream: TextIO | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(clock)
        self.every = every
        self.stream = stream or sys.stdout

    def _print(self, text: str) -> None:
        if self.stream is None:
            return
        try:
            print(text, file=self.stream, flush=True)
        except BrokenPipeError:  # the reader went away (`ganctl train ... | head`): train on, silently
            self.stream = None

    def step(self, step: int, epoch: int, step_in_epoch: int, logs: dict[str, float], batch_size: int) -> None:
        super().step(step, epoch, step_in_epoch, logs, batch_size)
        if step % self.every == 0:
            line = f"epoch {epoch + 1}/{self.epochs} step {step}/{self.total}  {_losses(logs)}"
            left = self.eta()
            if self.speed is not None and left is not None:
                line += f"  {_samples(self.speed * batch_size)}  eta {_clock(left)}"
            self._print(line)

    def epoch(self, epoch: int, means: dict[str, float]) -> None:
        self._print(f"epoch {epoch + 1}/{self.epochs} done  {_losses(means)}")

    def note(self, text: str) -> None:
        self._print(text)


MIN_BAR, MAX_BAR = 10, 60  # a bar narrower than MIN_BAR says nothing: it is dropped instead


class RichReporter(Reporter):
    """A live display: a bar line for the epochs with the ETA of the whole run, one for this
    epoch's steps with samples/s, and the latest losses on a line of their own.

    It is laid out for the console's width at each refresh: when it is narrow the bars shrink
    first, then samples/s goes, then the bars; the losses line is cut with an ellipsis, never
    wrapped. Notes are printed above it, as they are (no Rich markup).
    """

    def __init__(self, console: Any, clock: Callable[[], float] = time.perf_counter) -> None:
        from rich.live import Live

        super().__init__(clock)
        self.console = console
        self.epochs_done = self.in_epoch = 0
        self.samples: float | None = None  # samples per second
        self.losses = ""
        self.live = Live(self, console=console, refresh_per_second=4, transient=False)

    def start(self, epochs: int, steps_per_epoch: int, step: int, epoch: int) -> None:
        super().start(epochs, steps_per_epoch, step, epoch)
        self.epochs_done, self.in_epoch = epoch, step - epoch * steps_per_epoch
        self.live.start()

    def step(self, step: int, epoch: int, step_in_epoch: int, logs: dict[str, float], batch_size: int) -> None:
        super().step(step, epoch, step_in_epoch, logs, batch_size)
        self.epochs_done, self.in_epoch = epoch, step_in_epoch
        self.samples = None if self.speed is None else self.speed * batch_size
        self.losses = _losses(logs)

    def epoch(self, epoch: int, means: dict[str, float]) -> None:
        self.epochs_done, self.losses = epoch + 1, f"epoch {epoch + 1} means: {_losses(means)}"
        if epoch + 1 < self.epochs:
            self.in_epoch = 0

    def note(self, text: str) -> None:
        from rich.text import Text

        self.console.print(Text(text))

    def close(self) -> None:
        self.live.stop()

    def __rich_console__(self, console: Any, options: Any) -> Any:
        """The display, laid out for ``options.max_width`` columns."""
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        left = self.eta()
        rows = [["epochs", self.epochs_done, self.epochs, "" if left is None else f"eta {_clock(left)}"],
                ["steps", self.in_epoch, self.steps_per_epoch,
                 "" if self.samples is None else _samples(self.samples)]]
        label = max(len(row[0]) for row in rows)
        count = max(len(f"{row[2]}/{row[2]}") for row in rows)
        room = len("eta 0:00:00")  # kept for the ETA before it appears: the bars do not jump then
        info = max(room, *(len(row[3]) for row in rows))
        bar = min(MAX_BAR, options.max_width - label - count - info - 3)  # 3: the gaps between 4 columns
        if bar < MIN_BAR:  # too narrow: samples/s goes first, then (below) the bars
            rows[1][3] = ""
            info = max(room, len(rows[0][3]))
            bar = min(MAX_BAR, options.max_width - label - count - info - 3)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True, style="bold", width=label)
        if bar >= MIN_BAR:
            grid.add_column(width=bar)
        grid.add_column(justify="right", no_wrap=True, width=count)
        grid.add_column(no_wrap=True, width=info)
        for name, done, total, text in rows:
            bars = [ProgressBar(total=total, completed=done, width=bar)] if bar >= MIN_BAR else []
            grid.add_row(Text(name), *bars, Text(f"{done}/{total}"), Text(text))
        yield grid
        yield Text(self.losses, no_wrap=True, overflow="ellipsis")


def reporter(quiet: bool, log_every: int, console: Any, terminal: bool | None = None) -> Reporter:
    """Rich on a terminal (drawn on ``console``, stdout's Rich console), plain lines when stdout
    is not one, nothing with ``quiet``."""
    if quiet:
        return Reporter()
    if terminal is None:
        terminal = sys.stdout.isatty()
    return RichReporter(console) if terminal else PlainReporter(log_every)


class ShowProgress(Callback):
    """The training callback that drives a :class:`Reporter`: start, each step, each epoch, close."""

    def __init__(self, reporter: Reporter, epochs: int, steps_per_epoch: int, batch_size: int) -> None:
        self.reporter = reporter
        self.epochs, self.steps_per_epoch, self.batch_size = epochs, steps_per_epoch, batch_size

    def on_train_begin(self, progress: Progress) -> None:
        self.reporter.start(self.epochs, self.steps_per_epoch, progress.step, progress.epoch)

    def on_step_end(self, progress: Progress, logs: dict[str, float]) -> None:
        self.reporter.step(progress.step, progress.epoch, progress.step_in_epoch, logs, self.batch_size)

    def on_epoch_end(self, progress: Progress, means: dict[str, float], last: bool) -> None:
        self.reporter.epoch(progress.epoch - 1, means)

    def on_train_end(self, progress: Progress, completed: bool) -> None:
        self.reporter.close()

