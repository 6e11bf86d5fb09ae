"""A third-party plugin, exactly as one on PyPI would be written: it imports only ganctl.api."""

import numpy as np

from ganctl import api


class Squares(api.ArrayDataset):
    """White squares of random size on black."""

    class Params(api.Params):
        count: int = api.Field(32, ge=1, description="How many images.")
        size: int = api.Field(16, ge=4, description="Image side in pixels.")

    def __init__(self, params: Params) -> None:
        rng = np.random.default_rng(0)
        images = np.zeros((params.count, params.size, params.size, 1), np.uint8)
        for image in images:
            side = int(rng.integers(2, params.size))
            top, left = rng.integers(0, params.size - side + 1, size=2)
            image[top : top + side, left : left + side] = 255
        super().__init__(images, raw_range=(0, 255))


@api.hookimpl
def register_datasets(register):
    register("hello-squares", Squares)
