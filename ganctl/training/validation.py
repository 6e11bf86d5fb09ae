"""A classifier's validation during training: its scores on the dataset's held-out split.

A classifier trained on a dataset's ``split: train`` is scored on its ``split: test`` after each
epoch (``"type": "validation"`` in metrics.jsonl); after the last epoch with every score, recorded
in run.json's ``validation``. Without such splits there is nothing held out, and it says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from ganctl import api
from ganctl.evaluation.classification import predict, scores
from ganctl.plugins import PluginHost
from ganctl.recipe.load import Section
from ganctl.runs.checkpoint import Progress
from ganctl.runs.rundir import RunDir
from ganctl.session.assemble import Session
from ganctl.session.data import build_dataset, held_out_section
from ganctl.training.callbacks import Callback
from ganctl.training.progress import Reporter


@dataclass(frozen=True)
class HeldOut:
    """The held-out data: its (validated) data section and the dataset built from it."""

    section: Section
    dataset: api.Dataset


def open_held_out(trained_on: Section, host: PluginHost) -> HeldOut | None:
    """The held-out data of a classifier trained on ``trained_on``, loaded; None when there is none."""
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
