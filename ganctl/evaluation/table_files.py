"""Generated tables from files, scored like a run's (bench/tables.py compares ganctl with ctgan and SDV so).

A generated table from a file (``ganctl generate``'s CSV, or another tool's) is compared with the
real rows of a data section by :func:`evaluate_table_file`: :func:`real_table` gives a split's
rows (decoded as generated rows are, and as read, holes included, for other tools to train on),
:func:`read_table_csv` reads the file in :meth:`api.TableSpec.decode`'s format, and
:func:`compare_tables` scores it with :func:`ganctl.evaluation.tables.score`, the code that scores
a run's own rows.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganctl import api
from ganctl.errors import ConfigError, DataError
from ganctl.evaluation.metrics import Result
from ganctl.evaluation.tables import RealTables, build_metric, score, table_metrics, usable
from ganctl.plugins import PluginHost
from ganctl.recipe.load import Section, validate_section


@dataclass(frozen=True)
class RealTable:
    """A split of a table dataset: ``columns``, its rows as the metrics see them (encoded, then decoded
    as generated rows are: NaN or None where a value is missing), ``values``, the same rows as read
    (None when the dataset plugin does not give them), the spec and the validated data section."""

    section: Section
    spec: api.TableSpec
    columns: dict[str, np.ndarray]
    values: dict[str, np.ndarray] | None

    @property
    def n(self) -> int:
        return len(next(iter(self.columns.values())))


def real_table(data: Section | Mapping[str, Any], host: PluginHost, split: str | None = None) -> RealTable:
    """The rows of the data section ``data`` (a recipe's ``data:``) that metrics compare with: its
    held-out split when it names ``split: train`` (else the section as it is). ``split`` asks for
    another split instead (``train``: the rows a model of this section trains on)."""
    from ganctl.session.data import build_dataset, held_out_section

    section = data if isinstance(data, Section) else validate_section(dict(data), "datasets", host, source="data")
    if split is not None:
        if "split" not in type(section.params).model_fields:
            raise ConfigError(f"dataset {section.plugin!r} has no splits; cannot take its {split!r} rows.")
        params = type(section.params).model_validate({**section.params.model_dump(), "split": split})
        section = Section(section.plugin, params)
    else:
        section = held_out_section(section) or section
    dataset = build_dataset(section, host)
    if not isinstance(dataset, api.TableDataset):
        raise ConfigError(f"dataset {section.plugin!r} is not a table.")
    columns = dataset.spec.decode(dataset.take(np.arange(len(dataset), dtype=np.int64)).images)
    return RealTable(section, dataset.spec, columns, dataset.values)


MISSING_CELLS = frozenset({"", "na", "nan", "n/a", "null", "none"})
"""Cells of a generated CSV file that mean missing (compared in lower case)."""
_TRUE = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "0.0"})


def _category(cell: str, column: api.Column) -> str:
    """A categorical or boolean cell as the spec names it (``1.0`` is category ``1``; booleans
    ``False``/``True``)."""
    if column.type == "boolean":
        low = cell.lower()
        return "True" if low in _TRUE else "False" if low in _FALSE else cell
    if cell not in column.categories:
        try:
            number = float(cell)
        except ValueError:
            return cell
        if number.is_integer() and str(int(number)) in column.categories:
            return str(int(number))
    return cell


def read_table_csv(path: Path, spec: api.TableSpec) -> dict[str, np.ndarray]:
    """A generated table's CSV file (a header naming the columns, one line per row) in
    :meth:`api.TableSpec.decode`'s format: numeric columns float64 with NaN, the others category
    strings with None. Cells of :data:`MISSING_CELLS` are missing; columns not in ``spec`` are
    ignored. A file without every column of ``spec``, or a number that is not one, is a DataError."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            lines = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{path} is not a readable CSV file ({error}): write it again as UTF-8 CSV.") from None
    if not lines:
        raise DataError(f"{path} is empty: a generated table starts with a line of column names.")
    header, rows = lines[0], [row for row in lines[1:] if row]
    absent = [c.name for c in spec.columns if c.name not in header]
    if absent:
        raise DataError(f"{path} has no column {', '.join(map(repr, absent))}: a generated table needs every column "
                        f"of the real one ({', '.join(c.name for c in spec.columns)}); write them all.")
    if len(rows) < 2:
        raise DataError(f"{path} holds {len(rows)} row(s): compare at least 2 generated rows.")
    out: dict[str, np.ndarray] = {}
    for column in spec.columns:
        j = header.index(column.name)
        cells = [row[j].strip() if j < len(row) else "" for row in rows]
        if column.type == "numeric":
            values = np.full(len(cells), np.nan)
            for i, cell in enumerate(cells):
                if cell.lower() in MISSING_CELLS:
                    continue
                try:
                    values[i] = float(cell)
                except ValueError:
                    raise DataError(f"{path}:{i + 2}: column {column.name!r} is numeric in the real table but holds "
                                    f"{cell!r}: write numbers (or an empty field for a missing value).") from None
                if not math.isfinite(values[i]):
                    values[i] = np.nan
            out[column.name] = values
        else:
            out[column.name] = np.array([None if c.lower() in MISSING_CELLS else _category(c, column) for c in cells],
                                        dtype=object)
    return out


def compare_tables(real: RealTable, fake: Mapping[str, np.ndarray], host: PluginHost, sections: Sequence[Any] = (),
                   *, seed: int = 0, about: Mapping[str, Any] | None = None,
                   train: RealTable | None = None) -> list[Result]:
    """Each requested metric of tables (every installed one that can run when ``sections`` is empty)
    comparing the generated columns ``fake`` with ``real``; ``about`` goes into each result's
    protocol (what made the rows). Metrics that need the rows the model trained on get ``train``'s."""
    built = [build_metric(host, section) for section in (sections or table_metrics(host))]
    metrics, skipped = usable(built, real.spec, train is not None, named=bool(sections))
    if not metrics:
        raise ConfigError("no metric of tables can run on these rows: " + (" ".join(skipped) or "none is installed."))
    tables = RealTables(real.section, real.columns, real.n, None if train is None else train.columns)
    return score(metrics, tables, real.spec, dict(fake), seed=seed, about=dict(about or {}))


def evaluate_table_file(path: Path, data: Section | Mapping[str, Any], host: PluginHost, sections: Sequence[Any] = (),
                        *, seed: int = 0) -> list[Result]:
    """The metrics of tables on a generated table's CSV file at ``path``, against the real rows of the
    data section ``data`` (:func:`real_table`): the same comparison as ``ganctl evaluate RUN`` makes
    when ``data`` is the run's ``data:``, for a file any tool wrote."""
    real = real_table(data, host)
    needs = any(metric.needs_training_rows for _, _, metric in
                (build_metric(host, s) for s in (sections or table_metrics(host))))
    train = real_table(data, host, split="train") if needs else None
    return compare_tables(real, read_table_csv(path, real.spec), host, sections, seed=seed,
                          about={"generated": str(path)}, train=train)
