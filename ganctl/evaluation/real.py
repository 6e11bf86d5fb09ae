"""The real images of an evaluation, and the cache of their features.

``n`` real images are chosen from a dataset section with a seed. Their features are cached per
(data section, n, seed, extractor identity) in ganctl's cache folder under ``features/``
(:func:`ganctl.fsutil.cache_dir`; ``GANCTL_CACHE_DIR`` empty turns it off): evaluating many runs
on the same data extracts the real images once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ganctl import api
from ganctl.errors import ConfigError
from ganctl.evaluation.extractors import Extractor
from ganctl.fsutil import atomic_write, cache_dir
from ganctl.plugins import PluginHost
from ganctl.recipe.load import validate_section

REAL_STREAM = 0x7EA1
"""Separates the choice of real images from every other use of the seed (mixed into the RNG's seed)."""


@dataclass
class RealData:
    """``n`` real images chosen from a dataset section with a seed, and where they came from."""

    section: dict[str, Any]
    n: int
    seed: int
    dataset: api.Dataset | None = None
    images: np.ndarray | None = None
    labels: np.ndarray | None = None
    subset: tuple[str, np.ndarray] | None = None
    """``(name, indices)``: draw only from these examples of the dataset (the floor's reference half)."""
    _features: dict[str, api.Features] = field(default_factory=dict)

    @property
    def described(self) -> dict[str, Any]:
        """The data section, and the subset drawn from when there is one (for protocols)."""
        return self.section if self.subset is None else {**self.section, "subset": self.subset[0]}

    def key(self, extractor: Extractor) -> str:
        text = json.dumps({"data": self.described, "n": self.n, "seed": self.seed,
                           "extractor": extractor.identity}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def features(self, extractor: Extractor, host: PluginHost, use_cache: bool = True) -> tuple[api.Features, bool]:
        """The real features through ``extractor``, and whether they came from the cache."""
        key = self.key(extractor)
        if key in self._features:
            return self._features[key], True
        folder = cache_dir("features") if use_cache else None
        path = None if folder is None else folder / f"{key}.npz"
        if path is not None and path.is_file():
            try:
                with np.load(path) as archive:
                    found = api.Features(archive["features"],
                                         archive["probabilities"] if "probabilities" in archive.files else None)
                self._features[key] = found
                return found, True
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache entry: compute it again
        features = extractor(self.load(host))
        self._features[key] = features
        if path is not None:
            arrays = {"features": features.features}
            if features.probabilities is not None:
                arrays["probabilities"] = features.probabilities
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(path, lambda handle: np.savez(handle, **arrays))
            except (OSError, ConfigError):  # atomic_write says ConfigError for an unwritable folder
                pass  # caching is an optimisation; an unwritable cache must not fail an evaluation
        return features, False

    def pool(self, host: PluginHost) -> np.ndarray:
        """The indices of the dataset's examples the images are drawn from (loads the dataset)."""
        if self.dataset is None:
            from ganctl.session.data import build_dataset

            self.dataset = build_dataset(validate_section(self.section, "datasets", host, source="the real data"),
                                         host)
        return np.arange(len(self.dataset)) if self.subset is None else self.subset[1]

    def load(self, host: PluginHost) -> np.ndarray:
        """The ``n`` real images (chosen and read on first use)."""
        if self.images is None:
            pool = self.pool(host)
            dataset = self.dataset
            assert dataset is not None
            if self.n > len(pool):
                raise ConfigError(
                    f"--n {self.n} is more than the {len(pool)} real images of {self.section['plugin']} "
                    f"({json.dumps(self.described)}); use --n {len(pool)} or less."
                )
            chosen = np.random.default_rng([self.seed, REAL_STREAM]).permutation(pool)[: self.n]
            batch = dataset.take(np.sort(chosen))
            self.images, self.labels = batch.images, batch.labels
        return self.images
