"""The ``digits`` dataset: scikit-learn's bundled 8x8 handwritten digits.

1797 grayscale 8x8 images with values 0..16 and labels 0-9. It ships inside scikit-learn, so it
needs no download, which makes it the dataset of choice for smoke tests and tutorials.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ganctl import api

from ._common import LIMIT_DESCRIPTION, apply_limit

SPLIT_SEED = 0
"""Seed of the fixed train/test holdout: changing it would change every recipe's data."""

TEST_FRACTION = 0.2


class Digits(api.ArrayDataset):
    """scikit-learn's 8x8 handwritten digits (1797 images, 10 classes, no download)."""

    class Params(api.Params):
        split: Literal["train", "test", "all"] = api.Field(
            "train",
            description=(
                "Which part to use: a fixed, class-stratified 80/20 holdout gives 'train' "
                "(1437 images) and 'test' (360 images); 'all' is all 1797."
            ),
        )
        limit: int | None = api.Field(None, ge=1, description=LIMIT_DESCRIPTION)

    def __init__(self, params: Params) -> None:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        bunch = load_digits()
        images = bunch.images.astype(np.uint8)  # [1797, 8, 8], values 0..16
        labels = bunch.target.astype(np.int64)

        if params.split != "all":
            train, test = train_test_split(
                np.arange(len(labels)),
                test_size=TEST_FRACTION,
                random_state=SPLIT_SEED,
                stratify=labels,
            )
            # Keep the original order inside each split, so `limit` takes a stable subset.
            keep = np.sort(train if params.split == "train" else test)
            images, labels = images[keep], labels[keep]

        images, labels = apply_limit(images, labels, params.limit)
        super().__init__(
            images,
            labels,
            raw_range=(0, 16),
            num_classes=10,
            class_names=[str(digit) for digit in range(10)],
        )
