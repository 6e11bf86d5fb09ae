"""ganctl's first-party evaluation metrics.

``stats`` holds their numerical core as pure NumPy / SciPy / scikit-learn functions on
features and class probabilities: the Fréchet distance (FID), KID, precision / recall /
density / coverage, the Inception Score, a classifier two-sample test and the class accuracy
of a conditional generator.

The plugins (``metrics``) register them for recipes and ``ganctl evaluate``: ``fid``, ``kid``,
``prdc``, ``inception-score``, ``class-accuracy`` and ``c2st``; for tables (API 1.7, ``tables``):
``column-similarity``, ``correlation-difference``, ``missingness`` and ``contingency-difference``;
learning from rows (``table_learning``): ``table-c2st``, ``ml-efficacy`` and ``dcr``.

Importing this package is cheap: only NumPy is imported; SciPy and scikit-learn are imported
by the functions that use them.
"""

from __future__ import annotations

from ganctl import api

from .metrics import C2ST, FID, KID, PRDC, ClassAccuracy, InceptionScore
from .stats import (
    c2st,
    class_accuracy,
    feature_statistics,
    frechet_details,
    frechet_distance,
    inception_score,
    kid,
    prdc,
)
from .table_learning import DCR, MLEfficacy, TableC2ST
from .tables import ColumnSimilarity, ContingencyDifference, CorrelationDifference, Missingness

GANCTL_API = "1.7"  # the ganctl.api version this plugin needs (docs/plugins.md)

__all__ = [
    "C2ST",
    "FID",
    "KID",
    "PRDC",
    "ClassAccuracy",
    "ColumnSimilarity",
    "ContingencyDifference",
    "CorrelationDifference",
    "DCR",
    "InceptionScore",
    "MLEfficacy",
    "Missingness",
    "TableC2ST",
    "c2st",
    "class_accuracy",
    "feature_statistics",
    "frechet_details",
    "frechet_distance",
    "inception_score",
    "kid",
    "prdc",
    "register_metrics",
]


@api.hookimpl
def register_metrics(register: api.Register) -> None:
    """Register the first-party metrics."""
    register("fid", FID)
    register("kid", KID)
    register("prdc", PRDC)
    register("inception-score", InceptionScore)
    register("class-accuracy", ClassAccuracy)
    register("c2st", C2ST)
    register("column-similarity", ColumnSimilarity)
    register("correlation-difference", CorrelationDifference)
    register("missingness", Missingness)
    register("contingency-difference", ContingencyDifference)
    register("table-c2st", TableC2ST)
    register("ml-efficacy", MLEfficacy)
    register("dcr", DCR)
