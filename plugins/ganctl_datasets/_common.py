"""Small helpers shared by the first-party datasets (private to this package)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ganctl import api

LIMIT_DESCRIPTION = "Keep only the first N examples (after the split); unset keeps them all."


def resolve_path(path: str) -> Path:
    """Expand ``~`` and ``$VARS`` in a path; relative paths are taken from the current directory."""
    return Path(os.path.expandvars(os.path.expanduser(path))).absolute()


def apply_limit(
    images: np.ndarray, labels: np.ndarray | None, limit: int | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Keep the first ``limit`` examples; copy them so the rest of the data can be freed."""
    if limit is None or limit >= len(images):
        return images, labels
    images = images[:limit].copy()
    labels = None if labels is None else labels[:limit].copy()
    return images, labels


@contextmanager
def about(where: Path | str) -> Iterator[None]:
    """Prefix any :class:`api.DataError` raised inside with the file or folder it concerns."""
    try:
        yield
    except api.DataError as error:
        if str(where) in error.message:
            raise
        raise api.DataError(f"{where}: {error.message}") from None


def check_finite(images: np.ndarray) -> None:
    """Refuse floating-point images holding NaN or infinity."""
    if np.issubdtype(images.dtype, np.floating) and not np.all(np.isfinite(images)):
        bad = int(np.count_nonzero(~np.isfinite(images)))
        raise api.DataError(
            f"the images hold {bad} NaN or infinite values: clean the data before training."
        )


def guess_value_range(images: np.ndarray) -> tuple[float, float] | None:
    """The raw ``(low, high)`` range that the pixel values were most likely stored in.

    uint8 -> (0, 255); floats within [0, 1] -> (0, 1); floats within [-1, 1] with negatives
    -> (-1, 1); other integers within [0, 255] -> (0, 255). None when it cannot be guessed.
    """
    if images.dtype == np.uint8:
        return (0.0, 255.0)
    if images.size == 0:
        return (0.0, 255.0)  # nothing to guess from; the dataset reports that it is empty
    low, high = float(images.min()), float(images.max())
    if np.issubdtype(images.dtype, np.floating):
        if 0.0 <= low and high <= 1.0:
            return (0.0, 1.0)
        if -1.0 <= low and high <= 1.0:
            return (-1.0, 1.0)
        return None
    if np.issubdtype(images.dtype, np.integer) and 0 <= low and high <= 255:
        return (0.0, 255.0)
    return None
