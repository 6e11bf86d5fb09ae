"""JAX engine."""

from __future__ import annotations

import jax


def framework_version() -> str:
    return jax.__version__


def devices() -> list[str]:
    """Devices JAX can run on, e.g. ``['cpu:0']`` or ``['cuda:0 (NVIDIA H200)']``."""
    out = []
    for device in jax.devices():
        kind = getattr(device, "device_kind", "")
        label = f"{device.platform}:{device.id}"
        out.append(f"{label} ({kind})" if kind and device.platform != "cpu" else label)
    return out
