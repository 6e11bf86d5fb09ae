"""The images of ``ganctl report``, as base64 PNGs: curves, a classifier's confusion matrix and ROC
curves (matplotlib's Agg backend, no display), and sample grids enlarged to a readable width."""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

MIN_WIDTH = 320
"""Sample grids narrower than this (pixels) are enlarged by a whole factor, nearest neighbour."""


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib import pyplot as plt

    return plt


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    _pyplot().close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def curves(series: dict[str, list[tuple[int, float]]], title: str, xlabel: str) -> str | None:
    """One PNG with a line per series, or None when there is nothing to draw."""
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    figure, axes = _pyplot().subplots(figsize=(7, 3.2))
    for name, points in sorted(series.items()):
        xs, ys = zip(*points, strict=True)
        axes.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=name)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _png(figure)


def readable_grid(path: Path) -> tuple[str, int]:
    """A sample grid's PNG, enlarged by a whole factor (nearest neighbour) to at least
    :data:`MIN_WIDTH` pixels wide, and its width."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        factor = max(1, math.ceil(MIN_WIDTH / image.width))
        if factor > 1:
            image = image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return base64.b64encode(buffer.getvalue()).decode(), image.width


def confusion_matrix(probabilities: np.ndarray, labels: np.ndarray) -> str:
    """The confusion matrix (true class by predicted class, counts) of a classifier's predictions."""
    classes = probabilities.shape[1]
    counts = np.zeros((classes, classes), np.int64)
    np.add.at(counts, (labels, probabilities.argmax(axis=1)), 1)
    size = min(9.0, 2.5 + 0.45 * classes)
    figure, axes = _pyplot().subplots(figsize=(size, size))
    axes.imshow(counts, cmap="Blues")
    for (i, j), count in np.ndenumerate(counts):
        if count:
            axes.text(j, i, str(count), ha="center", va="center", fontsize=8,
                      color="white" if count > counts.max() / 2 else "black")
    axes.set_xticks(range(classes))
    axes.set_yticks(range(classes))
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(f"Confusion matrix ({len(labels)} held-out images)")
    return _png(figure)


def roc_curves(probabilities: np.ndarray, labels: np.ndarray) -> str:
    """One-vs-rest ROC curves, one per class, with each class's AUC."""
    from sklearn.metrics import roc_auc_score, roc_curve

    figure, axes = _pyplot().subplots(figsize=(6, 5))
    for k in range(probabilities.shape[1]):
        truth = labels == k
        if truth.all() or not truth.any():
            continue
        fpr, tpr, _ = roc_curve(truth, probabilities[:, k])
        axes.plot(fpr, tpr, linewidth=1, label=f"class {k} (AUC {roc_auc_score(truth, probabilities[:, k]):.3f})")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.set_title("ROC curves, one class against the rest (held-out split)")
    axes.legend(fontsize=7, loc="lower right")
    return _png(figure)
