"""A generator's metrics during training (the recipe's ``metrics:``), and ``train.keep_best``.

Each metric runs every ``every`` epochs of its section, and every metric after the last epoch;
the values go to metrics.jsonl (``"type": "eval"``, ``<metric>/<key>``). When the metric that
``train.keep_best`` names improves, the state is saved as ``checkpoints/best/`` and run.json's
``best`` says which step, metric and value.

A metric whose section names no ``features:`` looks through the data's default features
(:mod:`ganctl.evaluation.default_features`: a classifier of the data, trained once and cached),
chosen when the run starts and recorded in run.json under ``default_features``, so that a resumed
run keeps them. A run from before that record looks through the extractor plugins' default
(``pixels``), as it did; the resolved recipe does not change either way.

A model of a table is measured by metrics of tables (:mod:`ganctl.evaluation.tables`): ``n``
generated rows (default: as many as the real ones) against the held-out rows, the training rows
kept in memory for the metrics that need them; no features.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ganctl.evaluation.default_features import Choice
from ganctl.evaluation.metrics import Result, evaluate, request
from ganctl.evaluation.subjects import subject_from_session
from ganctl.evaluation.tables import build_metric
from ganctl.plugins import PluginHost
from ganctl.runs import checkpoint
from ganctl.runs.checkpoint import Progress
from ganctl.runs.rundir import RunDir
from ganctl.session.assemble import Session
from ganctl.session.data import held_out_section
from ganctl.training.callbacks import Callback
from ganctl.training.checkpoints import Checkpoints
from ganctl.training.progress import Reporter


class TrackMetrics(Callback):
    """Computes the recipe's metrics due after each epoch; keeps the best state by one of them."""

    def __init__(self, session: Session, host: PluginHost, run: RunDir, reporter: Reporter,
                 checkpoints: Checkpoints, choose: Callable[[], Choice], held_out: Any = None) -> None:
        self.session, self.host, self.run, self.reporter = session, host, run, reporter
        self.held_out = held_out  # the held-out split already loaded (a HeldOut), for a table's metrics
        self.checkpoints = checkpoints
        self.recipe = session.recipe
        self.table = session.spec.kind == "table"
        self.features = None if self.table else self.default_features(choose)
        self.tables: Any = None  # a table's real rows, loaded when a metric first runs

    def default_features(self, choose: Callable[[], Choice]) -> str | dict[str, Any] | None:
        """The features of the metrics that name none: run.json's record, else (a new run)
        ``choose()``'s, recorded; None (the extractor plugins' default) for a run that began
        before such records, or when every metric names its features."""
        if all(m.features is not None for m in self.recipe.metrics):
            return None
        info = self.run.read_info()
        if "default_features" in info:
            return info["default_features"]["features"]
        if checkpoint.listing(self.run.checkpoints):  # begun before default features were recorded
            return None
        choice = choose()
        self.run.update_info(default_features=choice.to_dict())
        self.reporter.note(f"metrics: {choice.detail}")
        return choice.features

    def on_epoch_end(self, progress: Progress, means: dict[str, float], last: bool) -> None:
        results = self.evaluate(progress, last)
        if results:
            self.keep_best(progress, results)

    def evaluate(self, progress: Progress, last: bool) -> list[Result]:
        """The metrics due after this epoch (``every``, and all of them after the last), logged."""
        epoch = progress.epoch
        due = [m for m in self.recipe.metrics if last or (m.every and epoch % m.every == 0)]
        if not due:
            return []
        results = []
        with self.session.engine.averaged():  # the generator's moving average, when train.ema keeps one
            if self.table:
                results = self.evaluate_table(due, progress.step)
            else:
                subject = subject_from_session(self.session, progress.step)
                for section in due:  # one at a time: each may ask for its own n
                    results += evaluate(subject, [request(self.host, section, None, self.features)], self.host,
                                        n=section.n, seed=self.recipe.seed, real_dataset=self.session.dataset)
        record: dict[str, Any] = {"step": progress.step, "epoch": epoch, "type": "eval"}
        for result in results:
            record.update({f"{result.metric}/{k}": v for k, v in result.values.items()})
        self.run.log(record)
        self.reporter.note(f"epoch {epoch} metrics: " + ", ".join(
            f"{r.metric} {r.headline[1]:.4g}" for r in results))
        return results

    def evaluate_table(self, due: list[Any], step: int) -> list[Result]:
        """The due metrics of a table model, each on its own ``n`` generated rows."""
        from ganctl.evaluation.tables import compare, real_tables, usable

        session = self.session
        built = usable([build_metric(self.host, section) for section in due], session.spec,
                       held_out_section(self.recipe.data) is not None, named=True)[0]
        if self.tables is None:
            self.tables = real_tables(self.recipe.data, session.spec, self.host, training=session.dataset,
                                      held_out=None if self.held_out is None else self.held_out.dataset,
                                      need_train=any(m.needs_training_rows for m in self.recipe_metrics()))
        about = {"generator": f"step {step}", "engine": session.backend}
        results = []
        for section, metric in zip(due, built, strict=True):
            results += compare([metric], self.tables, session.spec, lambda z: session.engine.generate(z, None),
                               session.model.latent_dim, n=section.n, seed=self.recipe.seed, about=about)
        return results

    def recipe_metrics(self) -> list[Any]:
        """Every metric of the recipe, built (to know which need the training rows)."""
        return [build_metric(self.host, section)[2] for section in self.recipe.metrics]

    def keep_best(self, progress: Progress, results: list[Result]) -> None:
        """Save the state as ``checkpoints/best/`` when ``train.keep_best``'s metric improved."""
        rule = self.recipe.train.keep_best
        found = next((r for r in results if rule is not None and r.metric == rule.metric), None)
        if rule is None or found is None:
            return
        key, value = found.headline
        best = self.run.read_info().get("best")
        if best is not None and not (value < best["value"] if rule.mode == "min" else value > best["value"]):
            return
        self.checkpoints.save_best(progress, {"metric": rule.metric, "value": value})
        self.run.update_info(best={"metric": rule.metric, "key": key, "value": value, "mode": rule.mode,
                                   "step": progress.step, "epoch": progress.epoch})
        self.reporter.note(f"best {rule.metric} so far ({key} {value:.4g}): saved as {self.run.best_checkpoints}")
