"""The training loop: backend-agnostic; the engine does the math.

One *step* takes one batch; on it each player makes ``schedule[player]`` updates, in the order
of ``model.players``, each with fresh latents. Latents are drawn on the host from
``(seed, step)``, so a run is reproducible and a resumed run draws exactly what the
uninterrupted one would have.
"""

from __future__ import annotations

import math
import platform
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ganctl import __version__, checkpoint, interrupts
from ganctl.checkpoint import Progress
from ganctl.console import warn
from ganctl.errors import ConfigError, GanctlError
from ganctl.images import grid, save_png
from ganctl.progress import Reporter
from ganctl.rundir import RunDir, recipe_hash
from ganctl.sampling import latents, sample_labels
from ganctl.session import Session

SAMPLE_COUNT = 64
BEST = "best"  # checkpoints/best/: the checkpoint train.keep_best chose
_SAMPLE_STREAM = 0x5A3D1E  # separates the fixed sample latents from the training latents


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
    run: RunDir
    progress: Progress
    seconds: float


class Trainer:
    """Checks the run's shape up front (before any directory is made), then trains into ``run``."""

    def __init__(self, session: Session, reporter: Reporter, host: Any = None) -> None:
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
        self.expected_shapes = {name: tuple(v.shape) for name, v in self.engine.state_variables().items()}
        self.generative = self.model.kind == "generator"
        self.progress = Progress()  # where the loop stands
        self.saved = Progress()  # the newest checkpoint written or loaded
        self.resumed_means = EpochMeans()  # the means of the epoch a resume starts inside
        self._real_spread: float | None = None
        self._best_diversity = 0.0
        self.validation: Any = None
        self.validation_data: dict[str, Any] | None = None
        if not self.generative and host is not None:
            self._open_validation()

    def _open_validation(self) -> None:
        """A classifier's held-out data: the dataset's test split, when it is trained on its train split."""
        from ganctl.data import build_dataset, held_out_sections
        from ganctl.recipe import validate_section

        section = self.recipe.data.to_dict()
        found = held_out_sections(section, self.host)
        if found is None or section.get("split") != found[1]["split"]:
            return
        self.validation_data = found[0]
        self.validation = build_dataset(validate_section(found[0], "datasets", self.host, source="validation data"),
                                        self.host)

    def use(self, run: RunDir) -> Trainer:
        self.run = run
        return self

    # -- checkpoints ----------------------------------------------------------------------------

    def save(self, progress: Progress, epoch_means: EpochMeans | None = None) -> None:
        """Checkpoint ``progress``; ``epoch_means``: the unfinished epoch's running means."""
        meta = {"backend": self.session.backend, "recipe_hash": recipe_hash(self.recipe.to_dict())}
        if epoch_means is not None and progress.step_in_epoch:
            meta["epoch_means"] = epoch_means.to_dict()
        checkpoint.save(self.run.checkpoints, self.engine.state_arrays(), progress, meta,
                        keep=self.recipe.train.keep_checkpoints)
        self.run.update_info(step=progress.step, epoch=progress.epoch)
        self.saved = progress

    def restore(self) -> Progress:
        """Load the newest usable checkpoint; Progress() when there is none yet.

        Whatever the run logged after that checkpoint is dropped from metrics.jsonl: the resumed
        run logs it again.
        """
        found, skipped = checkpoint.latest(self.run.checkpoints, self.expected_shapes)
        if skipped and found is not None:
            warn(checkpoint.skipped_note(skipped, found, "resuming from"))
        if found is None:
            if skipped:
                raise ConfigError(
                    f"no usable checkpoint in {self.run.checkpoints}: {'; '.join(skipped)}. "
                    "The run cannot be resumed; start a new one."
                )
            self.reporter.note("no checkpoint yet: starting this run from the beginning")
            self.run.truncate_metrics(0)
            return Progress()
        if found.meta.get("backend") != self.session.backend:
            raise ConfigError(
                f"{found.path} was written by the {found.meta.get('backend')} backend; resume with "
                f"--backend {found.meta.get('backend')}."
            )
        self.engine.load_state(found.arrays)
        self.run.truncate_metrics(found.progress.step)
        self.resumed_means = EpochMeans.from_dict(found.meta.get("epoch_means"))
        self.saved = found.progress
        return found.progress

    # -- samples --------------------------------------------------------------------------------

    def diversity(self) -> float:
        """Sample diversity: mean pairwise distance within the fixed sample batch, relative to
        the same for a fixed batch of real images (1: as diverse as the data; 0: all alike)."""
        if self._real_spread is None:
            real = self.dataset.take(np.random.default_rng([self.recipe.seed, _SAMPLE_STREAM]).permutation(
                len(self.dataset))[:SAMPLE_COUNT]).images
            self._real_spread = _spread(real)
        spec = self.session.spec
        z = latents([self.recipe.seed, _SAMPLE_STREAM], SAMPLE_COUNT, self.model.latent_dim)
        labels = sample_labels(SAMPLE_COUNT, spec.num_classes) if self.model.conditional else None
        return _spread(self.engine.generate(z, labels)) / max(self._real_spread, 1e-12)

    def check_collapse(self, progress: Progress) -> float:
        """Log the sample diversity; warn when it falls below half of its best so far."""
        value = self.diversity()
        self.run.log({"step": progress.step, "epoch": progress.epoch, "type": "diversity", "diversity": value})
        if collapsed(value, self._best_diversity):
            self.reporter.note(
                f"warning: possible mode collapse at epoch {progress.epoch}: sample diversity {value:.2f} of the "
                f"real data's, down from {self._best_diversity:.2f} (see samples/; a lower learning rate or "
                "another loss may help)")
        self._best_diversity = max(self._best_diversity, value)
        return value

    def write_samples(self, name: str) -> None:
        spec = self.session.spec
        z = latents([self.recipe.seed, _SAMPLE_STREAM], SAMPLE_COUNT, self.model.latent_dim)
        labels = sample_labels(SAMPLE_COUNT, spec.num_classes) if self.model.conditional else None
        save_png(grid(self.engine.generate(z, labels), labels), self.run.samples / f"{name}.png")

    # -- classifiers ----------------------------------------------------------------------------

    def validate(self, progress: Progress, last: bool) -> dict[str, float] | None:
        """A classifier's scores on the held-out split (all of them after the last epoch)."""
        if self.validation is None:
            if last:
                self.reporter.note("no held-out split to validate on (the dataset has no train/test splits, or the "
                                   "recipe does not train on split: train): accuracy is only measured on batches")
            return None
        from ganctl.classification import predict, scores

        probabilities, labels = predict(lambda images: self.engine.classify(images)[0], self.validation)
        values = scores(probabilities, labels, full=last)
        self.run.log({"step": progress.step, "epoch": progress.epoch, "type": "validation",
                      **{f"validation/{k}": v for k, v in values.items()}})
        self.reporter.note(f"epoch {progress.epoch} held-out {self.validation_data['split']} split: "
                           + ", ".join(f"{k} {v:.4g}" for k, v in values.items()))
        if last:
            self.run.update_info(validation={"data": self.validation_data, "n": len(labels), **values})
        return values

    # -- metrics --------------------------------------------------------------------------------

    def evaluate(self, progress: Progress, last: bool) -> list[Any]:
        """The recipe's metrics due after this epoch (``every``, and all of them after the last)."""
        epoch = progress.epoch
        due = [m for m in self.recipe.metrics if last or (m.every and epoch % m.every == 0)]
        if not due or self.host is None:
            return []
        from ganctl import evaluation

        subject = evaluation.subject_from_session(self.session, progress.step)
        results = []
        for section in due:  # one at a time: each may ask for its own n
            request = evaluation.request(self.host, section.to_dict(core=("features",)))
            results += evaluation.evaluate(subject, [request], self.host, n=section.n,
                                           seed=self.recipe.seed, real_dataset=self.dataset)
        record = {"step": progress.step, "epoch": epoch, "type": "eval"}
        for result in results:
            record.update({f"{result.metric}/{k}": v for k, v in result.values.items()})
        self.run.log(record)
        self.reporter.note(f"epoch {epoch} metrics: " + ", ".join(
            f"{r.metric} {r.headline[1]:.4g}" for r in results))
        self._keep_best(progress, results)
        return results

    def _keep_best(self, progress: Progress, results: list[Any]) -> None:
        """Save the state as ``checkpoints/best/`` when ``train.keep_best``'s metric improved."""
        rule = self.recipe.train.keep_best
        found = next((r for r in results if rule is not None and r.metric == rule.metric), None)
        if rule is None or found is None:
            return
        key, value = found.headline
        best = self.run.read_info().get("best")
        if best is not None and not (value < best["value"] if rule.mode == "min" else value > best["value"]):
            return
        meta = {"backend": self.session.backend, "recipe_hash": recipe_hash(self.recipe.to_dict()),
                "best": {"metric": rule.metric, "value": value}}
        checkpoint.save(self.run.checkpoints / BEST, self.engine.state_arrays(), progress, meta, keep=1)
        self.run.update_info(best={"metric": rule.metric, "key": key, "value": value, "mode": rule.mode,
                                   "step": progress.step, "epoch": progress.epoch})
        self.reporter.note(f"best {rule.metric} so far ({key} {value:.4g}): saved as {self.run.checkpoints / BEST}")

    # -- the loop -------------------------------------------------------------------------------

    def fit(self, start: Progress) -> Outcome:
        """Train from ``start`` to the recipe's last epoch.

        SIGINT / SIGTERM are deferred for the whole loop (:mod:`ganctl.interrupts`): after the
        step or the end-of-epoch work in progress, the state is checkpointed and
        :class:`Interrupted` raised. A second signal stops at once, without a new checkpoint.
        Either way run.json says ``interrupted``, never ``running``.
        """
        train = self.recipe.train
        began = time.perf_counter()
        self.reporter.start(train.epochs, self.steps_per_epoch, start.step, start.epoch)
        self.run.update_info(status="running")
        self.progress = start
        try:
            with interrupts.deferred():
                try:
                    self._loop(start)
                finally:
                    self.reporter.close()
                if self.generative:
                    self.write_samples("final")
                self.run.update_info(status="completed", step=self.progress.step, epoch=self.progress.epoch)
        except Exception as exc:  # a bug or an I/O failure: run.json must not say "running" any more
            if self.run.read_info().get("status") == "running":
                self.run.update_info(status="failed", error=f"{type(exc).__name__}: {exc}")
            raise
        except interrupts.Interrupt as stop:
            interrupts.caught()
            self.run.update_info(status="interrupted")
            kept = (f"the newest checkpoint is step {self.saved.step}" if self.saved.step or self.saved.epoch
                    else "no checkpoint had been written yet, so a resume starts from the beginning")
            raise Interrupted(stop.signum, self.run, f"stopped at once at step {self.progress.step}, without a "
                              f"new checkpoint; {kept}") from None
        return Outcome(self.run, self.progress, time.perf_counter() - began)

    def _stop_if_asked(self, progress: Progress, means: EpochMeans | None) -> None:
        """At a safe point: when a signal was received, checkpoint (unless just done) and stop."""
        signum = interrupts.requested()
        if signum is None:
            return
        if self.saved != progress:
            self.save(progress, means)
        self.run.update_info(status="interrupted")
        raise Interrupted(signum, self.run, f"stopped at step {progress.step} and saved a checkpoint")

    def _loop(self, start: Progress) -> None:
        recipe, train = self.recipe, self.recipe.train
        schedule = self.model.schedule()
        progress = start
        for epoch in range(progress.epoch, train.epochs):
            means = self.resumed_means if progress.step_in_epoch else EpochMeans()
            batches = self.dataset.batches(train.batch_size, seed=recipe.seed, epoch=epoch,
                                           start=progress.step_in_epoch)
            for index in range(progress.step_in_epoch, self.steps_per_epoch):
                batch = next(batches)
                logs = self._step(progress.step, batch, schedule)
                progress = self.progress = Progress(progress.step + 1, epoch, index + 1)
                means.add(logs)
                self.reporter.step(progress.step, epoch, index + 1, logs, train.batch_size)
                if progress.step % train.log_every == 0:
                    self.run.log({"step": progress.step, "epoch": epoch + 1, **logs})
                self._stop_if_asked(progress, means)
            progress = self.progress = Progress(progress.step, epoch + 1, 0)
            self.run.log({"step": progress.step, "epoch": epoch + 1, "type": "epoch", **means.means()})
            self.reporter.epoch(epoch, means.means())
            last = epoch + 1 == train.epochs
            if self.generative:
                self.check_collapse(progress)
                self.evaluate(progress, last)
                if (epoch + 1) % train.sample_every == 0 or last:
                    self.write_samples(f"epoch-{epoch + 1:04d}")
            else:
                self.validate(progress, last)
            if (epoch + 1) % train.checkpoint_every == 0 or last:
                self.save(progress)
            if not last:  # after the last epoch the run is complete: nothing is left to stop
                self._stop_if_asked(progress, None)

    def _step(self, step: int, batch: Any, schedule: dict[str, int]) -> dict[str, float]:
        images = batch.images
        labels = None if batch.labels is None else batch.labels.astype(np.int32)
        size = images.shape[0]
        rng = np.random.default_rng([self.recipe.seed, step])
        logs: dict[str, float] = {}
        for player in self.model.players:
            for _ in range(schedule.get(player, 1)):
                z = rng.standard_normal((size, max(self.model.latent_dim, 1)), dtype=np.float32)
                values = self.engine.step(player, images, labels, z)
                bad = [k for k, v in values.items() if not math.isfinite(v)]
                if bad:
                    raise self._non_finite(player, bad[0], values[bad[0]], step + 1)
                logs.update({f"{player}/{k}": v for k, v in values.items()})
        return logs

    def _non_finite(self, player: str, key: str, value: float, step: int) -> NonFinite:
        found, _ = checkpoint.latest(self.run.checkpoints)
        kept = (f"the last finite checkpoint is {found.path} (step {found.progress.step})" if found
                else "no checkpoint had been written yet")
        self.run.update_info(status="failed", error=f"{player}/{key} = {value} at step {step}")
        return NonFinite(
            f"the {player} {key} became {value} at step {step}; training stopped and {kept}. "
            "Lower the learning rate (train.optimizer.learning_rate), or try another loss or seed."
        )


COLLAPSE_DROP = 0.5  # warn when diversity falls below this fraction of its best so far


def collapsed(value: float, best: float) -> bool:
    """The collapse alarm's rule: a sharp drop from the best diversity seen (not a low value per se)."""
    return best > 0 and value < COLLAPSE_DROP * best


def _spread(images: np.ndarray) -> float:
    """Mean Euclidean distance between the images of a batch, over all pairs."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    squared = np.sum(flat**2, axis=1)
    distances = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * flat @ flat.T, 0.0))
    n = len(flat)
    return float(distances.sum() / (n * (n - 1))) if n > 1 else 0.0


def run_info(session: Session, host_plugins: dict[str, str]) -> dict[str, Any]:
    """The initial run.json: versions, backend, devices, seed, data shape."""
    import keras

    from ganctl.engine import engine_for

    engine = engine_for(session.backend)
    return {
        "ganctl": __version__,
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": session.backend,
        "backend_version": engine.framework_version(),
        "devices": engine.devices(),
        "jit": session.jit,
        "plugins": host_plugins,
        "seed": session.recipe.seed,
        "recipe_hash": recipe_hash(session.recipe.to_dict()),
        "model": session.recipe.model.plugin,
        "kind": session.model.kind,
        "data": session.recipe.data.plugin,
        "data_spec": session.spec.to_dict(),
        "latent_dim": session.model.latent_dim,
        "conditional": session.model.conditional,
        "status": "created",
        "step": 0,
        "epoch": 0,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
