"""Mixed precision (``train.precision``): the Keras dtype policy a session's model is built under,
and the check that the backend and device can compute in it.

A layer takes the global dtype policy when it is made, so the policy is set only while the model
is built and is float32 again afterwards: sessions opened one after the other in a process (tests,
``ganctl evaluate`` of a mixed-precision run) never inherit one. Loss scaling for float16 lives in
the player's optimizer (``session/optimizers.py``) and in each engine's step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ganctl.errors import ConfigError

FLOAT32 = "float32"

_COMPUTE = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16", "bfloat16": "bfloat16", FLOAT32: FLOAT32}
"""The dtype each precision computes in."""

_probed: dict[tuple[str, str], str | None] = {}


def compute_dtype(precision: str) -> str:
    """The dtype layers compute in under ``precision``."""
    return _COMPUTE[precision]


def loss_scaled(precision: str) -> bool:
    """Whether ``precision`` needs loss scaling (float16's narrow range: mixed_float16)."""
    return compute_dtype(precision) == "float16"


@contextlib.contextmanager
def policy(precision: str) -> Iterator[None]:
    """Layers made inside get ``precision``'s dtype policy; float32 is the global policy again after."""
    import keras

    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(FLOAT32)


def check_precision(precision: str, backend: str, source: str) -> None:
    """Refuse, before any model or file exists, a precision the backend cannot compute in on this
    device: a small convolution, transposed convolution and dense layer are run forward and
    differentiated in its dtype (once per process)."""
    if precision == FLOAT32:
        return
    key = (backend, precision)
    if key not in _probed:
        _probed[key] = _probe(precision)
    problem = _probed[key]
    if problem is None:
        return
    from ganctl.engine import engine_for

    device = "a GPU" if engine_for(backend).accelerated() else "the CPU"
    other = "mixed_bfloat16" if compute_dtype(precision) == "float16" else "float32"
    raise ConfigError(
        f"{source}: train.precision is {precision}, but the {backend} backend cannot compute in "
        f"{compute_dtype(precision)} on {device} here ({problem}). Set train.precision: {other} "
        f"(or remove it for float32), or use another backend (--backend)."
    )


def _probe(precision: str) -> str | None:
    """None when a tiny network runs and differentiates under ``precision``; else what failed."""
    import keras
    import numpy as np

    from ganctl.api import input_gradient

    ops = keras.ops
    try:
        with policy(precision):  # named layers: probing must not move Keras's automatic names
            layers = [
                keras.layers.Conv2D(4, 3, padding="same", name="ganctl_precision_probe_conv"),
                keras.layers.Conv2DTranspose(4, 4, strides=2, padding="same", name="ganctl_precision_probe_up"),
                keras.layers.Flatten(name="ganctl_precision_probe_flat"),
                keras.layers.Dense(1, name="ganctl_precision_probe_dense"),
            ]

        def forward(x: Any) -> Any:
            for layer in layers:
                x = layer(x)
            return ops.cast(x, FLOAT32)

        x = ops.convert_to_tensor(np.linspace(-1, 1, 2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3))
        gradient = np.asarray(ops.convert_to_numpy(ops.cast(input_gradient(forward, x), FLOAT32)))
    except Exception as exc:  # the framework's own words say what is missing
        text = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {text[0][:200] if text else 'no message'}"
    if not np.all(np.isfinite(gradient)):
        return "a small network's gradient was not finite"
    return None

