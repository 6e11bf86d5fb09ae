"""The values of ``train.precision`` (mixed precision) and the message for any other."""

from __future__ import annotations

from typing import Any, Literal

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "bfloat16")
"""The values of ``train.precision``: Keras dtype policies (mixed_*: 16-bit compute, float32 weights)."""

Precision = Literal["float32", "mixed_bfloat16", "mixed_float16", "bfloat16"]

_PRECISION_HINTS = {
    "float16": "pure float16 (no float32 weights) loses small updates and has no loss scaling: use mixed_float16",
    "mixed_float32": "use float32", "fp32": "use float32", "float": "use float32",
    "fp16": "use mixed_float16", "half": "use mixed_float16", "mixed": "use mixed_bfloat16 or mixed_float16",
    "bf16": "use mixed_bfloat16 (float32 weights) or bfloat16 (bfloat16 weights)",
}


def check_precision_name(value: Any) -> Any:
    """``train.precision`` as given, or a ValueError that says which value to use instead."""
    if value in PRECISIONS:
        return value
    text = str(value).strip().lower().replace("-", "_")
    hint = _PRECISION_HINTS.get(text) or (
        f"use {text}" if text in PRECISIONS else
        "use mixed_bfloat16 on CPUs and recent GPUs, mixed_float16 on older GPUs, or float32")
    raise ValueError(f"train.precision is {value!r}, not one of {', '.join(PRECISIONS)}; {hint}")
