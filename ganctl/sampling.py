"""How latents and labels are drawn for sampling: one definition for every path.

``ganctl generate`` on a run directory and on its ONNX export draw the same latents for the same
seed, so both give the same images.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

BATCH = 256
"""How many examples one forward pass takes when ganctl generates or classifies many."""


def latents(seed: int | Sequence[int], n: int, dim: int) -> np.ndarray:
    """Standard-normal latents, float32 ``[n, dim]``, from NumPy's PCG64 seeded with ``seed``."""
    return np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)


def sample_labels(n: int, num_classes: int, label: int | None = None, dtype: type = np.int32) -> np.ndarray | None:
    """``label`` repeated, or the classes in turn (0, 1, ..., K-1, 0, ...); None when unlabelled."""
    if not num_classes:
        return None
    if label is not None:
        return np.full(n, label, dtype=dtype)
    return np.arange(n, dtype=dtype) % dtype(num_classes)


def inputs(seed: int | Sequence[int], n: int, latent_dim: int, num_classes: int = 0, label: int | None = None,
           label_dtype: type = np.int32) -> tuple[np.ndarray, np.ndarray | None]:
    """A generator's inputs for ``n`` examples: latents from ``seed`` and, when ``num_classes``
    (pass 0 for an unconditional generator), labels: ``label`` repeated or the classes in turn."""
    return latents(seed, n, latent_dim), sample_labels(n, num_classes, label, label_dtype)


def step_latents(seed: int, step: int, n: int, dim: int) -> Iterator[np.ndarray]:
    """The latents of training step ``step`` (0-based, global): a fresh float32 ``[n, max(dim, 1)]``
    array for each player update in turn, from NumPy's PCG64 seeded with ``[seed, step]``, so that
    a resumed run draws what an uninterrupted one would."""
    rng = np.random.default_rng([seed, step])
    while True:
        yield rng.standard_normal((n, max(dim, 1)), dtype=np.float32)
