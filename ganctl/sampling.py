"""How latents and labels are drawn for sampling: one definition for every path.

``ganctl generate`` on a run directory and on its ONNX export draw the same latents for the same
seed, so both give the same images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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
