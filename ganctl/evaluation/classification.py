"""Scoring a classifier on labelled images: accuracy, precision, recall, F1, ROC-AUC, cross-entropy.

Used after each epoch of a ``classifier`` run (on the dataset's held-out split) and by
``ganctl evaluate`` on a classifier run or its ONNX export. Precision, recall and F1 are macro
averages over classes; ROC-AUC is the macro average of one-vs-rest AUCs (scikit-learn).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ganctl import api
from ganctl.sampling import BATCH


def predict(classify: Callable[[np.ndarray], np.ndarray], dataset: api.Dataset,
            batch_size: int = BATCH) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities of every image of ``dataset`` (in order) and its labels."""
    parts, labels = [], []
    for batch in dataset.batches(batch_size, seed=0, shuffle=False, drop_remainder=False):
        parts.append(np.asarray(classify(batch.images), dtype=np.float64))
        labels.append(batch.labels)
    return np.concatenate(parts), np.concatenate(labels).astype(np.int64)


def scores(probabilities: np.ndarray, labels: np.ndarray, *, full: bool = True) -> dict[str, float]:
    """``accuracy`` (first: the headline) and ``cross_entropy``; with ``full`` also macro
    ``precision``, ``recall``, ``f1`` and one-vs-rest ``roc_auc``."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if probabilities.ndim != 2 or len(probabilities) != len(labels):
        raise api.GanctlError(f"expected probabilities [{len(labels)}, K], got {list(probabilities.shape)}")
    if labels.size and int(labels.max()) >= probabilities.shape[1]:
        raise api.ConfigError(
            f"the data has labels up to {int(labels.max())}, but the classifier knows {probabilities.shape[1]} "
            "classes: evaluate it on the data it was trained on."
        )
    predicted = probabilities.argmax(axis=1)
    picked = probabilities[np.arange(len(labels)), labels]
    out = {"accuracy": float(np.mean(predicted == labels)),
           "cross_entropy": float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))}
    if not full:
        return out
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    classes = np.arange(probabilities.shape[1])
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predicted, labels=classes, average="macro", zero_division=0)
    out.update(precision=float(precision), recall=float(recall), f1=float(f1))
    present = np.unique(labels)
    if len(present) > 1:
        # One-vs-rest over the classes present (a class absent from the data has no ROC curve).
        normalised = probabilities[:, present] / np.maximum(probabilities[:, present].sum(axis=1, keepdims=True), 1e-12)
        if len(present) == 2:
            out["roc_auc"] = float(roc_auc_score(labels == present[1], normalised[:, 1]))
        else:
            out["roc_auc"] = float(roc_auc_score(labels, normalised, multi_class="ovr", average="macro",
                                                 labels=present))
    return out
