"""The `mean-gap` metric: Distance between the means of real and generated features."""

import numpy as np

from ganctl import api


class MeanGap(api.Metric):
    """Distance between the means of real and generated features."""  # the first line is what `ganctl plugins` shows

    lower_is_better = True
    distance = True  # 0 when the two sets are alike, so `ganctl evaluate --floor` can show its ratio

    class Params(api.Params):  # validates the recipe's metrics: entry (besides plugin, every, n, features)
        normalise: bool = api.Field(True, description="Divide by the real features' mean standard deviation.")

    def compute(self, real, fake, *, fake_labels, seed):
        # real and fake are api.Features: float32 [n, D] features from the feature extractor.
        gap = float(np.linalg.norm(real.features.mean(axis=0) - fake.features.mean(axis=0)))
        spread = float(real.features.std(axis=0).mean()) if self.params.normalise else 1.0
        return {"mean_gap": gap / max(spread, 1e-12), "spread": spread}  # the first key is the headline


@api.hookimpl
def register_metrics(register):
    register("mean-gap", MeanGap)
