"""Reading a table for the ``csv`` and ``parquet`` datasets (private): a file, or a table a package ships.

Every failure is a :class:`api.DataError` naming the file and, where it helps, the line and the fix.
pandas (and pyarrow for Parquet) are imported only here, when a table is read.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ganctl import api

INSTALL = "pip install 'ganctl[tables]'"

BUNDLED = ("penguins", "wine", "breast-cancer", "diabetes", "iris")
"""Tables that need no download: Palmer penguins (the palmerpenguins package; real missing values)
and scikit-learn's embedded tables (no missing values: add some with ``inject_missing``)."""


def pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise api.ConfigError(f"the table datasets read files with pandas, which is not installed: {INSTALL}.") from None
    return pd


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise api.DataError(f"{path} is a folder, not a table file: point `path:` at the file.")
    if not path.is_file():
        raise api.DataError(f"the table file {path} does not exist: check `path:` (relative paths start from the "
                            "current directory).")


def read_csv(path: Path, delimiter: str, tokens: tuple[str, ...]) -> Any:
    """The CSV file as a DataFrame: the first line names the columns; empty fields, ``NA``, ``NaN``
    (and pandas's other usual markers) and ``tokens`` are missing values. Ragged rows are refused."""
    pd = pandas()
    _check_file(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = next(reader, None)
            if not header or not any(cell.strip() for cell in header):
                raise api.DataError(f"{path} is empty: a CSV table starts with a line of column names.")
            for row in reader:
                if row and len(row) != len(header):
                    raise api.DataError(
                        f"{path}:{reader.line_num}: this row has {len(row)} fields but the header names "
                        f"{len(header)} columns. Fix the row (quote fields that contain {delimiter!r}), or set "
                        "`delimiter:` if the file is not separated by it.")
        return pd.read_csv(path, sep=delimiter, na_values=list(tokens), keep_default_na=True,
                           skip_blank_lines=True, low_memory=False)
    except UnicodeDecodeError as error:
        raise api.DataError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start}): save it as UTF-8 "
                            "CSV.") from None
    except csv.Error as error:
        raise api.DataError(f"{path} is not a readable CSV file ({error}): fix the file or its `delimiter:`.") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise api.DataError(f"{path} is not a readable CSV file ({str(error).strip()}): fix the file.") from None


def read_parquet(path: Path, tokens: tuple[str, ...]) -> Any:
    """The Parquet file as a DataFrame; string cells equal to one of ``tokens`` become missing."""
    pd = pandas()
    _check_file(path)
    try:
        import pyarrow  # noqa: F401 - pandas reads Parquet through it
    except ImportError:
        raise api.ConfigError(f"the parquet dataset reads files with pyarrow, which is not installed: {INSTALL}.") from None
    try:
        frame = pd.read_parquet(path)
    except Exception as error:  # pyarrow's errors have no common base worth naming
        raise api.DataError(f"{path} is not a readable Parquet file ({type(error).__name__}: "
                            f"{str(error).splitlines()[0] if str(error) else ''}): write it again.") from None
    if tokens:
        frame = frame.replace(list(tokens), None)
    return frame


def read_bundled(name: str, tokens: tuple[str, ...]) -> tuple[Any, str]:
    """A table a package ships (see :data:`BUNDLED`), and where it comes from."""
    if name == "penguins":
        import importlib.resources

        try:
            path = Path(str(importlib.resources.files("palmerpenguins") / "data" / "penguins.csv"))
        except ModuleNotFoundError:
            raise api.ConfigError(f"`name: penguins` reads the palmerpenguins package, which is not installed: "
                                  f"{INSTALL} (or pip install palmerpenguins).") from None
        return read_csv(path, ",", tokens), str(path)
    pandas()
    from sklearn import datasets

    loader = {"wine": datasets.load_wine, "breast-cancer": datasets.load_breast_cancer,
              "diabetes": datasets.load_diabetes, "iris": datasets.load_iris}[name]
    bunch = loader(as_frame=True)
    frame = bunch.frame.copy()
    names = getattr(bunch, "target_names", None)
    if names is not None and len(names):  # a classification table: the target as its class names
        frame["target"] = [str(names[int(i)]) for i in frame["target"]]
    return frame, f"scikit-learn's {loader.__name__}"
