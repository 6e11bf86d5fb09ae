"""The training loop: backend-agnostic; the engine does the math.

One *step* takes one batch; on it each player makes ``schedule[player]`` updates, in the order
of ``model.players``, each with fresh latents. Latents are drawn on the host from
``(seed, step)``, so a run is reproducible and a resumed run draws exactly what the
uninterrupted one would have.

The :class:`Trainer` is only the loop: epochs, batches, steps (k at a time with
``train.steps_per_execution``, :mod:`~ganctl.training.fused`), the NaN check, the safe points
where a signal (:mod:`ganctl.interrupts`) or a callback stops training, and the run's status in
run.json. What a run does around it is a callback (:mod:`ganctl.training.callbacks`), called in
this order: progress (:mod:`~ganctl.training.progress`); for a generator the collapse alarm
(:mod:`~ganctl.training.samples`), the metrics and keep-best (:mod:`~ganctl.training.metrics`),
the sample grids and the reconstructions; for a classifier its validation
(:mod:`~ganctl.training.validation`); then the periodic checkpoints
(:mod:`~ganctl.training.checkpoints`). A generative model's held-out values
(:class:`~ganctl.training.validation.HeldOutMeasures`) join each epoch's record.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ganctl import interrupts
from ganctl.api import TableDataset
from ganctl.errors import ConfigError, GanctlError
from ganctl.evaluation.default_features import Choice
from ganctl.plugins import PluginHost
from ganctl.runs.checkpoint import Progress
from ganctl.runs.rundir import RunDir
from ganctl.sampling import step_latents
from ganctl.session.assemble import Session
from ganctl.session.optimizers import scheduled_rates
from ganctl.training.callbacks import Callback, CallbackList
from ganctl.training.checkpoints import Checkpoints
from ganctl.training.feed import Feed, depth_for
from ganctl.training.fused import chunk_end, chunk_logs, plan_of, steps_for
from ganctl.training.metrics import TrackMetrics
from ganctl.training.progress import Reporter, ShowProgress
from ganctl.training.pruning import PruningReport
from ganctl.training.samples import CollapseAlarm, SampleGrids
from ganctl.training.validation import HeldOutMeasures, Reconstructions, Validation, open_held_out


class Interrupted(GanctlError):
    """Training stopped by SIGINT / SIGTERM; ``what`` says what was kept."""

    def __init__(self, signum: int, run: RunDir, what: str) -> None:
        name = signal.Signals(signum).name
        super().__init__(f"{name} received: {what}. Continue with: ganctl train --resume {run.path}")
        self.exit_code = 128 + signum


@dataclass
class EpochMeans:
    """The running mean of each logged value over one epoch's steps.

    Its sums travel in each checkpoint, so an epoch interrupted and resumed reports the same
    means as one that ran straight through.
    """

    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, logs: dict[str, float]) -> None:
        for key, value in logs.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
            self.counts[key] = self.counts.get(key, 0) + 1

    def means(self) -> dict[str, float]:
        return {key: self.sums[key] / self.counts[key] for key in sorted(self.sums)}

    def to_dict(self) -> dict[str, Any]:
        return {"sums": self.sums, "counts": self.counts}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> EpochMeans:
        data = data or {}
        return cls(dict(data.get("sums", {})), dict(data.get("counts", {})))


class NonFinite(GanctlError):
    """A loss became NaN or infinite."""


@dataclass
class Outcome:
    """What :meth:`Trainer.fit` did: the run, where it ended, and how long it took."""

    run: RunDir
    progress: Progress
    seconds: float


class Trainer:
    """Checks the run's shape up front (before any directory is made), then trains into ``run``.

    Use: ``Trainer(session, reporter, host)``, then :meth:`use` (the run directory), then
    :meth:`restore` when resuming, then :meth:`fit`.
    """

    def __init__(self, session: Session, reporter: Reporter, host: PluginHost) -> None:
        self.session, self.reporter, self.host = session, reporter, host
        self.run: RunDir = None  # type: ignore[assignment]  # set by use()
        self.recipe = session.recipe
        self.engine = session.engine
        self.model = session.model
        self.dataset = session.dataset
        if self.dataset is None:
            raise GanctlError("training needs the dataset")
        train = self.recipe.train
        available = self.dataset.steps_per_epoch(train.batch_size)
        if train.steps_per_epoch and train.steps_per_epoch > available:
            raise ConfigError(
                f"train.steps_per_epoch is {train.steps_per_epoch}, but {len(self.dataset)} examples give only "
                f"{available} batches of {train.batch_size} per epoch: lower it, or leave it unset."
            )
        self.steps_per_epoch = train.steps_per_epoch or available
        problem = self.model.batch_size_problem(train.batch_size)
        if problem is not None:
            raise ConfigError(f"{self.recipe.source}: train.batch_size is {train.batch_size}, but model "
                              f"'{self.recipe.model.plugin}' cannot train on it: {problem}")
        self.generative = self.model.kind == "generator"
        self.progress = Progress()  # where the loop stands
        self.resumed_means = EpochMeans()  # the means of the epoch a resume starts inside
        # The held-out data, loaded now: a problem with it stops us before the run is made.
        self.held_out = None if self.generative else open_held_out(self.recipe.data, host)
        self.measures = HeldOutMeasures(session, host, reporter) if self.generative else None
        self.checkpoints: Checkpoints = None  # type: ignore[assignment]  # set by use()
        self.callbacks = CallbackList()  # set by use()
        self.share = (0, 1)
        """``(index, count)``: this process's share of every global batch when training as several
        processes (``ganctl train --num-processes``): process i of n trains on rows [i*B/n, (i+1)*B/n)."""
        self.feed = Feed(self.step_inputs, lambda inputs: self.engine.stage(*inputs),
                         depth_for(train.prefetch, session.backend))
        self.steps_per_execution = steps_for(train.steps_per_execution, self.engine)
        """Steps per call into the engine (``train.steps_per_execution``, ``auto`` resolved)."""

    def use(self, run: RunDir) -> Trainer:
        """Train into ``run``: make the callbacks that write into it, in their order."""
        self.run = run
        session, reporter, train = self.session, self.reporter, self.recipe.train
        self.checkpoints = Checkpoints(session, run, reporter)
        around: list[Callback] = [ShowProgress(reporter, train.epochs, self.steps_per_epoch, train.batch_size)]
        if self.generative:
            around += [CollapseAlarm(session, run, reporter),
                       TrackMetrics(session, self.host, run, reporter, self.checkpoints, self.default_features,
                                    held_out=self.measures.held_out if self.measures is not None else None),
                       SampleGrids(session, run)]
            if self.measures is not None and self.measures.can.reconstructs:
                around.append(Reconstructions(session, run, self.measures))
        else:
            around.append(Validation(session, run, reporter, self.held_out))
        if train.prune is not None:
            around.append(PruningReport(session, run))
        self.callbacks = CallbackList([*around, self.checkpoints])
        return self

    def default_features(self) -> Choice:
        """The data's default features for the recipe's metrics (its classifier trained now when
        it is not cached yet; :mod:`ganctl.training.default_classifier`)."""
        from ganctl.training.default_classifier import choose

        return choose(self.host, self.recipe.data.to_dict(), self.session.backend, Trainer, dataset=self.dataset)

    def restore(self) -> Progress:
        """Load the newest usable checkpoint into the engine; Progress() when there is none yet.

        Whatever the run logged after that checkpoint is dropped from metrics.jsonl: the resumed
        run logs it again.
        """
        progress, epoch_sums = self.checkpoints.restore()
        self.resumed_means = EpochMeans.from_dict(epoch_sums)
        return progress

    def fit(self, start: Progress, callbacks: Sequence[Callback] = ()) -> Outcome:
        """Train from ``start`` to the recipe's last epoch; ``callbacks``: more of them, called
        after the run's own.

        SIGINT / SIGTERM are deferred for the whole loop (:mod:`ganctl.interrupts`): after the
        step or the end-of-epoch work in progress, the state is checkpointed and
        :class:`Interrupted` raised. A second signal stops at once, without a new checkpoint.
        Either way run.json says ``interrupted``, never ``running``. A callback that asks to stop
        ends the run there, checkpointed, as a completed one.
        """
        every = CallbackList([*self.callbacks.callbacks, *callbacks])
        began = time.perf_counter()
        every.on_train_begin(start)
        self.run.update_info(status="running")
        self.progress = start
        try:
            with interrupts.deferred():
                completed = False
                try:
                    self._loop(start, every)
                    completed = True
                finally:
                    self.feed.close()
                    every.on_train_end(self.progress, completed)
                self.run.update_info(status="completed", step=self.progress.step, epoch=self.progress.epoch)
        except Exception as exc:  # a bug or an I/O failure: run.json must not say "running" any more
            if self.run.read_info().get("status") == "running":
                self.run.update_info(status="failed", error=f"{type(exc).__name__}: {exc}")
            raise
        except interrupts.Interrupt as stop:
            interrupts.caught()
            self.run.update_info(status="interrupted")
            raise Interrupted(stop.signum, self.run, f"stopped at once at step {self.progress.step}, without a "
                              f"new checkpoint; {self.checkpoints.kept()}") from None
        return Outcome(self.run, self.progress, time.perf_counter() - began)

    def _safe_point(self, progress: Progress, means: EpochMeans | None, stop: bool) -> bool:
        """Where training may stop: when a signal was received, checkpoint (unless just done) and
        raise :class:`Interrupted`; when a callback asked (``stop``), checkpoint and return True."""
        signum = interrupts.requested()
        if signum is None and not stop:
            return False
        if self.checkpoints.saved != progress:
            self.checkpoints.save(progress, None if means is None else means.to_dict())
        if signum is None:
            return True
        self.run.update_info(status="interrupted")
        raise Interrupted(signum, self.run, f"stopped at step {progress.step} and saved a checkpoint")

    def _loop(self, start: Progress, callbacks: CallbackList) -> None:
        train = self.recipe.train
        self.engine.begin_training(self.steps_per_epoch)  # a new run's or a resume's first step is next
        schedule = self.model.schedule()
        progress = start
        for epoch in range(progress.epoch, train.epochs):
            means = self.resumed_means if progress.step_in_epoch else EpochMeans()
            batches = self.feed.epoch(self.batches(epoch, progress.step_in_epoch),
                                      progress.step, self.steps_per_epoch - progress.step_in_epoch)
            index = progress.step_in_epoch
            while index < self.steps_per_epoch:  # a chunk of train.steps_per_execution steps at a time
                chunk = [next(batches) for _ in range(index, chunk_end(index, self.steps_per_epoch,
                                                                       self.steps_per_execution))]
                stop = False
                for logs in self.train_steps(progress.step, chunk, schedule):
                    index += 1
                    progress = self.progress = Progress(progress.step + 1, epoch, index)
                    means.add(logs)
                    stop = callbacks.on_step_end(progress, logs) or stop
                    if progress.step % train.log_every == 0:
                        rates = scheduled_rates(self.engine.optimizers,
                                                {p: progress.step * schedule.get(p, 1) for p in self.model.players})
                        self.run.log({"step": progress.step, "epoch": epoch + 1, **logs, **rates})
                if self._safe_point(progress, means, stop):  # safe points fall between chunks
                    return
            progress = self.progress = Progress(progress.step, epoch + 1, 0)
            values = {**means.means(), **(self.measures.values() if self.measures is not None else {})}
            self.run.log({"step": progress.step, "epoch": epoch + 1, "type": "epoch", **values})
            last = epoch + 1 == train.epochs
            stop = callbacks.on_epoch_end(progress, values, last)
            if not last and self._safe_point(progress, None, stop):  # after the last: the run is complete
                return

    def batches(self, epoch: int, start: int) -> Iterator[Any]:
        """Epoch ``epoch``'s batches from batch ``start``: the dataset's permutation of ``(seed, epoch)``, or,
        for a table model that trains by sampling (``Model.training_by_sampling``), rows drawn for
        conditions by ``TableDataset.sampled_batches`` (the batches' labels are the conditions)."""
        seed, size = self.recipe.seed, self.recipe.train.batch_size
        blocks = self.model.training_by_sampling
        if not blocks:
            return self.dataset.batches(size, seed=seed, epoch=epoch, start=start)
        if not isinstance(self.dataset, TableDataset):
            raise ConfigError(f"{self.recipe.source}: model '{self.recipe.model.plugin}' trains by sampling rows of "
                              f"a table, which dataset '{self.recipe.data.plugin}' does not offer (it is not an "
                              "api.TableDataset). Use the csv or parquet dataset.")
        return self.dataset.sampled_batches(blocks, size, seed=seed, epoch=epoch, start=start)

    def step_inputs(self, step: int, batch: Any) -> tuple[np.ndarray, np.ndarray | None, list[np.ndarray]]:
        """What step ``step`` trains on: the batch's images and int32 labels, and the latents of
        each update of the step, in order (the feeding thread makes them ahead, :mod:`~ganctl.training.feed`)."""
        images = batch.images
        labels = None if batch.labels is None else batch.labels.astype(np.int32)
        size = images.shape[0]
        draws = step_latents(self.recipe.seed, step, size, self.model.latent_dim)  # the global batch's
        updates = sum(self.model.schedule().get(player, 1) for player in self.model.players)
        index, count = self.share  # this process's rows of the global batch (all of them in one process)
        rows = slice(size * index // count, size * (index + 1) // count)
        return images[rows], None if labels is None else labels[rows], [next(draws)[rows] for _ in range(updates)]

    def train_steps(self, step: int, chunk: Sequence[tuple[Any, Any]], schedule: dict[str, int]) -> Iterator[dict[str, float]]:
        """The logged values of each step of ``chunk`` (``(batch, inputs)`` of consecutive steps from
        ``step``), in turn: :meth:`train_step` when ``train.steps_per_execution`` is 1, else all the
        chunk's steps in one call into the engine (:mod:`~ganctl.training.fused`), with the same logs."""
        if self.steps_per_execution == 1:
            for offset, (batch, inputs) in enumerate(chunk):
                yield self.train_step(step + offset, batch, schedule, inputs)
            return
        inputs = [self.step_inputs(step + offset, batch) if made is None else made
                  for offset, (batch, made) in enumerate(chunk)]
        yield from chunk_logs(self.engine, plan_of(self.model.players, schedule), inputs, step, self._non_finite)

    def train_step(self, step: int, batch: Any, schedule: dict[str, int], inputs: Any = None) -> dict[str, float]:
        """One step of the loop, on its own: ``step`` (0-based, global) seeds the latents, ``batch``
        (an ``api.Batch``) is what every update of this step trains on, ``schedule`` (the model's
        ``schedule()``) says how many updates each player makes; ``inputs``: the step's
        :meth:`step_inputs`, when made ahead. Returns the logged values
        (``<player>/<key>``: a player's last update's); raises :class:`NonFinite` (and marks the
        run failed) when one is NaN or infinite."""
        images, labels, latents = self.step_inputs(step, batch) if inputs is None else inputs
        draws = iter(latents)
        logs: dict[str, float] = {}
        for player in self.model.players:
            for _ in range(schedule.get(player, 1)):
                values = self.engine.step(player, images, labels, next(draws))
                bad = [k for k, v in values.items() if not math.isfinite(v)]
                if bad:
                    raise self._non_finite(player, bad[0], values[bad[0]], step + 1)
                logs.update({f"{player}/{k}": v for k, v in values.items()})
        return logs

    def _non_finite(self, player: str, key: str, value: float, step: int) -> NonFinite:
        kept = self.checkpoints.last_finite()
        self.run.update_info(status="failed", error=f"{player}/{key} = {value} at step {step}")
        return NonFinite(
            f"the {player} {key} became {value} at step {step}; training stopped and {kept}. "
            "Lower the learning rate (train.optimizer.learning_rate), or try another loss or seed."
        )
