"""The ``pixels`` feature extractor: images flattened, for tiny images and tests."""

from __future__ import annotations

import hashlib

import numpy as np

from ganctl import api


class Pixels(api.FeatureExtractor):
    """Raw pixels, flattened (optionally average-pooled first): no network, no weights."""

    default = True  # what metrics look through when no extractor is named

    class Params(api.Params):
        pool: int = api.Field(1, ge=1, le=64, description="Average-pool by this factor before flattening.")

    def prepare(self, spec: api.DataSpec) -> None:
        pool = self.params.pool
        if spec.height % pool or spec.width % pool:
            raise api.ConfigError(
                f"pixels: pool {pool} does not divide the image size {spec.height}x{spec.width}; "
                "use a pool that divides both (or 1)."
            )

    def identity(self) -> dict[str, str]:
        recipe = f"pixels/pool={self.params.pool}/flatten-NHWC/float32"
        return {"name": "pixels", "sha256": hashlib.sha256(recipe.encode()).hexdigest(),
                "input": f"images in [-1, 1], average-pooled {self.params.pool}x{self.params.pool}, flattened"}

    def extract(self, images: np.ndarray) -> api.Features:
        pool = self.params.pool
        if pool > 1:
            b, h, w, c = images.shape
            images = images.reshape(b, h // pool, pool, w // pool, pool, c).mean(axis=(2, 4))
        return api.Features(np.ascontiguousarray(images.reshape(len(images), -1), dtype=np.float32))
