"""Image grids: turn a batch of ``[-1, 1]`` NHWC images into one PNG."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ganctl.errors import ConfigError
from ganctl.fsutil import atomic_write


def to_uint8(images: np.ndarray) -> np.ndarray:
    """``[-1, 1]`` floats to ``[0, 255]`` uint8, clipping anything outside."""
    return np.clip(np.rint((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def grid(images: np.ndarray, columns: int | None = None, padding: int = 2, min_cell: int = 32) -> np.ndarray:
    """Tile ``[N, H, W, C]`` images in ``[-1, 1]`` into one uint8 ``[rows*h, cols*w, C]`` image.

    Small images are enlarged by a whole factor (nearest neighbour) to at least ``min_cell``
    pixels, so 8x8 digits stay legible.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"expected a non-empty [N, H, W, C] batch, got shape {list(images.shape)}")
    n, h, w, c = images.shape
    factor = max(1, math.ceil(min_cell / max(h, w)))
    pixels = to_uint8(images)
    if factor > 1:
        pixels = pixels.repeat(factor, axis=1).repeat(factor, axis=2)
        h, w = h * factor, w * factor
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    canvas = np.zeros((rows * (h + padding) + padding, columns * (w + padding) + padding, c), np.uint8)
    for i in range(n):
        r, col = divmod(i, columns)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        canvas[y : y + h, x : x + w] = pixels[i]
    return canvas


def save_png(pixels: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 ``[H, W, C]`` image as PNG, atomically."""
    import io

    from PIL import Image

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ConfigError(f"{path}: the image file must end in .png.")
    buffer = io.BytesIO()
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(buffer, format="PNG")
    return atomic_write(path, buffer.getvalue())
