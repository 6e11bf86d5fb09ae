"""The `squares` dataset: White squares of random size on black, labelled small or large."""

import numpy as np

from ganctl import api


class Squares(api.ArrayDataset):
    """White squares of random size on black, labelled small or large."""  # the first line is what `ganctl plugins` and `ganctl data info` show

    class Params(api.Params):  # validates the recipe's data: section (unknown keys are refused)
        count: int = api.Field(256, ge=1, description="How many images.")
        size: int = api.Field(8, ge=4, le=256, description="Image side in pixels.")
        seed: int = api.Field(0, ge=0, description="Seed of the squares' sizes and places.")

    def __init__(self, params: Params) -> None:
        # Randomness from a seed in Params, never the global one: the same parameters give the same data.
        rng = np.random.default_rng(params.seed)
        images = np.zeros((params.count, params.size, params.size, 1), np.uint8)
        labels = np.zeros(params.count, np.int64)
        for index, image in enumerate(images):
            side = int(rng.integers(2, params.size))
            top, left = rng.integers(0, params.size - side + 1, size=2)
            image[top : top + side, left : left + side] = 255
            labels[index] = int(side > params.size // 2)  # class 1: a large square
        # Kept as uint8; ganctl scales each batch from raw_range to [-1, 1].
        super().__init__(images, labels, raw_range=(0, 255), num_classes=2, class_names=("small", "large"))


@api.hookimpl
def register_datasets(register):
    register("squares", Squares)
