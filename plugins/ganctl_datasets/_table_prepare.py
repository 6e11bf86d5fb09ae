"""From a DataFrame to encoded rows (private to the table datasets): column types, missing values
(strategies through scikit-learn's imputers, missingness indicators), the held-out split, and the
encoding of :class:`api.TableSpec` (mode-specific normalisation by a variational Gaussian mixture).

Everything is fitted on the training rows (all rows with ``split: all``), so the ``train`` and
``test`` splits of one table share one encoding, and the same parameters always give the same rows.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ganctl import api

NUMERIC_ONLY = ("mean", "median", "knn", "iterative")
TRUE, FALSE = {"true", "t", "yes", "y", "1"}, {"false", "f", "no", "n", "0"}
BOOLEAN = ("False", "True")
MIN_WEIGHT = 0.005
"""Mixture modes lighter than this are dropped (as CTGAN's transformer does)."""


@dataclass
class Prepared:
    """A column ready to encode: its type, its values over all kept rows (numbers with no NaN, or
    category strings), where it was missing, and how it was imputed."""

    name: str
    type: str
    values: np.ndarray
    missing: np.ndarray
    missing_rate: float
    strategy: str


def where(source: str, key: str) -> str:
    """``FILE: data.KEY``, the start of an error about a key of the recipe's data section."""
    return f"{source}: data.{key}"


def check_declared(frame: Any, params: Any, source: str) -> None:
    """Every column the parameters name must be in the table."""
    present = list(frame.columns)
    named = [("columns", n) for n in params.columns] + [("impute", n) for n in params.impute]
    named += [("fill_values", n) for n in params.fill_values] + [("exclude", n) for n in params.exclude]
    if params.label is not None:
        named.append(("label", params.label))
    if params.inject_missing is not None:
        named += [("inject_missing.columns", n) for n in params.inject_missing.columns or ()]
        if params.inject_missing.given is not None:
            named.append(("inject_missing.given", params.inject_missing.given))
    for key, name in named:
        if name not in present:
            raise api.ConfigError(f"{where(source, key)}: the table has no column {name!r}; its columns are "
                                  f"{', '.join(map(str, present))}. Fix the name in data.{key}.")


def inject(frame: Any, params: Any, source: str = "the table") -> Any:
    """Values removed at random, drawn from ``seed``, in the chosen columns (all but the label and
    the given column by default). ``mcar``: each cell with probability ``rate``. ``mar``: a cell of
    row i with probability ``sigmoid(a + strength * g_i)``, where ``g_i`` is the given column's value
    in row i standardised (a categorical or boolean column: the index of its category in sorted
    order, standardised; a hole in it: 0, the mean), and ``a`` is solved so that the mean
    probability over the rows is ``rate``."""
    spec = params.inject_missing
    if spec is None:
        return frame
    frame = frame.copy()
    given = spec.given if spec.given is not None or spec.mechanism == "mcar" else params.label
    if spec.mechanism == "mar" and given is None:
        raise api.ConfigError(f"{where(source, 'inject_missing')}: mechanism mar removes values depending on another "
                              "column, and none is given (and the table has no data.label): add given: COLUMN.")
    columns = list(spec.columns or [c for c in frame.columns if c not in (params.label, given)])
    if given is not None and given in columns:
        raise api.ConfigError(f"{where(source, 'inject_missing.given')}: {given!r} is also a column to remove values "
                              "from; the holes of mar depend on values that stay observed. Leave it out of "
                              "inject_missing.columns, or give another column.")
    draws = np.random.default_rng(spec.seed).random((len(frame), len(columns)))
    if spec.mechanism == "mcar":
        mask = draws < spec.rate
    else:
        chance = mar_chance(frame[given], spec.rate, spec.strength)
        mask = draws < chance[:, None]
    for j, name in enumerate(columns):
        frame[name] = frame[name].astype(object).where(~mask[:, j], None)
    return frame


def mar_chance(column: Any, rate: float, strength: float) -> np.ndarray:
    """Each row's chance of a hole under ``mar`` given ``column`` (see :func:`inject`)."""
    pd = __import__("pandas")
    present = column.notna().to_numpy()
    numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    if not np.isnan(numbers[present]).any() and column.dtype != bool:
        score = numbers
    else:  # categories in sorted order
        text = column.astype(str).to_numpy()
        order = {c: i for i, c in enumerate(sorted(set(text[present].tolist())))}
        score = np.array([order[t] if p else np.nan for t, p in zip(text, present, strict=True)], np.float64)
    known = score[present]
    spread = known.std() if len(known) > 1 else 0.0
    g = np.where(present, (score - (known.mean() if len(known) else 0.0)) / (spread or 1.0), 0.0)
    low, high = -50.0, 50.0  # the intercept: the mean chance rises with it, so bisect
    for _ in range(100):
        middle = (low + high) / 2
        if np.mean(1 / (1 + np.exp(-(middle + strength * g)))) < rate:
            low = middle
        else:
            high = middle
    return 1 / (1 + np.exp(-((low + high) / 2 + strength * g)))


def _text(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def column_type(series: Any, declared: str | None, name: str, source: str) -> tuple[str, np.ndarray]:
    """The column's type and its values: float64 with NaN (numeric), or an object array of strings
    with None (categorical, boolean: ``False``/``True``)."""
    pd = __import__("pandas")
    present = series.notna().to_numpy()
    raw = series.to_numpy(dtype=object)
    numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
    is_number = bool(np.all(~np.isnan(numbers[present]))) and series.dtype != bool
    lowered = {str(v).strip().lower() for v in raw[present]}
    if declared is None:
        if series.dtype == bool or (lowered and lowered <= TRUE | FALSE and not is_number):
            declared = "boolean"
        else:
            declared = "numeric" if is_number else "categorical"
    if declared == "numeric":
        if not is_number:
            bad = next(v for v, n, p in zip(raw, numbers, present, strict=True) if p and np.isnan(n))
            raise api.DataError(f"{where(source, 'columns')}: column {name!r} is declared numeric but holds {bad!r}: "
                                f"declare it categorical, or add {str(bad)!r} to data.missing_values if it means "
                                "missing.")
        if np.isinf(numbers[present]).any():
            raise api.DataError(f"{source}: column {name!r} holds an infinite value: a table's numbers must be finite. "
                                "Fix the file, or add the token to data.missing_values if it means missing.")
        return "numeric", np.where(present, numbers, np.nan)
    if declared == "boolean":
        text = np.array([str(v).strip().lower() if p else "" for v, p in zip(raw, present, strict=True)], object)
        odd = sorted({t for t in text[present] if t not in TRUE | FALSE})
        if odd:
            raise api.DataError(f"{where(source, 'columns')}: column {name!r} is declared boolean but holds {odd[0]!r} "
                                f"(booleans are {'/'.join(sorted(TRUE))} or {'/'.join(sorted(FALSE))}): declare it "
                                "categorical.")
        values = np.array([BOOLEAN[t in TRUE] if p else None for t, p in zip(text, present, strict=True)], object)
        return "boolean", values
    values = np.array([_text(v) if p else None for v, p in zip(raw, present, strict=True)], object)
    return "categorical", values


def strategy_for(name: str, kind: str, params: Any, source: str) -> str:
    strategy = params.impute.get(name) or (params.numeric_strategy if kind == "numeric" else params.categorical_strategy)
    if kind != "numeric" and strategy in NUMERIC_ONLY:
        raise api.ConfigError(f"{where(source, 'impute')}: strategy {strategy!r} does not fit the {kind} column "
                              f"{name!r} (it averages numbers): use most_frequent, constant or drop for it.")
    if name == params.label and strategy != "drop":
        strategy = "drop"  # a row without its label cannot serve a conditional model
    return strategy


def prepare(frame: Any, params: Any, source: str) -> tuple[list[Prepared], np.ndarray]:
    """Typed columns over the rows kept (rows missing a ``drop`` column are dropped) and the
    indices of those rows."""
    if len(frame) == 0:
        raise api.DataError(f"{source} has a header but no rows.")
    kept = [c for c in frame.columns if c not in params.exclude]
    if not kept:
        raise api.ConfigError(f"{where(source, 'exclude')}: no columns are left to use; exclude fewer.")
    out: list[Prepared] = []
    drop = np.zeros(len(frame), bool)
    for name in kept:
        kind, values = column_type(frame[name], params.columns.get(name), str(name), source)
        missing = np.isnan(values) if kind == "numeric" else np.array([v is None for v in values])
        if missing.all():
            raise api.DataError(f"{source}: column {name!r} has no values at all (every one is missing): add it to "
                                "data.exclude, or fix the file.")
        if kind != "numeric":
            distinct = len(set(values[~missing]))
            if distinct > params.max_categories:
                raise api.DataError(
                    f"{source}: column {name!r} has {distinct} distinct values, more than data.max_categories "
                    f"({params.max_categories}): a one-hot encoding that wide cannot be learned. Add it to "
                    "data.exclude (an identifier), declare it numeric in data.columns, or raise max_categories.")
        strategy = strategy_for(str(name), kind, params, source) if missing.any() else ""
        if strategy == "drop":
            drop |= missing
        out.append(Prepared(str(name), kind, values, missing, float(missing.mean()), strategy))
    rows = np.flatnonzero(~drop)
    if rows.size == 0:
        raise api.DataError(f"{source}: dropping the rows with missing values (strategy drop) leaves none; choose "
                            "another strategy in data.impute.")
    for column in out:
        column.values, column.missing = column.values[rows], column.missing[rows]
        if column.strategy == "drop":
            column.strategy = ""  # nothing left to impute
    return out, rows


def split_rows(n: int, params: Any) -> tuple[np.ndarray, np.ndarray]:
    """The rows fitted on and the rows delivered, for ``split`` (a fixed shuffle of ``split_seed``)."""
    if params.split == "all":
        everything = np.arange(n)
        return everything, everything
    order = np.random.default_rng(params.split_seed).permutation(n)
    test = max(1, round(n * params.test_fraction))
    if test >= n:
        raise api.DataError(f"data.test_fraction {params.test_fraction} leaves no training rows of {n}; lower it.")
    train, held = np.sort(order[test:]), np.sort(order[:test])
    return train, (train if params.split == "train" else held)


def impute(columns: list[Prepared], fit: np.ndarray, params: Any) -> None:
    """Fill each column's missing values by its strategy, fitted on the rows ``fit``."""
    from sklearn.impute import KNNImputer, SimpleImputer

    numeric = [c for c in columns if c.type == "numeric"]
    joint = {"knn", "iterative"} & {c.strategy for c in numeric}
    filled: dict[str, np.ndarray] = {}
    if joint:
        matrix = np.stack([c.values for c in numeric], axis=1)
        for strategy in sorted(joint):
            if strategy == "knn":
                imputer: Any = KNNImputer(n_neighbors=params.knn_neighbors, keep_empty_features=True)
            else:
                from sklearn.experimental import enable_iterative_imputer  # noqa: F401 - required by sklearn
                from sklearn.impute import IterativeImputer

                imputer = IterativeImputer(random_state=params.seed, max_iter=10, keep_empty_features=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = imputer.fit(matrix[fit]).transform(matrix)
            filled.update({c.name: result[:, j] for j, c in enumerate(numeric) if c.strategy == strategy})
    for c in columns:
        if not c.strategy:
            continue
        if c.name in filled:
            c.values = np.where(c.missing, filled[c.name], c.values)
            continue
        constant = params.fill_values.get(c.name, 0.0 if c.type == "numeric" else "missing")
        if c.type == "boolean" and c.strategy == "constant":
            constant = BOOLEAN[str(constant).strip().lower() in TRUE]
        if c.type == "numeric":
            try:
                constant = float(constant)
            except ValueError:
                raise api.ConfigError(f"data.fill_values: {c.name!r} is numeric, so its fill value must be a number, "
                                      f"not {constant!r}.") from None
            column = c.values.reshape(-1, 1)
        else:
            constant = str(constant)
            column = np.where(c.missing, np.nan, c.values).astype(object).reshape(-1, 1)
        imputer = SimpleImputer(strategy=c.strategy, fill_value=constant, keep_empty_features=True)
        imputer.fit(column[fit])
        result = imputer.transform(column)[:, 0]
        c.values = result.astype(np.float64) if c.type == "numeric" else result.astype(object)


def decimal_places(values: np.ndarray) -> int | None:
    """The fewest decimal places that write every value of ``values`` (as read: 39.1 has one),
    None when more than ``api.MAX_DECIMALS`` are needed (values computed rather than recorded)."""
    scale = np.maximum(np.abs(values), 1.0)
    for places in range(api.MAX_DECIMALS + 1):
        if np.all(np.abs(np.round(values, places) - values) <= 1e-9 * scale):
            return places
    return None


def encode_column(c: Prepared, fit: np.ndarray, params: Any, indicator: bool) -> api.Column:
    """The column's :class:`api.Column`: a numeric one's mixture fitted on the rows ``fit``."""
    common = {"missing_rate": c.missing_rate, "indicator": indicator, "imputation": c.strategy}
    if c.type != "numeric":
        categories = BOOLEAN if c.type == "boolean" else tuple(sorted(set(c.values.tolist())))
        fitted = c.values[fit].tolist()
        frequencies = tuple(fitted.count(category) / max(len(fitted), 1) for category in categories)
        return api.Column(c.name, c.type, categories=categories, frequencies=frequencies, **common)
    x = c.values[fit]
    distinct = np.unique(x)
    low, high = float(c.values.min()), float(c.values.max())  # imputed values included: decoding keeps them
    integer = bool(np.all(np.equal(np.mod(c.values[~c.missing], 1), 0)))
    decimals = decimal_places(c.values[~c.missing])
    spread = float(high - low) or 1.0
    if len(distinct) < 2:
        weights, means, stds = np.ones(1), np.array([float(distinct[0])]), np.array([spread * 0.01 or 1.0])
    else:
        from sklearn.mixture import BayesianGaussianMixture

        mixture = BayesianGaussianMixture(
            n_components=min(params.max_modes, len(distinct)), weight_concentration_prior_type="dirichlet_process",
            weight_concentration_prior=0.001, max_iter=200, n_init=1, random_state=params.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings on tiny columns
            mixture.fit(x.reshape(-1, 1))
        keep = mixture.weights_ > MIN_WEIGHT
        weights = mixture.weights_[keep] / mixture.weights_[keep].sum()
        means = mixture.means_[keep, 0]
        stds = np.sqrt(mixture.covariances_[keep].reshape(-1))
        stds = np.maximum(stds, spread * 1e-3)
    return api.Column(c.name, "numeric", weights=tuple(map(float, weights)), means=tuple(map(float, means)),
                      stds=tuple(map(float, stds)), low=low, high=high, integer=integer, decimals=decimals,
                      **common)


def build(frame: Any, params: Any, source: str
          ) -> tuple[np.ndarray, api.TableSpec, np.ndarray | None, dict[str, np.ndarray]]:
    """Encoded rows of the requested split, the spec, the label indices (None without a label), and
    the same rows' values as read, with their holes (:attr:`api.TableDataset.values`)."""
    check_declared(frame, params, source)
    frame = inject(frame, params, source)
    columns, _ = prepare(frame, params, source)
    label = next((c for c in columns if c.name == params.label), None)
    if label is not None and label.type == "numeric":
        raise api.ConfigError(f"{where(source, 'label')}: the label column {label.name!r} holds numbers, and a label "
                              f"is a class: declare it categorical (data.columns: {{{label.name}: categorical}}), or "
                              "leave data.label out.")
    fit, chosen = split_rows(len(columns[0].values), params)
    if params.limit is not None:
        chosen = chosen[: params.limit]
    raw = {c.name: c.values[chosen] for c in columns}  # before impute() fills the holes
    impute(columns, fit, params)
    spec = api.TableSpec(tuple(encode_column(c, fit, params, params.indicators and bool(c.strategy))
                               for c in columns), label=params.label)
    values: dict[str, np.ndarray] = {}
    for c, column in zip(columns, spec.columns, strict=True):
        if c.type == "numeric":
            values[c.name] = c.values[chosen]
        else:
            index = {category: i for i, category in enumerate(column.categories)}
            values[c.name] = np.array([index[v] for v in c.values[chosen]], np.int64)
    rows = spec.encode(values, {c.name: c.missing[chosen] for c in columns})
    labels = values[params.label] if params.label is not None else None
    return rows, spec, labels, raw
