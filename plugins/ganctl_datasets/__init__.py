"""ganctl's first-party datasets, registered through the plugin API like any third party's.

* ``digits``: scikit-learn's 8x8 handwritten digits (no download).
* ``idx``: MNIST-format IDX files; ``name: mnist`` / ``name: fashion-mnist`` find them for you.
* ``image-folder``: a folder of PNG/JPEG/... images, optionally one sub-folder per class.
* ``npz``: arrays from a NumPy ``.npz`` archive.
* ``csv``, ``parquet``: tables with missing values (API 1.7); ``csv`` also reads tables packages
  ship (``name: penguins``, ``wine``, ...).

Importing this package is cheap: scikit-learn, pandas and Pillow are imported only when a dataset that
needs them is built.
"""

from __future__ import annotations

from ganctl import api

from .digits import Digits
from .idx import IDX
from .image_folder import ImageFolder
from .npz import NPZ
from .table import CSV, Parquet

GANCTL_API = "1.7"  # the ganctl.api version this plugin needs (docs/plugins.md)

__all__ = ["CSV", "IDX", "NPZ", "Digits", "ImageFolder", "Parquet", "register_datasets"]


@api.hookimpl
def register_datasets(register: api.Register) -> None:
    """Register the first-party datasets."""
    register("digits", Digits)
    register("idx", IDX)
    register("image-folder", ImageFolder)
    register("npz", NPZ)
    register("csv", CSV)
    register("parquet", Parquet)
