"""Metrics of generated tables (API 1.7): each compares a generated table with the real one, as
:meth:`ganctl.api.TableSpec.decode` gives them (NaN or None where a value is missing).

* ``column-similarity``: per column, 1 minus the Kolmogorov-Smirnov statistic of its present
  values (numeric) or 1 minus the total variation distance of its category frequencies (others);
  the headline is their mean (1: every column's distribution alike).
* ``correlation-difference``: the mean absolute difference of the Pearson correlations of every
  pair of numeric columns (each pair over the rows where both are present; 0: alike).
* ``missingness``: the mean absolute difference of the columns' missing rates, and of the
  correlations between their missingness indicators (the pattern: which holes come together).
* ``contingency-difference``: per pair of columns, the total variation distance between the real
  and the generated joint distributions (contingency tables, with "missing" a value of its own);
  numeric columns take part binned at the real table's quantiles (``numeric_bins``, 0: categorical
  and boolean columns only). The headline is the mean over pairs; the worst pair is named.

Computed here with NumPy (a few lines each, no dependency on a table-metrics library, so the
protocol is exactly what this file says).
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations
from typing import ClassVar

import numpy as np

from ganctl import api


def missing(values: np.ndarray) -> np.ndarray:
    """Where a decoded column has no value."""
    if values.dtype == object:
        return np.array([v is None for v in values], bool)
    return np.isnan(values.astype(np.float64))


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    a, b = np.sort(a), np.sort(b)
    points = np.concatenate([a, b])
    gaps = np.searchsorted(a, points, side="right") / len(a) - np.searchsorted(b, points, side="right") / len(b)
    return float(np.max(np.abs(gaps)))


def total_variation(a: np.ndarray, b: np.ndarray) -> float:
    """Half the L1 distance between two columns' category frequencies."""
    _, index = np.unique(np.concatenate([a, b]).astype(str), return_inverse=True)
    index = index.reshape(-1)
    p = np.bincount(index[: len(a)], minlength=index.max() + 1) / len(a)
    q = np.bincount(index[len(a) :], minlength=index.max() + 1) / len(b)
    return float(0.5 * np.abs(p - q).sum())


def _correlations(matrix: np.ndarray, pairs: list[tuple[int, int]]) -> np.ndarray:
    """Pearson correlation of each pair of columns, over the rows where both are finite (0 when
    either is constant there)."""
    out = []
    for i, j in pairs:
        both = np.isfinite(matrix[:, i]) & np.isfinite(matrix[:, j])
        x, y = matrix[both, i], matrix[both, j]
        if len(x) < 2 or x.std() == 0 or y.std() == 0:
            out.append(0.0)
        else:
            out.append(float(np.corrcoef(x, y)[0, 1]))
    return np.array(out)


class ColumnSimilarity(api.TableMetric):
    """Per-column similarity: 1 - Kolmogorov-Smirnov (numbers), 1 - total variation (categories)."""

    lower_is_better: ClassVar[bool] = False

    class Params(api.Params):
        pass

    def compare(self, real: Mapping[str, np.ndarray], fake: Mapping[str, np.ndarray], spec: api.TableSpec, *,
                seed: int) -> dict[str, float]:
        scores: dict[str, float] = {}
        for column in spec.columns:
            r, f = real[column.name], fake[column.name]
            r, f = r[~missing(r)], f[~missing(f)]
            if not len(r) or not len(f):
                scores[column.name] = float(len(r) == len(f))  # both empty: alike; one empty: nothing alike
            elif column.type == "numeric":
                scores[column.name] = 1.0 - ks_statistic(r.astype(np.float64), f.astype(np.float64))
            else:
                scores[column.name] = 1.0 - total_variation(r, f)
        return {"column_similarity": float(np.mean(list(scores.values()))),
                **{f"column/{name}": value for name, value in scores.items()}}


class CorrelationDifference(api.TableMetric):
    """Mean absolute difference of the numeric columns' pairwise Pearson correlations."""

    class Params(api.Params):
        pass

    def compare(self, real: Mapping[str, np.ndarray], fake: Mapping[str, np.ndarray], spec: api.TableSpec, *,
                seed: int) -> dict[str, float]:
        names = [c.name for c in spec.columns if c.type == "numeric"]
        if len(names) < 2:
            raise api.ConfigError(f"correlation-difference compares pairs of numeric columns, and the table has "
                                  f"{len(names)}: leave it out.")
        pairs = list(combinations(range(len(names)), 2))
        found = [_correlations(np.stack([table[n].astype(np.float64) for n in names], axis=1), pairs)
                 for table in (real, fake)]
        return {"correlation_difference": float(np.mean(np.abs(found[0] - found[1]))),
                "real_mean_abs_correlation": float(np.mean(np.abs(found[0]))),
                "fake_mean_abs_correlation": float(np.mean(np.abs(found[1])))}


class Missingness(api.TableMetric):
    """Missing values: difference of the columns' missing rates and of their co-occurrence pattern."""

    class Params(api.Params):
        pass

    def compare(self, real: Mapping[str, np.ndarray], fake: Mapping[str, np.ndarray], spec: api.TableSpec, *,
                seed: int) -> dict[str, float]:
        names = [c.name for c in spec.columns]
        holes = [np.stack([missing(table[n]) for n in names], axis=1).astype(np.float64) for table in (real, fake)]
        rates = [h.mean(axis=0) for h in holes]
        values = {"missing_rate_difference": float(np.mean(np.abs(rates[0] - rates[1])))}
        varied = [i for i in range(len(names)) if rates[0][i] > 0 or rates[1][i] > 0]
        pairs = list(combinations(varied, 2))
        if pairs:
            found = [_correlations(h, pairs) for h in holes]
            values["missing_pattern_difference"] = float(np.mean(np.abs(found[0] - found[1])))
        for i in varied:
            values[f"real_rate/{names[i]}"] = float(rates[0][i])
            values[f"fake_rate/{names[i]}"] = float(rates[1][i])
        return values


def _cells(values: np.ndarray, column: api.Column, edges: np.ndarray | None) -> np.ndarray:
    """A column's values as cell labels of a contingency table: the category (or, for a number,
    the index of its bin between ``edges``), and "missing" for a hole."""
    holes = missing(values)
    if column.type == "numeric":
        bins = np.searchsorted(edges, np.where(holes, 0.0, values.astype(np.float64)), side="right")
        return np.where(holes, "missing", bins.astype(str)).astype(object)
    return np.where(holes, "missing", values.astype(object)).astype(object)


class ContingencyDifference(api.TableMetric):
    """Pairwise contingency tables: total variation between the real and generated joint distributions."""

    class Params(api.Params):
        numeric_bins: int = api.Field(5, ge=0, le=50, description="Numeric columns take part binned at this many "
                                      "quantiles of the real table (0: categorical and boolean columns only).")

    def _names(self, spec: api.TableSpec) -> list[str]:
        return [c.name for c in spec.columns if c.type != "numeric" or self.params.numeric_bins]

    def check(self, spec: api.TableSpec) -> None:
        if len(self._names(spec)) < 2:
            raise api.ConfigError("contingency-difference compares pairs of categorical or boolean columns (numeric "
                                  "ones too, binned, unless numeric_bins is 0), and the table has fewer than two: "
                                  "leave it out, or set numeric_bins above 0.")

    def compare(self, real: Mapping[str, np.ndarray], fake: Mapping[str, np.ndarray], spec: api.TableSpec, *,
                seed: int) -> dict[str, float]:
        self.check(spec)
        names = self._names(spec)
        cells: list[dict[str, np.ndarray]] = [{}, {}]
        for name in names:
            column, edges = spec.column(name), None
            if column.type == "numeric":
                present = real[name][~missing(real[name])].astype(np.float64)
                quantiles = np.linspace(0, 1, self.params.numeric_bins + 1)[1:-1]
                edges = np.unique(np.quantile(present, quantiles)) if len(present) else np.zeros(0)
            for table, out in zip((real, fake), cells, strict=True):
                out[name] = _cells(table[name], column, edges)
        differences: dict[tuple[str, str], float] = {}
        for a, b in combinations(names, 2):
            joint = [np.char.add(np.char.add(t[a].astype(str), "\x1f"), t[b].astype(str)) for t in cells]
            differences[(a, b)] = total_variation(joint[0], joint[1])
        worst = max(differences, key=lambda pair: differences[pair])
        values = {"contingency_difference": float(np.mean(list(differences.values()))),
                  "worst_pair_difference": differences[worst], f"worst_pair/{worst[0]}~{worst[1]}": differences[worst]}
        categorical = [v for (a, b), v in differences.items()
                       if spec.column(a).type != "numeric" and spec.column(b).type != "numeric"]
        if categorical and len(categorical) < len(differences):
            values["categorical_pairs_difference"] = float(np.mean(categorical))
        values["pairs"] = float(len(differences))
        return values
