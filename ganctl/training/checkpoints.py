"""A run's checkpoints during training: the periodic ones, the one at a stop, keep-best's, resuming.

The files themselves (atomic writes, verified loads, falling back to the newest good one) are
:mod:`ganctl.runs.checkpoint`'s; this module decides when they are written and what they carry.
"""

from __future__ import annotations

from typing import Any

from ganctl.errors import ConfigError
from ganctl.runs import checkpoint
from ganctl.runs.checkpoint import Progress
from ganctl.runs.rundir import RunDir, recipe_hash
from ganctl.session.assemble import Session
from ganctl.training.callbacks import Callback
from ganctl.training.progress import Reporter


class Checkpoints(Callback):
    """Writes ``checkpoints/ckpt-<step>.npz`` every ``train.checkpoint_every`` epochs and after the
    last one, keeps the newest ``train.keep_checkpoints``, and loads the newest usable one to resume.

    ``saved`` is the progress of the newest checkpoint written or loaded (``Progress()``: none).
    """

    def __init__(self, session: Session, run: RunDir, reporter: Reporter) -> None:
        self.session, self.run, self.reporter = session, run, reporter
        self.train = session.recipe.train
        self.meta = {"backend": session.backend, "recipe_hash": recipe_hash(session.recipe.to_dict())}
        self.expected_shapes = {name: tuple(v.shape) for name, v in session.engine.state_variables().items()}
        self.saved = Progress()

    def on_epoch_end(self, progress: Progress, means: dict[str, float], last: bool) -> None:
        if progress.epoch % self.train.checkpoint_every == 0 or last:
            self.save(progress)

    def save(self, progress: Progress, epoch_sums: dict[str, Any] | None = None) -> None:
        """Checkpoint ``progress``, and record its step and epoch in run.json. ``epoch_sums``: the
        unfinished epoch's running sums (``EpochMeans.to_dict()``), kept when ``progress`` is
        inside an epoch, so that a resume reports that epoch's means exactly."""
        meta = dict(self.meta)
        if epoch_sums is not None and progress.step_in_epoch:
            meta["epoch_means"] = epoch_sums
        checkpoint.save(self.run.checkpoints, self.session.engine.state_arrays(), progress, meta,
                        keep=self.train.keep_checkpoints)
        self.run.update_info(step=progress.step, epoch=progress.epoch)
        self.saved = progress

    def save_best(self, progress: Progress, best: dict[str, Any]) -> None:
        """Save the state as the one checkpoint of ``checkpoints/best/``; ``best``: the metric and
        its value, recorded in the checkpoint."""
        checkpoint.save(self.run.best_checkpoints, self.session.engine.state_arrays(), progress,
                        {**self.meta, "best": best}, keep=1)

    def restore(self) -> tuple[Progress, dict[str, Any] | None]:
        """Load the newest usable checkpoint: where it stands, and the running sums of the epoch it
        is inside (None at an epoch's end); ``(Progress(), None)`` when there is none yet.

        Whatever the run logged after that checkpoint is dropped from metrics.jsonl: the resumed
        run logs it again.
        """
        found, skipped = checkpoint.latest(self.run.checkpoints, self.expected_shapes)
        if skipped and found is not None:
            self.reporter.warn(checkpoint.skipped_note(skipped, found, "resuming from"))
        if found is None:
            if skipped:
                raise ConfigError(
                    f"no usable checkpoint in {self.run.checkpoints}: {'; '.join(skipped)}. "
                    "The run cannot be resumed; start a new one."
                )
            self.reporter.note("no checkpoint yet: starting this run from the beginning")
            self.run.truncate_metrics(0)
            return Progress(), None
        if found.meta.get("backend") != self.session.backend:
            raise ConfigError(
                f"{found.path} was written by the {found.meta.get('backend')} backend; resume with "
                f"--backend {found.meta.get('backend')}."
            )
        self.session.engine.load_state(found.arrays)
        self.run.truncate_metrics(found.progress.step)
        self.saved = found.progress
        return found.progress, found.meta.get("epoch_means")

    def last_finite(self) -> str:
        """What is left after a loss became NaN: the newest checkpoint on disk, for the error."""
        found, _ = checkpoint.latest(self.run.checkpoints)
        return (f"the last finite checkpoint is {found.path} (step {found.progress.step})" if found
                else "no checkpoint had been written yet")

    def kept(self) -> str:
        """What a second signal (a stop without a new checkpoint) leaves, for the error."""
        return (f"the newest checkpoint is step {self.saved.step}" if self.saved.step or self.saved.epoch
                else "no checkpoint had been written yet, so a resume starts from the beginning")
