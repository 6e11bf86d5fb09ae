"""The ``csv`` and ``parquet`` datasets: tables with numeric, categorical and boolean columns, and holes.

A table is read with pandas (pyarrow for Parquet; ``pip install 'ganctl[tables]'``). Column types
are inferred (numbers: numeric; true/false, yes/no: boolean; anything else: categorical) or declared
in ``columns:``. Empty fields, ``NA``, ``NaN`` (and pandas's other usual markers) and the tokens of
``missing_values:`` are missing values. Each column with missing values is filled by its strategy
(``impute:``, else ``numeric_strategy`` / ``categorical_strategy``): ``drop`` (the row goes),
``mean``, ``median``, ``most_frequent``, ``constant`` (``fill_values:``), ``knn`` or ``iterative``
(scikit-learn's imputers, over the numeric columns); with ``indicators: true`` the encoding records
where values were missing, so a model learns the pattern and generated tables have holes too.

Rows are encoded as :class:`ganctl.api.TableSpec` says (numeric columns by mode-specific
normalisation with a variational Gaussian mixture, others one-hot), fitted on the training rows.
``split: train`` / ``test`` is a fixed shuffle (``split_seed``) cut at ``test_fraction``.
"""

from __future__ import annotations

from typing import Literal

from ganctl import api

from ._common import LIMIT_DESCRIPTION, about, resolve_path
from ._table_prepare import build
from ._table_read import BUNDLED, read_bundled, read_csv, read_parquet

Strategy = Literal["drop", "mean", "median", "most_frequent", "constant", "knn", "iterative"]
ColumnType = Literal["numeric", "categorical", "boolean"]


class InjectMissing(api.Params):
    """Values removed at random: ``inject_missing: {rate: 0.1, seed: 0}`` completely at random (MCAR),
    or ``{rate: 0.1, mechanism: mar, given: age}`` at random given another column (MAR)."""

    rate: float = api.Field(..., gt=0, lt=1, description="The probability that each value is removed (with mar: "
                                                         "on average over the rows).")
    seed: int = api.Field(0, ge=0, description="Seed of which values are removed.")
    columns: tuple[str, ...] | None = api.Field(None, description="The columns to remove values from (null: all but "
                                                                  "the label and the given column).")
    mechanism: Literal["mcar", "mar"] = api.Field(
        "mcar", description="mcar: every value alike; mar: a value's chance of being removed rises with the given "
                            "column's value in its row (logistic in its standardised value; categories by their "
                            "sorted order).")
    given: str | None = api.Field(None, description="mar: the observed column the holes depend on (null: the label); "
                                                    "it keeps all its values.")
    strength: float = api.Field(2.0, gt=0, le=10, description="mar: the logistic slope per standard deviation of the "
                                                              "given column (larger: holes gather more at high values).")

    @api.model_validator(mode="after")
    def _mar_keys(self) -> InjectMissing:
        if self.mechanism == "mcar" and self.given is not None:
            raise ValueError("given is for mechanism: mar (holes that depend on another column); add mechanism: mar, "
                             "or leave given out")
        return self


class TableParams(api.Params):
    """What every table dataset takes."""

    columns: dict[str, ColumnType] = api.Field(
        {}, description="Declared column types (numeric, categorical, boolean); columns left out are inferred.")
    exclude: tuple[str, ...] = api.Field((), description="Columns not to use (identifiers, free text).")
    label: str | None = api.Field(None, description="The label column (categorical or boolean) for conditional "
                                                    "models; rows missing it are dropped.")
    missing_values: tuple[str, ...] = api.Field(
        (), description="More cell values that mean missing (empty, NA, NaN, null, N/A... always do).")
    impute: dict[str, Strategy] = api.Field(
        {}, description="Per column: how its missing values are filled (drop, mean, median, most_frequent, "
                        "constant, knn, iterative).")
    numeric_strategy: Strategy = api.Field("mean", description="The strategy of numeric columns not in impute.")
    categorical_strategy: Literal["drop", "most_frequent", "constant"] = api.Field(
        "most_frequent", description="The strategy of categorical and boolean columns not in impute.")
    fill_values: dict[str, float | str] = api.Field(
        {}, description="Per column: the value of strategy constant (default 0 for numbers, 'missing' for "
                        "categories).")
    knn_neighbors: int = api.Field(5, ge=1, le=100, description="Neighbours of strategy knn.")
    indicators: bool = api.Field(True, description="Encode where values were missing (a missingness indicator "
                                                   "for each imputed column), so generated rows have holes too.")
    max_modes: int = api.Field(10, ge=1, le=50, description="At most this many Gaussian-mixture modes per numeric "
                                                            "column (mode-specific normalisation).")
    max_categories: int = api.Field(1000, ge=2, description="Refuse a categorical column with more distinct values.")
    inject_missing: InjectMissing | None = api.Field(
        None, description="Remove values at random first, e.g. {rate: 0.1, seed: 0} (completely at random) or "
                          "{rate: 0.1, mechanism: mar, given: age} (at random given another column), to study "
                          "imputation on a complete table.")
    split: Literal["train", "test", "all"] = api.Field(
        "all", description="Which rows: all, or a fixed shuffle's training part or held-out part (test_fraction).")
    test_fraction: float = api.Field(0.2, gt=0, lt=1, description="The held-out part's share of the rows.")
    split_seed: int = api.Field(0, ge=0, description="Seed of the train/test shuffle.")
    seed: int = api.Field(0, ge=0, description="Seed of the encoding's mixtures and of strategy iterative.")
    limit: int | None = api.Field(None, ge=1, description=LIMIT_DESCRIPTION)


class CSV(api.TableDataset):
    """A table from a CSV file (or a table a package ships: penguins, wine, ...); missing values handled."""

    class Params(TableParams):
        path: str | None = api.PathField(None, description="The CSV file (its first line names the columns).")
        name: Literal[BUNDLED] | None = api.Field(  # type: ignore[valid-type]
            None, description=f"Instead of path, a table that needs no download: {', '.join(BUNDLED)} (penguins: "
                              "pip install palmerpenguins).")
        delimiter: str = api.Field(",", min_length=1, max_length=1, description="The field separator.")

        @api.model_validator(mode="after")
        def _one_source(self) -> CSV.Params:
            if (self.path is None) == (self.name is None):
                raise ValueError("give exactly one of path (a CSV file) and name (a table that needs no download)")
            return self

    def __init__(self, params: Params) -> None:
        if params.name is not None:
            frame, source = read_bundled(params.name, params.missing_values)
        else:
            path = resolve_path(params.path or "")
            frame, source = read_csv(path, params.delimiter, params.missing_values), str(path)
        with about(source):
            rows, spec, labels, values = build(frame, params, source)
        super().__init__(rows, spec, labels, values)


class Parquet(api.TableDataset):
    """A table from a Parquet file; missing values handled."""

    class Params(TableParams):
        path: str = api.PathField(..., description="The Parquet file.")

    def __init__(self, params: Params) -> None:
        path = resolve_path(params.path)
        frame = read_parquet(path, params.missing_values)
        with about(path):
            rows, spec, labels, values = build(frame, params, str(path))
        super().__init__(rows, spec, labels, values)
