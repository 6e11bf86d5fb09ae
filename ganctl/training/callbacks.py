"""What the training loop calls around its steps: the :class:`Callback` protocol and :class:`CallbackList`.

The loop (:mod:`ganctl.training.loop`) only trains: epochs, batches, steps, the NaN check, safe
points for signals, the run's status. Everything else a run does while it trains (progress on the
screen, sample grids, the collapse alarm, in-training metrics and keep-best, a classifier's
validation, periodic checkpoints) is a callback, called in the order of the list; the order is
part of the behaviour (it is the order of the lines printed and of the records in metrics.jsonl).

The loop's sequence, for each epoch::

    for each step:   the step; on_step_end(progress, logs); the step's record (every log_every); safe point
    after the epoch: the epoch's record; on_epoch_end(progress, means, last); safe point (not after the last)

with one ``on_train_begin`` before the first step and one ``on_train_end`` when the loop ends. A
*safe point* is where training may stop: a signal was received (:mod:`ganctl.interrupts`) or a
callback asked for it (its hook returned True); the state is checkpointed there first.
"""

from __future__ import annotations

from collections.abc import Sequence

from ganctl.runs.checkpoint import Progress


class Callback:
    """Work done around the training loop; every hook does nothing unless overridden.

    ``progress`` is where training stands when the hook is called (a :class:`Progress`: the global
    step, the epoch and the steps done in it). A callback gets what it works on (the run
    directory, the engine, the reporter...) when it is made: the hooks pass only what changes.
    ``on_step_end`` and ``on_epoch_end`` may return True to stop training at the safe point that
    follows them: it is checkpointed, then the run ends as a completed one (the callbacks after
    this one still run first). An exception from a hook fails the run (run.json says so).
    """

    def on_train_begin(self, progress: Progress) -> None:
        """Before the first step, once per :meth:`Trainer.fit` (``progress``: where it starts,
        past the checkpoint a resume loaded)."""

    def on_step_end(self, progress: Progress, logs: dict[str, float]) -> bool | None:
        """After each step, before its record is logged (``logs``: the step's values,
        ``<player>/<key>``). Called often: keep it cheap."""

    def on_epoch_end(self, progress: Progress, means: dict[str, float], last: bool) -> bool | None:
        """After each epoch, once its record (``means``: the epoch's mean of each logged value) is
        in metrics.jsonl. ``progress`` is at the start of the next epoch (``step_in_epoch`` 0,
        ``epoch``: the epochs done); ``last``: the recipe's last epoch. A first Ctrl-C waits for the
        safe point after the hooks, so slow work (metrics, checkpoints) is not cut in half."""

    def on_train_end(self, progress: Progress, completed: bool) -> None:
        """Once, when the loop ends however it ends: ``completed`` when it trained every epoch (or
        a callback stopped it), else it failed or was interrupted and an exception is on its way:
        then only release what the callback holds (a display), and do not raise."""


class CallbackList(Callback):
    """Calls each hook on every callback, in the order given. A stop asked by one callback
    takes effect only after the others have run their hook too."""

    def __init__(self, callbacks: Sequence[Callback] = ()) -> None:
        self.callbacks = list(callbacks)

    def on_train_begin(self, progress: Progress) -> None:
        for callback in self.callbacks:
            callback.on_train_begin(progress)

    def on_step_end(self, progress: Progress, logs: dict[str, float]) -> bool:
        stop = False
        for callback in self.callbacks:
            stop = bool(callback.on_step_end(progress, logs)) or stop
        return stop

    def on_epoch_end(self, progress: Progress, means: dict[str, float], last: bool) -> bool:
        stop = False
        for callback in self.callbacks:
            stop = bool(callback.on_epoch_end(progress, means, last)) or stop
        return stop

    def on_train_end(self, progress: Progress, completed: bool) -> None:
        for callback in self.callbacks:
            callback.on_train_end(progress, completed)
