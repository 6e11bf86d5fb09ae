"""The ``npz`` dataset: images (and optionally labels) from a NumPy ``.npz`` archive.

Save your arrays with ``numpy.savez("data.npz", images=images, labels=labels)``: ``images`` is
``[N, H, W, C]`` (or ``[N, C, H, W]`` with ``layout: NCHW``, or ``[N, H, W]``), of any integer or
float dtype; ``labels`` is ``[N]`` non-negative integers and may be left out. The file is read
with ``allow_pickle=False``: arrays of Python objects are refused, never unpickled. Relative
paths are resolved against the current working directory; ``~`` and ``$VARS`` are expanded.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import model_validator

from ganctl import api

from ._common import (
    LIMIT_DESCRIPTION,
    about,
    apply_limit,
    check_finite,
    guess_value_range,
    resolve_path,
)

DEFAULT_LABELS_KEY = "labels"

_SAVE_HINT = "save the arrays with numpy.savez(path, images=..., labels=...)"


def _open(path: Path) -> np.lib.npyio.NpzFile:
    if path.is_dir():
        raise api.DataError(f"{path} is a folder, not an .npz file: point `path:` at the file.")
    if not path.is_file():
        raise api.DataError(
            f"the .npz file {path} does not exist: check `path:` (relative paths start from "
            "the current directory)."
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError:  # NumPy takes anything that is neither zip nor .npy for a pickle
        raise api.DataError(
            f"{path} is not a readable .npz archive: it is neither a zip archive of arrays nor a "
            f".npy file (ganctl never loads pickles). {_SAVE_HINT.capitalize()}."
        ) from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise api.DataError(
            f"{path} is not a readable .npz archive ({error}): {_SAVE_HINT}."
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise api.DataError(
            f"{path} holds a single .npy array, not an .npz archive of named arrays: {_SAVE_HINT}."
        )
    return archive


def _read(archive: np.lib.npyio.NpzFile, path: Path, key: str, setting: str) -> np.ndarray:
    if key not in archive.files:
        raise api.DataError(
            f"{path} has no array named {key!r}; it holds {', '.join(map(repr, archive.files)) or 'nothing'}. "
            f"Set `{setting}:` to the right name."
        )
    try:
        return archive[key]
    except ValueError as error:  # object arrays: numpy refuses to unpickle them
        raise api.DataError(
            f"array {key!r} in {path} cannot be loaded ({error}): it holds Python objects, "
            f"which ganctl never unpickles. Store plain numeric arrays: {_SAVE_HINT}."
        ) from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise api.DataError(
            f"array {key!r} in {path} is corrupt ({error}): write the file again."
        ) from None


class NPZ(api.ArrayDataset):
    """Images (and optional labels) from a NumPy .npz archive."""

    class Params(api.Params):
        path: str = api.PathField(..., description="The .npz file, relative to the current directory.")
        images_key: str = api.Field("images", description="Name of the images array in the file.")
        labels_key: str | None = api.Field(
            DEFAULT_LABELS_KEY,
            description=(
                "Name of the labels array; null for unlabelled data. With the default, a file "
                "without a 'labels' array is simply unlabelled."
            ),
        )
        layout: Literal["NHWC", "NCHW"] = api.Field(
            "NHWC", description="Axis order of 4-D images; 3-D [N, H, W] images have one channel."
        )
        value_range: tuple[float, float] | None = api.Field(
            None,
            description=(
                "Raw (low, high) pixel values mapped to -1 and +1. Unset: guessed (uint8 and "
                "integers within 0..255 -> [0, 255], floats within [0, 1] -> [0, 1], floats "
                "within [-1, 1] -> [-1, 1])."
            ),
        )
        limit: int | None = api.Field(None, ge=1, description=LIMIT_DESCRIPTION)

        @model_validator(mode="after")
        def _check_range(self) -> NPZ.Params:
            if self.value_range is not None and not self.value_range[1] > self.value_range[0]:
                raise ValueError(
                    f"value_range must be [low, high] with high > low, got {list(self.value_range)}"
                )
            return self

    def __init__(self, params: Params) -> None:
        path = resolve_path(params.path)
        with _open(path) as archive:
            images = _read(archive, path, params.images_key, "images_key")
            # The default key may be absent (unlabelled data); a key the user chose may not.
            key = params.labels_key
            labels = None
            if key is not None and (key in archive.files or key != DEFAULT_LABELS_KEY):
                labels = _read(archive, path, key, "labels_key")

        with about(path):
            images = self._check_images(images, params)
            if labels is not None:
                labels = self._check_labels(labels, len(images), params.labels_key)
            check_finite(images)
            raw_range = params.value_range or guess_value_range(images)
            if raw_range is None:
                raise api.DataError(
                    f"the {images.dtype} pixel values of {params.images_key!r} span "
                    f"{images.min()}..{images.max()}, so their range cannot be guessed: set "
                    "`value_range: [low, high]` to the values that mean black and white."
                )
            images, labels = apply_limit(images, labels, params.limit)
            if images.ndim == 4 and params.layout == "NCHW":
                images = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
            super().__init__(images, labels, raw_range=raw_range)

    @staticmethod
    def _check_images(images: np.ndarray, params: Params) -> np.ndarray:
        key = params.images_key
        if not (
            np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)
        ):
            raise api.DataError(
                f"array {key!r} has dtype {images.dtype}: images must be integers or floats."
            )
        if images.ndim not in (3, 4):
            raise api.DataError(
                f"array {key!r} has shape {list(images.shape)}: images must be [N, H, W] or "
                f"4-D in the `layout` {params.layout}."
            )
        if images.ndim == 4:
            channels = images.shape[3] if params.layout == "NHWC" else images.shape[1]
            if not 1 <= channels <= 4:
                other = "NCHW" if params.layout == "NHWC" else "NHWC"
                raise api.DataError(
                    f"array {key!r} has shape {list(images.shape)}, which in layout "
                    f"{params.layout} means {channels} channels (1 to 4 expected): if the "
                    f"array is {other}, set `layout: {other}`."
                )
        return images

    @staticmethod
    def _check_labels(labels: np.ndarray, count: int, key: str | None) -> np.ndarray:
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]  # [N, 1], as Keras often stores them
        if labels.shape != (count,):
            raise api.DataError(
                f"array {key!r} has shape {list(labels.shape)}, but there are {count} images: "
                "labels must be one integer class per image, shape [N]."
            )
        if not (
            np.issubdtype(labels.dtype, np.integer) or np.issubdtype(labels.dtype, np.floating)
        ):
            raise api.DataError(f"array {key!r} has dtype {labels.dtype}: labels must be integers.")
        return labels
