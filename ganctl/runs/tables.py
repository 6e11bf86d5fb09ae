"""Generated tables on disk: encoded rows decoded back into the table's columns, written as CSV (API 1.7)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from ganctl.api import TableSpec
from ganctl.fsutil import atomic_write

DECODE_STREAM = 0x7AB1E
"""Seeds the draws of one-hot blocks (with the sampling seed) apart from the latents."""


def decode_rng(seed: int) -> np.random.Generator:
    """The generator that draws the one-hot blocks of the rows sampled with ``seed``."""
    return np.random.default_rng([seed, DECODE_STREAM])


def table_text(spec: TableSpec, rows: np.ndarray, seed: int) -> str:
    """CSV text of ``rows`` (encoded, ``[N, spec.width]``) decoded, each one-hot block drawn from
    its probabilities by :func:`decode_rng` of ``seed``: a header of the column names, then one
    line per row; a missing value is an empty field, whole-number columns are written without a
    decimal point."""
    header, cells = table_cells(spec, rows, seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(cells)
    return out.getvalue()


def table_cells(spec: TableSpec, rows: np.ndarray, seed: int) -> tuple[list[str], list[tuple[str, ...]]]:
    """The column names, and each of ``rows`` decoded as :func:`table_text` writes it: one string per
    column, empty where the value is missing."""
    columns = spec.decode(rows, decode_rng(seed))
    cells = [[_cell(value, c.integer) for value in columns[c.name]] for c in spec.columns]
    return [c.name for c in spec.columns], list(zip(*cells, strict=True))


def _cell(value: object, integer: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return ""
        return str(int(value)) if integer else f"{float(value):.10g}"
    return str(value)


def write_table(path: Path, spec: TableSpec, rows: np.ndarray, seed: int) -> Path:
    """Write ``rows`` (sampled with ``seed``) decoded as a CSV file at ``path``, atomically."""
    return atomic_write(path, table_text(spec, rows, seed).encode("utf-8"))
