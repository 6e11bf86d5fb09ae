"""``check_metric``: a metric plugin's contract, on features whose answer is known."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from ganctl import api
from ganctl.testing.host import KitHost, PluginRef, fail


def features(n: int, dim: int = 16, *, classes: int = 10, shift: float = 0.0, seed: int = 0) -> api.Features:
    """``n`` Gaussian feature vectors (mean ``shift``) and class probabilities that follow them;
    with a ``shift``, the probabilities also collapse onto class 0 (a different set in every respect)."""
    rng = np.random.default_rng(seed)
    values = (rng.standard_normal((n, dim)) + shift).astype(np.float32)
    logits = 4.0 * values[:, :classes] if dim >= classes else 4.0 * rng.standard_normal((n, classes))
    if shift:
        logits[:, 0] += 100.0
    logits = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return api.Features(values, probabilities.astype(np.float32))


def check_metric(plugin: PluginRef | None, name: str, params: dict[str, Any] | None = None, *,
                 n: int = 200, dim: int = 16, shift: float = 2.0) -> dict[str, float]:
    """Check the metric ``name``: a set compared with itself scores at the floor (0 for a distance),
    a set compared with one moved by ``shift`` (its class probabilities collapsed onto one class,
    and not the labels asked for) scores worse in the metric's direction, the same
    inputs and seed give the same values, the values are finite floats, and the protocol its
    parameters go into is JSON. Returns the values for the different sets."""
    host = KitHost(*([plugin] if plugin is not None else []))
    host.check_loaded()
    metric = host.build("metrics", name, params)
    protocol = metric.params_for(n)
    if not isinstance(protocol, api.Params):
        raise fail("metric", name, f"params_for(n) returned a {type(protocol).__name__}.",
                   "return self.params, or self.params.model_copy(update={...}) with what is capped at n.")
    try:
        json.dumps(protocol.model_dump(mode="json"))
    except (TypeError, ValueError) as exc:
        raise fail("metric", name, f"its parameters do not serialise to JSON ({exc}), so no protocol can record them.",
                   "use plain types (numbers, strings, lists) in Params.") from None
    real = features(n, dim)
    same = features(n, dim)
    other = features(n, dim, shift=shift, seed=1)
    labels = (np.arange(n) % 10).astype(np.int64)  # not what the (collapsed) probabilities say
    at_floor = _values(metric, name, real, same, np.argmax(same.probabilities, axis=1).astype(np.int64))
    apart = _values(metric, name, real, other, labels)
    if _values(metric, name, real, other, labels) != apart:
        raise fail("metric", name, "the same features and seed gave different values.",
                   "draw any randomness from numpy.random.default_rng(seed), the seed compute() is given.")
    key = next(iter(apart))
    floor, far = at_floor[key], apart[key]
    worse = far > floor if metric.lower_is_better else far < floor
    if not worse:
        direction = "lower" if metric.lower_is_better else "higher"
        raise fail("metric", name, f"'{key}' is {floor:.4g} for identical sets and {far:.4g} for sets {shift} apart, "
                   f"but lower_is_better={metric.lower_is_better} says {direction} is better.",
                   "make the headline (first) value move away from the floor as the sets differ, and set "
                   "lower_is_better to match.")
    if metric.distance and abs(floor) > 0.1 * abs(far) + 1e-6:
        raise fail("metric", name, f"distance = True, but identical sets score {floor:.4g} (sets {shift} apart: "
                   f"{far:.4g}).", "return 0 for identical sets, or do not declare distance = True.")
    return apart


def _values(metric: api.Metric, name: str, real: api.Features, fake: api.Features,
            labels: np.ndarray) -> dict[str, float]:
    real = real if metric.needs_probabilities else api.Features(real.features)
    fake = fake if metric.needs_probabilities else api.Features(fake.features)
    values = metric.compute(real, fake, fake_labels=labels if metric.needs_labels else None, seed=0)
    if not isinstance(values, dict) or not values:
        raise fail("metric", name, f"compute() returned {type(values).__name__} {values!r}.",
                   "return a non-empty dict of names to floats; the first is the headline value.")
    out = {}
    for key, value in values.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not isinstance(key, str) or not math.isfinite(number):
            raise fail("metric", name, f"compute() returned {key!r}: {value!r}.",
                       "return string keys and finite float values.")
        out[key] = number
    return out
