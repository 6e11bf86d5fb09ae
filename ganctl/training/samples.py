"""A generator's fixed samples during training: the sample grids, and the mode-collapse alarm.

Both draw the same fixed batch (:func:`sample_inputs`: the same latents and labels at every epoch
and for every backend), so grids of successive epochs compare, and so do diversities.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ganctl.runs.checkpoint import Progress
from ganctl.runs.images import grid, save_png
from ganctl.runs.rundir import RunDir
from ganctl.runs.tables import write_table
from ganctl.sampling import inputs
from ganctl.session.assemble import Session
from ganctl.training.callbacks import Callback
from ganctl.training.progress import Reporter

SAMPLE_COUNT = 64
SAMPLE_STREAM = 0x5A3D1E
"""Seeds the fixed sample latents (with the recipe's seed) apart from the training latents."""
COLLAPSE_DROP = 0.5  # warn when diversity falls below this fraction of its best so far


def sample_inputs(session: Session) -> tuple[np.ndarray, np.ndarray | None]:
    """The fixed sample batch's latents and labels (the classes in turn; None when unconditional)."""
    model = session.model
    return inputs([session.recipe.seed, SAMPLE_STREAM], SAMPLE_COUNT, model.latent_dim,
                  session.spec.num_classes if model.conditional else 0)


def spread(images: np.ndarray) -> float:
    """Mean Euclidean distance between the images of a batch, over all pairs."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    squared = np.sum(flat**2, axis=1)
    distances = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * flat @ flat.T, 0.0))
    n = len(flat)
    return float(distances.sum() / (n * (n - 1))) if n > 1 else 0.0


def collapsed(value: float, best: float) -> bool:
    """The collapse alarm's rule: a sharp drop from the best diversity seen (not a low value per se)."""
    return best > 0 and value < COLLAPSE_DROP * best


class PeriodicGrids(Callback, ABC):
    """A grid named ``epoch-NNNN`` every ``train.sample_every`` epochs and after the last one, and
    one named ``final`` once training completed; a subclass says what :meth:`write` draws."""

    def __init__(self, session: Session, run: RunDir) -> None:
        self.session, self.run = session, run
        self.sample_every = session.recipe.train.sample_every

    def on_epoch_end(self, progress: Progress, means: dict[str, float], last: bool) -> None:
        if progress.epoch % self.sample_every == 0 or last:
            self.write(f"epoch-{progress.epoch:04d}")

    def on_train_end(self, progress: Progress, completed: bool) -> None:
        if completed:
            self.write("final")

    @abstractmethod
    def write(self, name: str) -> None:
        """Write the grid ``name`` (``epoch-NNNN`` or ``final``)."""


class SampleGrids(PeriodicGrids):
    """``samples/epoch-NNNN.png`` every ``train.sample_every`` epochs and after the last one, and
    ``samples/final.png`` once training completed (``.csv`` files of decoded rows for a table)."""

    def write(self, name: str) -> None:
        """One grid, drawn with the generator's moving average when ``train.ema`` keeps one."""
        z, labels = sample_inputs(self.session)
        with self.session.engine.averaged():
            images = self.session.engine.generate(z, labels)
        spec = self.session.spec
        if spec.kind == "table":  # a table's samples are rows: samples/NAME.csv (API 1.7)
            write_table(self.run.samples / f"{name}.csv", spec, images, self.session.recipe.seed)
            return
        save_png(grid(images, labels), self.run.samples / f"{name}.png")


class CollapseAlarm(Callback):
    """Logs the sample diversity after each epoch (``"type": "diversity"`` in metrics.jsonl) and
    warns when it falls below half of its best so far: a sign of mode collapse."""

    def __init__(self, session: Session, run: RunDir, reporter: Reporter) -> None:
        self.session, self.run, self.reporter = session, run, reporter
        self.best = 0.0
        self.real_spread: float | None = None

    def diversity(self) -> float:
        """Sample diversity: mean pairwise distance within the fixed sample batch, relative to
        the same for a fixed batch of real images (1: as diverse as the data; 0: all alike)."""
        if self.real_spread is None:
            dataset, seed = self.session.dataset, self.session.recipe.seed
            chosen = np.random.default_rng([seed, SAMPLE_STREAM]).permutation(len(dataset))[:SAMPLE_COUNT]
            self.real_spread = spread(dataset.take(chosen).images)
        z, labels = sample_inputs(self.session)
        return spread(self.session.engine.generate(z, labels)) / max(self.real_spread, 1e-12)

    def on_epoch_end(self, progress: Progress, means: dict[str, float], last: bool) -> None:
        value = self.diversity()
        self.run.log({"step": progress.step, "epoch": progress.epoch, "type": "diversity", "diversity": value})
        if collapsed(value, self.best):
            self.reporter.note(
                f"warning: possible mode collapse at epoch {progress.epoch}: sample diversity {value:.2f} of the "
                f"real data's, down from {self.best:.2f} (see samples/; a lower learning rate or "
                "another loss may help)")
        self.best = max(self.best, value)
