"""Training on the dataset's held-out split: a classifier's validation, a generative model's
held-out measures and reconstructions.

A classifier trained on a dataset's ``split: train`` is scored on its ``split: test`` after each
epoch (``"type": "validation"`` in metrics.jsonl); after the last epoch with every score, recorded
in run.json's ``validation``. Without such splits there is nothing held out, and it says so.

A generative model that measures itself on held-out images (``GenerativeModel.held_out_logs``,
API 1.6) has those values averaged over the same split after each epoch (:class:`HeldOutMeasures`,
``held_out/<key>`` in the epoch's record, see :mod:`ganctl.evaluation.held_out`); one that
reconstructs images has fixed held-out images drawn beside their reconstructions
(:class:`Reconstructions`). A model that does neither opens no held-out data.
"""

from __future__ import annotations

from dataclasses import dataclass

from ganctl import api
from ganctl.evaluation.classification import predict, scores
from ganctl.evaluation.held_out import abilities, held_out_means, reconstruction_pairs
from ganctl.plugins import PluginHost
from ganctl.recipe.load import Section
from ganctl.runs.checkpoint import Progress
from ganctl.runs.images import pairs_grid, save_png
from ganctl.runs.rundir import RunDir
from ganctl.session.assemble import Session
from ganctl.session.data import build_dataset, held_out_section
from ganctl.training.callbacks import Callback
from ganctl.training.progress import Reporter
from ganctl.training.samples import PeriodicGrids


@dataclass(frozen=True)
class HeldOut:
    """The held-out data: its (validated) data section and the dataset built from it."""

    section: Section
    dataset: api.Dataset


def open_held_out(trained_on: Section, host: PluginHost) -> HeldOut | None:
    """The held-out data of a model trained on ``trained_on``, loaded; None when there is none."""
    section = held_out_section(trained_on)
    return None if section is None else HeldOut(section, build_dataset(section, host))


class Validation(Callback):
    """Scores the classifier on the held-out data after each epoch (all the scores after the last)."""

    def __init__(self, session: Session, run: RunDir, reporter: Reporter, held_out: HeldOut | None) -> None:
        self.engine, self.run, self.reporter, self.held_out = session.engine, run, reporter, held_out

    def on_epoch_end(self, progress: Progress, means: dict[str, float], last: bool) -> None:
        if self.held_out is None:
            if last:
                self.reporter.note("no held-out split to validate on (the dataset has no train/test splits, or the "
                                   "recipe does not train on split: train): accuracy is only measured on batches")
            return
        probabilities, labels = predict(lambda images: self.engine.classify(images)[0], self.held_out.dataset)
        values = scores(probabilities, labels, full=last)
        self.run.log({"step": progress.step, "epoch": progress.epoch, "type": "validation",
                      **{f"validation/{k}": v for k, v in values.items()}})
        self.reporter.note(f"epoch {progress.epoch} held-out {self.held_out.section.params.split} split: "
                           + ", ".join(f"{k} {v:.4g}" for k, v in values.items()))
        if last:
            self.run.update_info(validation={"data": self.held_out.section.to_dict(), "n": len(labels), **values})


class HeldOutMeasures:
    """A generative model's held-out values and reconstructions, when it gives them: its
    held-out data is opened when this is made (a problem with it stops training before the run
    is made), and not at all for a model that gives neither. Without a held-out split it warns
    once and measures nothing."""

    def __init__(self, session: Session, host: PluginHost, reporter: Reporter) -> None:
        self.engine = session.engine
        self.can = abilities(session.engine, session.spec)
        self.held_out = open_held_out(session.recipe.data, host) if self.can else None
        if self.can and self.held_out is None:
            what = " and ".join(x for x, able in (("held-out values", self.can.logs),
                                                  ("reconstructions", self.can.reconstructs)) if able)
            reporter.warn(f"the {session.recipe.model.plugin} model gives {what} on held-out images, but the data has "
                          "no held-out split (the dataset has no train/test splits, or the recipe does not train on "
                          "split: train): they are skipped. Set split: train in data: to measure them.")

    def values(self) -> dict[str, float]:
        """``held_out/<key>`` over the held-out split (see :mod:`ganctl.evaluation.held_out`); {} when none."""
        if not self.can.logs or self.held_out is None:
            return {}
        return held_out_means(self.engine, self.held_out.dataset)[0]


class Reconstructions(PeriodicGrids):
    """``samples/reconstructions-epoch-NNNN.png`` beside the sample grids (every
    ``train.sample_every`` epochs and after the last) and ``samples/reconstructions-final.png``
    once training completed: fixed held-out images, each with its reconstruction to its right."""

    def __init__(self, session: Session, run: RunDir, measures: HeldOutMeasures) -> None:
        super().__init__(session, run)
        self.measures = measures

    def write(self, name: str) -> None:
        held_out = self.measures.held_out
        if not self.measures.can.reconstructs or held_out is None:
            return
        found = reconstruction_pairs(self.measures.engine, held_out.dataset)
        if found is not None:
            save_png(pairs_grid(*found), self.run.samples / f"reconstructions-{name}.png")
