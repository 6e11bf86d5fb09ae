"""The ``idx`` dataset: images and labels in the IDX format of MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the values in C order. Files may be gzip-compressed
(recognised by their content, whatever their name).

Either name a known dataset (``name: mnist`` or ``name: fashion-mnist``), which is searched for
in the places listed by :func:`search_locations`, or give ``path:``, a folder holding the
standard files (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``) or one images file.
Relative paths are resolved against the current working directory; ``~`` and ``$VARS`` are
expanded.
"""

from __future__ import annotations

import gzip
import math
import os
import zipfile
import zlib
from pathlib import Path
from typing import Annotated, Literal

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

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CLASS_NAMES = {
    "mnist": tuple(str(digit) for digit in range(10)),
    "fashion-mnist": FASHION_MNIST_CLASSES,
}

SYSTEM_DATA_DIRS = (Path("/usr/share/datasets"),)
"""Where distribution packages install data sets (Debian's ``dataset-fashion-mnist``)."""

_FILE_PREFIX = {"train": "train", "test": "t10k"}

# IDX type code -> numpy dtype (multi-byte values are big-endian).
_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (raw or gzip-compressed) into an array with its declared shape."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise api.DataError(f"IDX file {path} does not exist: check the path.") from None
    except OSError as error:
        raise api.DataError(f"IDX file {path} cannot be read: {error.strerror or error}.") from None

    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (gzip.BadGzipFile, EOFError, zlib.error) as error:
            raise api.DataError(
                f"{path} is a corrupt or truncated gzip file ({error}): download it again."
            ) from None

    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES or data[3] == 0:
        raise api.DataError(
            f"{path} is not an IDX file (nor a gzip-compressed one): IDX files start with two "
            "zero bytes, a type code and the number of dimensions. Point ganctl at MNIST-style "
            "files such as train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz."
        )
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise api.DataError(
            f"IDX file {path} is truncated: its header declares {ndim} dimensions "
            f"({header} bytes) but the file holds only {len(data)} bytes. Download it again."
        )
    shape = tuple(int(size) for size in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = math.prod(shape) * dtype.itemsize
    actual = len(data) - header
    if actual != expected:
        what = "truncated" if actual < expected else "longer than its header says"
        raise api.DataError(
            f"IDX file {path} is {what}: its header declares shape {list(shape)} of "
            f"{dtype.name}, which is {expected} bytes of data, but it holds {actual} bytes. "
            "Download it again."
        )
    array = np.frombuffer(data, dtype, offset=header).reshape(shape)
    if not dtype.isnative:
        array = array.astype(dtype.newbyteorder("="))
    return array


def search_locations(name: str) -> list[Path]:
    """Where ``name: <name>`` looks, in order: folders of IDX files, and Keras's ``.npz`` cache.

    Each folder of ``$GANCTL_DATA`` (``os.pathsep``-separated) as ``<dir>/<name>/`` then
    ``<dir>/``; ``~/.keras/datasets/<name>/``; for MNIST ``~/.keras/datasets/mnist.npz``; then
    ``/usr/share/datasets/<name>/`` (Debian's ``dataset-fashion-mnist`` package).
    """
    places: list[Path] = []
    for entry in os.environ.get("GANCTL_DATA", "").split(os.pathsep):
        if entry.strip():
            root = resolve_path(entry.strip())
            places += [root / name, root]
    keras_cache = Path(os.path.expanduser("~")) / ".keras" / "datasets"
    places.append(keras_cache / name)
    if name == "mnist":
        places.append(keras_cache / "mnist.npz")
    places += [system / name for system in SYSTEM_DATA_DIRS]
    return places


def _find_file(folder: Path, kind: Literal["images", "labels"], split: str) -> Path | None:
    """The standard images or labels file of ``split`` in ``folder``, raw or ``.gz``."""
    prefix = _FILE_PREFIX[split]
    idx = "idx3" if kind == "images" else "idx1"
    for separator in ("-", "."):  # train-images-idx3-ubyte, and the train-images.idx3-ubyte variant
        for suffix in (".gz", ""):
            candidate = folder / f"{prefix}-{kind}{separator}{idx}-ubyte{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _labels_beside(images_file: Path) -> Path | None:
    """The labels file named after ``images_file`` (``*-images-idx3-ubyte`` -> ``*-labels-idx1-ubyte``)."""
    name = images_file.name
    base = name.removesuffix(".gz")
    suffixes = (".gz", "") if name.endswith(".gz") else ("", ".gz")
    for old, new in (
        ("-images-idx3-ubyte", "-labels-idx1-ubyte"),
        ("-images.idx3-ubyte", "-labels.idx1-ubyte"),
    ):
        if base.endswith(old):
            stem = base[: -len(old)] + new
            for suffix in suffixes:
                candidate = images_file.with_name(stem + suffix)
                if candidate.is_file():
                    return candidate
    return None


def _read_pair(images_file: Path, labels_file: Path | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read and check an images file and its (optional) labels file."""
    images = read_idx(images_file)
    if images.ndim not in (3, 4):
        raise api.DataError(
            f"{images_file} holds an array of shape {list(images.shape)}, not images: expected "
            "[N, height, width] (an idx3 file) or [N, height, width, channels]. Is it a labels file?"
        )
    if labels_file is None:
        return images, None
    labels = read_idx(labels_file)
    if labels.shape != (images.shape[0],):
        raise api.DataError(
            f"labels file {labels_file} holds an array of shape {list(labels.shape)}, but the "
            f"images file {images_file} holds {images.shape[0]} images: expected one label per "
            "image, shape [N] (an idx1 file). Check that the two files belong together."
        )
    return images, labels


def _read_keras_npz(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read Keras's cached ``mnist.npz`` (keys ``x_train``, ``y_train``, ``x_test``, ``y_test``)."""
    x_key, y_key = ("x_train", "y_train") if split == "train" else ("x_test", "y_test")
    fix = "delete it and let Keras download it again, or use the IDX files instead."
    try:
        archive = np.load(path, allow_pickle=False)
        if isinstance(archive, np.lib.npyio.NpzFile):
            with archive:
                return archive[x_key], archive[y_key]
    except KeyError as error:
        raise api.DataError(f"Keras's MNIST cache {path} has no array {error}: {fix}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise api.DataError(f"Keras's MNIST cache {path} cannot be read ({error}): {fix}") from None
    raise api.DataError(f"Keras's MNIST cache {path} is not an .npz archive: {fix}")


def _how_to_get(name: str) -> str:
    ways = []
    if name == "fashion-mnist":
        ways.append("install Debian's package (`apt-get install dataset-fashion-mnist`)")
    if name == "mnist":
        ways.append("run `keras.datasets.mnist.load_data()` once to fill Keras's cache")
    ways.append(
        f"download the four IDX files into $GANCTL_DATA/{name}/ (set GANCTL_DATA to a folder of "
        "your choice)"
    )
    ways.append("point `path:` at a folder that holds them")
    return ", or ".join(ways)


def _load_named(name: str, split: str) -> tuple[np.ndarray, np.ndarray | None, Path]:
    prefix = _FILE_PREFIX[split]
    places = search_locations(name)
    for place in places:
        if place.suffix == ".npz":
            if place.is_file():
                images, labels = _read_keras_npz(place, split)
                return images, labels, place
            continue
        images_file = _find_file(place, "images", split)
        if images_file is None:
            continue
        labels_file = _find_file(place, "labels", split)
        if labels_file is None:
            raise api.DataError(
                f"found {name}'s images {images_file} but not its labels file "
                f"{prefix}-labels-idx1-ubyte[.gz] in {place}: put the labels file beside it."
            )
        images, labels = _read_pair(images_file, labels_file)
        return images, labels, images_file
    looked = ", ".join(str(place) for place in places)
    raise api.DataError(
        f"the {name} data set ({split} split: {prefix}-images-idx3-ubyte[.gz] and "
        f"{prefix}-labels-idx1-ubyte[.gz]) was not found. Looked in: {looked}. To get it, "
        f"{_how_to_get(name)}."
    )


def _load_path(params: IDX.Params) -> tuple[np.ndarray, np.ndarray | None, Path]:
    path = resolve_path(params.path or "")
    if path.is_dir():
        images_file = _find_file(path, "images", params.split)
        if images_file is None:
            prefix = _FILE_PREFIX[params.split]
            raise api.DataError(
                f"the folder {path} holds no {prefix}-images-idx3-ubyte[.gz] file (the images of "
                f"the {params.split} split). Put the IDX files there, set `split:`, or point "
                "`path:` at the images file itself."
            )
        labels_file = _find_file(path, "labels", params.split)
    elif path.is_file():
        images_file = path
        labels_file = _labels_beside(path)
    else:
        raise api.DataError(
            f"{path} does not exist: `path:` must be a folder of IDX files or an images file "
            "(relative paths start from the current directory)."
        )
    if params.labels is not None:
        labels_file = resolve_path(params.labels)
        if not labels_file.is_file():
            raise api.DataError(f"the labels file {labels_file} given as `labels:` does not exist.")
    images, labels = _read_pair(images_file, labels_file)
    return images, labels, images_file


def _only_classes(
    images: np.ndarray, labels: np.ndarray | None, classes: list[int], class_names: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, int]:
    """The examples whose label is one of ``classes`` (copied, so the rest can be freed), and the
    number of classes of the whole data (kept: a conditional model's shape depends on it)."""
    if labels is None:
        raise api.DataError(
            "`classes:` keeps the examples of some classes, but this data has no labels file: "
            "give one with `labels:`, or remove `classes:`."
        )
    known = len(class_names) if class_names else int(labels.max()) + 1 if labels.size else 0
    absent = [c for c in classes if c >= known]
    if absent:
        listed = ", ".join(f"{i} ({n})" for i, n in enumerate(class_names)) if class_names else f"0..{known - 1}"
        raise api.DataError(
            f"`classes:` names class {', '.join(map(str, absent))}, but the classes are numbered "
            f"{listed}: use those numbers."
        )
    keep = np.isin(labels, classes)
    return images[keep], labels[keep], known


class IDX(api.ArrayDataset):
    """MNIST-format IDX files (raw or .gz): MNIST, Fashion-MNIST, or your own."""

    class Params(api.Params):
        name: Literal["mnist", "fashion-mnist"] | None = api.Field(
            None,
            description=(
                "A known data set, searched for in $GANCTL_DATA, ~/.keras/datasets and "
                "/usr/share/datasets. Give either this or `path`."
            ),
        )
        path: str | None = api.PathField(
            None,
            description=(
                "A folder holding train-/t10k-{images-idx3,labels-idx1}-ubyte[.gz] files, or one "
                "images file (then `split` is ignored and the labels file is found by its name). "
                "Relative to the current directory. Give either this or `name`."
            ),
        )
        labels: str | None = api.PathField(
            None,
            description=(
                "An explicit labels file (only with `path`); by default the standard labels "
                "file is used when present, else the data is unlabelled."
            ),
        )
        split: Literal["train", "test"] = api.Field(
            "train", description="'train' reads the train-* files, 'test' the t10k-* files."
        )
        limit: int | None = api.Field(None, ge=1, description=LIMIT_DESCRIPTION)
        classes: list[Annotated[int, api.Field(ge=0)]] | None = api.Field(
            None,
            min_length=1,
            description=(
                "Keep only the examples of these classes, by number (Fashion-MNIST: [7] is Sneaker), "
                "before `limit`; labels keep their numbers, so the data still has every class. Unset "
                "keeps them all."
            ),
        )

        @model_validator(mode="after")
        def _one_source(self) -> IDX.Params:
            if (self.name is None) == (self.path is None):
                raise ValueError(
                    "give exactly one of `name` (mnist or fashion-mnist, searched for in the "
                    "usual places) and `path` (a folder of IDX files, or an images file)"
                )
            if self.labels is not None and self.path is None:
                raise ValueError(
                    "`labels` only goes with `path`: named data sets bring their own labels"
                )
            return self

    def __init__(self, params: Params) -> None:
        if params.name is not None:
            images, labels, source = _load_named(params.name, params.split)
            class_names: tuple[str, ...] = CLASS_NAMES[params.name]
            num_classes: int | None = len(class_names)
        else:
            images, labels, source = _load_path(params)
            class_names, num_classes = (), None

        with about(source):
            check_finite(images)
            raw_range = guess_value_range(images)
            if raw_range is None:
                raise api.DataError(
                    f"the {images.dtype} pixel values span {images.min()}..{images.max()}, which "
                    "is not a range ganctl can guess: store 8-bit images, or save the arrays to "
                    "an .npz file and use the npz data set with `value_range:`."
                )
            if params.classes is not None:
                images, labels, num_classes = _only_classes(images, labels, params.classes, class_names)
            images, labels = apply_limit(images, labels, params.limit)
            super().__init__(
                images,
                labels,
                raw_range=raw_range,
                num_classes=num_classes,
                class_names=class_names,
            )
