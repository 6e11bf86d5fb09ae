"""Generated tables on disk: encoded rows decoded back into the table's columns, written as CSV (API 1.7)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from ganctl.api import TableSpec
from ganctl.fsutil import atomic_write


def table_text(spec: TableSpec, rows: np.ndarray) -> str:
    """CSV text of ``rows`` (encoded, ``[N, spec.width]``) decoded: a header of the column names,
    then one line per row; a missing value is an empty field, whole-number columns are written
    without a decimal point."""
    columns = spec.decode(rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.name for c in spec.columns])
    cells = [[_cell(value, c.integer) for value in columns[c.name]] for c in spec.columns]
    writer.writerows(zip(*cells, strict=True))
    return out.getvalue()


def _cell(value: object, integer: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return ""
        return str(int(value)) if integer else f"{float(value):.10g}"
    return str(value)


def write_table(path: Path, spec: TableSpec, rows: np.ndarray) -> Path:
    """Write ``rows`` decoded as a CSV file at ``path``, atomically."""
    return atomic_write(path, table_text(spec, rows).encode("utf-8"))
