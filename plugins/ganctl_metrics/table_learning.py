"""Metrics of generated tables that learn from rows (API 1.7), written with NumPy and scikit-learn:

* ``table-c2st``: a classifier two-sample test on rows: the cross-validated ROC-AUC of a classifier
  telling real held-out rows from generated ones (0.5: it cannot tell them apart).
* ``ml-efficacy``: train on the generated rows, test on the real held-out rows, against training
  on the real training rows and testing on the same held-out rows (classification: accuracy,
  precision, recall, F1 macro, ROC-AUC; regression: R², MAE).
* ``dcr``: the distance from each generated row to its closest real training row, against the same
  distance from each real held-out row (a privacy check: copies of training rows come out close).

Each row becomes a vector by :func:`design`: numbers standardised by the reference table's mean and
standard deviation, categories one-hot scaled so that two different categories are 1 apart, and,
for every column with a hole in either table, a missingness indicator (1 where missing); a missing
number sits at the reference mean (0) and a missing category has no slot set, so a hole counts
through its indicator, not through an invented value.

The learners run on one thread (threadpoolctl): their tables are small, and OpenMP threads beside
a training backend's own thread pools cost far more than they give (8 s instead of 0.1 s for one
gradient-boosting fit of 320 rows on a busy two-core machine).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

import numpy as np

from ganctl import api

from .tables import missing

ROOT_HALF = np.sqrt(0.5)


def design(tables: Sequence[Mapping[str, np.ndarray]], spec: api.TableSpec, names: Sequence[str],
           reference: int = 0) -> list[np.ndarray]:
    """Each table's rows as float64 vectors over the columns ``names`` (see the module's doc),
    scaled by ``tables[reference]``."""
    blocks: list[list[np.ndarray]] = [[] for _ in tables]
    for name in names:
        column = spec.column(name)
        holes = [missing(table[name]) for table in tables]
        if column.type == "numeric":
            values = [table[name].astype(np.float64) for table in tables]
            present = values[reference][~holes[reference]]
            mean = float(present.mean()) if len(present) else 0.0
            std = float(present.std()) if len(present) > 1 else 0.0
            for block, x, hole in zip(blocks, values, holes, strict=True):
                block.append(np.where(hole, 0.0, (x - mean) / (std or 1.0))[:, None])
        else:
            seen = {v for table, hole in zip(tables, holes, strict=True) for v in table[name][~hole].tolist()}
            categories = list(column.categories) + sorted(seen - set(column.categories))
            for block, table, hole in zip(blocks, tables, holes, strict=True):
                block.append(np.stack([(table[name] == c) & ~hole for c in categories], axis=1) * ROOT_HALF)
        if any(hole.any() for hole in holes):
            for block, hole in zip(blocks, holes, strict=True):
                block.append(hole.astype(np.float64)[:, None])
    return [np.concatenate(block, axis=1).astype(np.float64) if block else np.zeros((0, 0)) for block in blocks]


def one_thread():
    """Limit scikit-learn's native thread pools (OpenMP, BLAS) to one thread, within a ``with``."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def _classifier(kind: str, seed: int):
    if kind == "logistic":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(max_iter=2000)
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(random_state=seed)


def _regressor(kind: str, seed: int):
    if kind == "logistic":
        from sklearn.linear_model import Ridge

        return Ridge(alpha=1.0)
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(random_state=seed)


Learner = Literal["gradient-boosting", "logistic"]


class TableC2ST(api.TableMetric):
    """Classifier two-sample test on rows: cross-validated ROC-AUC telling real from generated (0.5: alike)."""

    class Params(api.Params):
        classifier: Learner = api.Field("gradient-boosting", description="gradient-boosting (scikit-learn's "
                                        "HistGradientBoostingClassifier) or logistic (logistic regression).")
        folds: int = api.Field(5, ge=2, le=20, description="Stratified cross-validation folds.")

    def compare(self, real: Mapping[str, np.ndarray], fake: Mapping[str, np.ndarray], spec: api.TableSpec, *,
                seed: int) -> dict[str, float]:
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import StratifiedKFold

        x_real, x_fake = design([real, fake], spec, [c.name for c in spec.columns])
        if min(len(x_real), len(x_fake)) < self.params.folds:
            raise api.ConfigError(f"table-c2st needs at least {self.params.folds} real and {self.params.folds} "
                                  f"generated rows (folds), got {len(x_real)} and {len(x_fake)}: raise --n or "
                                  "lower folds.")
        x = np.concatenate([x_real, x_fake])
        y = np.concatenate([np.zeros(len(x_real), np.int64), np.ones(len(x_fake), np.int64)])
        scores = np.zeros(len(y))
        folds = StratifiedKFold(self.params.folds, shuffle=True, random_state=seed)
        aucs = []
        for train, test in folds.split(x, y):
            model = _classifier(self.params.classifier, seed)
            with warnings.catch_warnings(), one_thread():
                warnings.simplefilter("ignore")  # convergence warnings on tiny tables
                model.fit(x[train], y[train])
                scores[test] = model.predict_proba(x[test])[:, 1]
            aucs.append(roc_auc_score(y[test], scores[test]))
        return {"roc_auc": float(roc_auc_score(y, scores)), "roc_auc_std": float(np.std(aucs)),
                "accuracy": float(np.mean((scores > 0.5) == y)), "n_real": float(len(x_real)),
                "n_fake": float(len(x_fake)), "folds": float(self.params.folds)}


class MLEfficacy(api.TableMetric):
    """Train on generated rows, test on real held-out rows, against training on the real training rows."""

    lower_is_better: ClassVar[bool] = False
    needs_training_rows: ClassVar[bool] = True

    class Params(api.Params):
        target: str | None = api.Field(None, description="The column to predict (null: the table's label).")
        model: Learner = api.Field("gradient-boosting", description="gradient-boosting (scikit-learn's "
                                   "HistGradientBoosting) or logistic (logistic regression; ridge for numbers).")

    def target(self, spec: api.TableSpec) -> api.Column:
        name = self.params.target or spec.label
        names = [c.name for c in spec.columns]
        if name is None:
            raise api.ConfigError(f"ml-efficacy predicts a column, and the table has no label (data.label): name the "
                                  f"target, e.g. -m '{{plugin: ml-efficacy, target: {names[-1]}}}' or target: in the "
                                  f"recipe's metrics: (columns: {', '.join(names)}).")
        if name not in names:
            raise api.ConfigError(f"ml-efficacy: the table has no column {name!r} to predict; its columns are "
                                  f"{', '.join(names)}. Fix target:.")
        if len(names) < 2:
            raise api.ConfigError("ml-efficacy predicts one column from the others, and the table has only one.")
        return spec.column(name)

    def check(self, spec: api.TableSpec) -> None:
        self.target(spec)

    def compare(self, real: Mapping[str, np.ndarray], fake: Mapping[str, np.ndarray], spec: api.TableSpec, *,
                seed: int, train: Mapping[str, np.ndarray] | None = None) -> dict[str, float]:
        if train is None:
            raise api.ConfigError("ml-efficacy trains on the real training rows too: evaluate a run that trained on "
                                  "data.split: train.")
        target = self.target(spec)
        features = [c.name for c in spec.columns if c.name != target.name]
        known = [~missing(table[target.name]) for table in (train, fake, real)]  # rows without a target: left out
        if not known[2].any():
            raise api.DataError(f"ml-efficacy: no held-out row has a value of {target.name!r} to test on.")
        x_train, x_fake, x_test = (m[k] for m, k in zip(design([train, fake, real], spec, features), known,
                                                           strict=True))
        y_train, y_fake, y_test = (table[target.name][k] for table, k in zip((train, fake, real), known, strict=True))
        scores = {}
        for who, x, y in (("synthetic", x_fake, y_fake), ("real", x_train, y_train)):
            if target.type == "numeric":
                scores[who] = _regression(self.params.model, seed, x, y.astype(np.float64), x_test,
                                          y_test.astype(np.float64))
            else:
                scores[who] = _classification(self.params.model, seed, x, y.astype(str), x_test, y_test.astype(str))
        if target.type == "numeric":  # the synthetic rows' R² over the real rows' (NaN: the real rows predict nothing)
            real_r2 = scores["real"]["r2"]
            efficacy = scores["synthetic"]["r2"] / real_r2 if real_r2 > 0 else float("nan")
        else:  # the synthetic rows' macro F1 over the real rows'
            efficacy = scores["synthetic"]["f1"] / max(scores["real"]["f1"], 1e-12)
        values = {"efficacy": float(efficacy)}
        for who in ("synthetic", "real"):
            values.update({f"{who}/{k}": v for k, v in scores[who].items()})
        values.update({"n_synthetic": float(len(y_fake)), "n_real_train": float(len(y_train)),
                       "n_test": float(len(y_test))})
        return values


def _regression(kind: str, seed: int, x: np.ndarray, y: np.ndarray, x_test: np.ndarray,
                y_test: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, r2_score

    if len(y) < 2:
        predicted = np.full(len(y_test), y.mean() if len(y) else 0.0)
    else:
        model = _regressor(kind, seed)
        with one_thread():
            model.fit(x, y)
            predicted = model.predict(x_test)
    r2 = r2_score(y_test, predicted) if len(y_test) > 1 else 0.0
    return {"r2": float(r2), "mae": float(mean_absolute_error(y_test, predicted))}


def _classification(kind: str, seed: int, x: np.ndarray, y: np.ndarray, x_test: np.ndarray,
                    y_test: np.ndarray) -> dict[str, float]:
    """Scores on the test rows; a training set of one class (or none) predicts that class."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score

    classes = sorted(set(y.tolist()) | set(y_test.tolist()))
    seen = sorted(set(y.tolist()))
    if len(seen) < 2:
        probabilities = np.zeros((len(y_test), len(seen) or 1))
        probabilities[:, 0] = 1.0
    else:
        model = _classifier(kind, seed)
        with warnings.catch_warnings(), one_thread():
            warnings.simplefilter("ignore")
            model.fit(x, y)
            probabilities = model.predict_proba(x_test)
        seen = [str(c) for c in model.classes_]
    predicted = np.array(seen or classes[:1], object)[np.argmax(probabilities, axis=1)]
    precision, recall, f1, _ = precision_recall_fscore_support(y_test, predicted, labels=classes, average="macro",
                                                               zero_division=0)
    out = {"accuracy": float(accuracy_score(y_test, predicted)), "precision": float(precision),
           "recall": float(recall), "f1": float(f1)}
    present = sorted(set(y_test.tolist()))
    if len(present) >= 2:  # ROC-AUC: one-vs-rest over the classes the test rows hold
        full = np.zeros((len(y_test), len(present)))
        for j, c in enumerate(present):
            if c in seen:
                full[:, j] = probabilities[:, seen.index(c)]
        if len(present) == 2:
            out["roc_auc"] = float(roc_auc_score(y_test == present[1], full[:, 1]))
        else:
            totals = full.sum(axis=1, keepdims=True)
            full = np.where(totals > 0, full / np.where(totals > 0, totals, 1), 1 / len(present))
            out["roc_auc"] = float(roc_auc_score(y_test, full, labels=present, multi_class="ovr", average="macro"))
    return out


def nearest(a: np.ndarray, b: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """The Euclidean distance from each row of ``a`` to its closest row of ``b``."""
    norms = (b * b).sum(axis=1)
    chunk = max(1, min(chunk, 4_000_000 // max(len(b), 1)))  # at most 32 MB of distances at a time
    out = np.empty(len(a))
    for start in range(0, len(a), chunk):
        block = a[start : start + chunk]
        squared = (block * block).sum(axis=1)[:, None] + norms[None, :] - 2.0 * block @ b.T
        out[start : start + chunk] = np.sqrt(np.maximum(squared.min(axis=1), 0.0))
    return out


class DCR(api.TableMetric):
    """Distance to the closest real training record: generated rows against real held-out rows."""

    needs_training_rows: ClassVar[bool] = True

    class Params(api.Params):
        quantile: float = api.Field(0.05, gt=0, lt=0.5, description="The held-out rows' distance quantile that "
                                    "generated rows should not often fall below.")
        max_share: float = api.Field(0.1, gt=0, le=1, description="passes is 1 when at most this share of the "
                                     "generated rows is closer than that quantile.")

    def compare(self, real: Mapping[str, np.ndarray], fake: Mapping[str, np.ndarray], spec: api.TableSpec, *,
                seed: int, train: Mapping[str, np.ndarray] | None = None) -> dict[str, float]:
        if train is None:
            raise api.ConfigError("dcr measures from the real training rows: evaluate a run that trained on "
                                  "data.split: train.")
        x_train, x_fake, x_held = design([train, fake, real], spec, [c.name for c in spec.columns])
        synthetic, held_out = nearest(x_fake, x_train), nearest(x_held, x_train)
        q = self.params.quantile
        threshold = float(np.quantile(held_out, q))
        share = float(np.mean(synthetic < threshold))
        tiny = 1e-6
        return {"share_closer": share, "passes": float(share <= self.params.max_share),
                "synthetic_median": float(np.median(synthetic)), "held_out_median": float(np.median(held_out)),
                f"synthetic_q{q:g}": float(np.quantile(synthetic, q)), f"held_out_q{q:g}": threshold,
                "exact_copies": float(np.mean(synthetic < tiny)), "held_out_exact": float(np.mean(held_out < tiny)),
                "n_train": float(len(x_train))}
