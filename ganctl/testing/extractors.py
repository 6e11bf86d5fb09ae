"""``check_extractor``: a feature extractor's contract, as ganctl's evaluation calls it."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ganctl import api
from ganctl.evaluation.extractors import make_extractor
from ganctl.testing.data import images
from ganctl.testing.host import KitHost, PluginRef, fail


def check_extractor(plugin: PluginRef | None, name: str, params: dict[str, Any] | None = None, *,
                    spec: api.DataSpec | None = None, n: int = 12) -> api.Features:
    """Check the feature extractor ``name`` on images of ``spec`` (default: 8x8 grey): it is built,
    prepared and identified as ganctl does, its features are float32 ``[N, D]``, finite, the same for
    the same images, independent of how images are batched, and different for different images;
    a classifier's probabilities are ``[N, K]`` rows summing to 1. Returns the features."""
    spec = spec or api.DataSpec(height=8, width=8, channels=1)
    host = KitHost(*([plugin] if plugin is not None else []))
    host.check_loaded()
    try:
        extractor = make_extractor(host.host, {"plugin": name, **(params or {})}, spec)
    except api.GanctlError as exc:
        raise fail("feature extractor", name, f"could not be prepared: {exc}",
                   "return at least name and sha256 from identity(), and raise ConfigError in prepare() only "
                   "for images it cannot take.") from None
    try:
        json.dumps(extractor.identity)
    except (TypeError, ValueError):
        raise fail("feature extractor", name, "identity() is not JSON.", "return a dict of strings.") from None
    batch = images(n, spec.shape)
    whole = extractor.plugin.extract(batch)
    if not isinstance(whole, api.Features):
        raise fail("feature extractor", name, f"extract() returned a {type(whole).__name__}.",
                   "return api.Features(features, probabilities or None).")
    values = np.asarray(whole.features)
    if values.dtype != np.float32 or values.ndim != 2 or len(values) != n or not np.all(np.isfinite(values)):
        raise fail("feature extractor", name, f"extract() gave features of dtype {values.dtype}, shape "
                   f"{list(values.shape)} for {n} images.", "return finite float32 features of shape [N, D].")
    if not np.array_equal(np.asarray(extractor.plugin.extract(batch).features), values):
        raise fail("feature extractor", name, "the same images gave different features.",
                   "extract in inference mode, without random augmentation.")
    parts = np.concatenate([np.asarray(extractor.plugin.extract(batch[i : i + 5]).features) for i in range(0, n, 5)])
    if not np.allclose(parts, values, rtol=1e-4, atol=1e-4):
        raise fail("feature extractor", name, "an image's features depend on the other images of its batch.",
                   "compute each image's features on its own (no batch statistics); ganctl batches by batch_size.")
    if np.allclose(values, values[:1]):
        raise fail("feature extractor", name, "every image gave the same features.",
                   "make the features depend on the image.")
    if extractor.plugin.num_classes:
        probabilities = whole.probabilities
        shape = (n, extractor.plugin.num_classes)
        if probabilities is None or np.asarray(probabilities).shape != shape or not np.allclose(
                np.asarray(probabilities).sum(axis=1), 1.0, atol=1e-3):
            raise fail("feature extractor", name, f"num_classes is {shape[1]}, but the probabilities are not "
                       f"{list(shape)} rows summing to 1.", "return softmax probabilities, or set num_classes = 0.")
    elif whole.probabilities is not None:
        raise fail("feature extractor", name, "it returns probabilities but num_classes is 0.",
                   "set num_classes to the number of classes.")
    return whole
