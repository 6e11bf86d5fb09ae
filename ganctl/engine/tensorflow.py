"""TensorFlow engine."""

from __future__ import annotations

import tensorflow as tf


def framework_version() -> str:
    return tf.__version__


def devices() -> list[str]:
    """Devices TensorFlow can run on, e.g. ``['cpu:0', 'gpu:0']``."""
    out = []
    for kind in ("CPU", "GPU"):
        for index, _ in enumerate(tf.config.list_physical_devices(kind)):
            out.append(f"{kind.lower()}:{index}")
    return out
