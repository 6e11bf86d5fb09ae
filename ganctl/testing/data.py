"""Small datasets for tests: labelled 8x8 digits (scikit-learn's, no download) and random images.

The digits are also the test kit's own dataset plugin, ``kit-digits``, which every
:class:`~ganctl.testing.host.KitHost` registers: the recipes the kit trains use it, so the checks
do not depend on which dataset plugins are installed.
"""

from __future__ import annotations

import numpy as np

from ganctl import api

KIT_DATASET = "kit-digits"


class KitDigits(api.ArrayDataset):
    """The test kit's data: the first n of scikit-learn's 8x8 digits (values 0..16, 10 classes)."""

    class Params(api.Params):
        n: int = api.Field(64, ge=1, le=1797, description="How many digits.")
        labelled: bool = api.Field(True, description="With their labels (10 classes), or none.")

    def __init__(self, params: Params) -> None:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images = bunch.images[: params.n].astype(np.uint8)
        labels = bunch.target[: params.n].astype(np.int64) if params.labelled else None
        super().__init__(images, labels, raw_range=(0, 16), num_classes=10 if params.labelled else None)


class KitPlugin:
    """The test kit's own plugin: registers :class:`KitDigits`."""

    @staticmethod
    @api.hookimpl
    def register_datasets(register: api.Register) -> None:
        register(KIT_DATASET, KitDigits)


def digits(n: int = 64, *, labelled: bool = True) -> api.ArrayDataset:
    """The first ``n`` of scikit-learn's 8x8 digits (10 classes), with or without their labels."""
    return KitDigits(KitDigits.Params(n=n, labelled=labelled))


def noise(n: int = 64, shape: tuple[int, int, int] = (8, 8, 1), *, seed: int = 0) -> api.ArrayDataset:
    """``n`` unlabelled uint8 images of uniform noise."""
    images = np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)
    return api.ArrayDataset(images, raw_range=(0, 255))


def images(n: int = 64, shape: tuple[int, int, int] = (8, 8, 1), *, seed: int = 0) -> np.ndarray:
    """``n`` float32 images in ``[-1, 1]`` (what extractors and exporters are given)."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, *shape)).astype(np.float32)
