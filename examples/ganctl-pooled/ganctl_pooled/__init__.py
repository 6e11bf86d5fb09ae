"""The `pooled` feature extractor: Average-pooled pixels as features."""

import hashlib

import numpy as np

from ganctl import api


class Pooled(api.FeatureExtractor):
    """Average-pooled pixels as features."""  # the first line is what `ganctl plugins` shows

    class Params(api.Params):  # validates the features: section of a metric
        pool: int = api.Field(2, ge=1, description="Side of the squares averaged into one feature.")

    def prepare(self, spec):
        if spec.height % self.params.pool or spec.width % self.params.pool:
            raise api.ConfigError(f"the pooled extractor's pool ({self.params.pool}) must divide the image's "
                                  f"height and width ({spec.height}x{spec.width}); set features: {{plugin: pooled, "
                                  "pool: N}} with N dividing both.")

    def identity(self):
        # No weights: the sha256 of a description of the computation identifies these features.
        how = f"average pooling {self.params.pool}x{self.params.pool}, flattened"
        return {"name": "pooled", "sha256": hashlib.sha256(how.encode()).hexdigest(), "input": how}

    def extract(self, images):
        # images: float32 [B, H, W, C] in [-1, 1]; each image's features depend on it alone.
        b, h, w, c = images.shape
        p = self.params.pool
        pooled = images.reshape(b, h // p, p, w // p, p, c).mean(axis=(2, 4))
        return api.Features(pooled.reshape(b, -1).astype(np.float32))


@api.hookimpl
def register_feature_extractors(register):
    register("pooled", Pooled)
