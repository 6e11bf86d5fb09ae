"""PyTorch engine."""

from __future__ import annotations

import torch


def framework_version() -> str:
    return torch.__version__


def devices() -> list[str]:
    """Devices PyTorch can run on: the CPU, and each CUDA device with its name."""
    out = ["cpu:0"]
    if torch.cuda.is_available():
        out += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    return out
