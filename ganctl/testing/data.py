"""Small datasets for tests: labelled 8x8 digits (scikit-learn's, no download) and random images."""

from __future__ import annotations

import numpy as np

from ganctl import api


def digits(n: int = 64, *, labelled: bool = True) -> api.ArrayDataset:
    """The first ``n`` of scikit-learn's 8x8 digits (10 classes), with or without their labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images[:n].astype(np.uint8)
    labels = bunch.target[:n].astype(np.int64) if labelled else None
    return api.ArrayDataset(images, labels, raw_range=(0, 16), num_classes=10 if labelled else None)


def noise(n: int = 64, shape: tuple[int, int, int] = (8, 8, 1), *, seed: int = 0) -> api.ArrayDataset:
    """``n`` unlabelled uint8 images of uniform noise."""
    images = np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)
    return api.ArrayDataset(images, raw_range=(0, 255))


def images(n: int = 64, shape: tuple[int, int, int] = (8, 8, 1), *, seed: int = 0) -> np.ndarray:
    """``n`` float32 images in ``[-1, 1]`` (what extractors and exporters are given)."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, *shape)).astype(np.float32)
