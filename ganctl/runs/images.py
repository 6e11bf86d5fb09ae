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


MAX_CLASS_COLUMNS = 16  # more classes than this: one square grid, in drawing order


def class_blocks(labels: np.ndarray | None) -> tuple[list[np.ndarray], int] | None:
    """The images of each class (indices, in drawing order) and how many sit side by side per row.

    None when the batch is not laid out by class: no labels, a single class (``--label``), or
    more classes than ``MAX_CLASS_COLUMNS``. Otherwise each class gets a block of ``width``
    columns, ``width`` chosen so the whole grid is as square as possible (1 for many classes:
    one column per class; 4 for 2 classes and 64 images: 8 x 8).
    """
    if labels is None:
        return None
    labels = np.asarray(labels).reshape(-1)
    classes = np.unique(labels)
    if not 1 < len(classes) <= MAX_CLASS_COLUMNS:
        return None
    members = [np.flatnonzero(labels == k) for k in classes]
    most = max(len(m) for m in members)

    def squareness(width: int) -> float:
        return abs(math.log(len(classes) * width / math.ceil(most / width)))

    return members, min(range(1, most + 1), key=squareness)


def grid(images: np.ndarray, labels: np.ndarray | None = None, padding: int = 2,
         min_cell: int = 32) -> np.ndarray:
    """Tile ``[N, H, W, C]`` images in ``[-1, 1]`` into one uint8 image: the one layout of every grid.

    With ``labels`` of several classes (a conditional model's samples), each class has its own
    block of columns, read top to bottom, and a wider gap separates the classes when a block is
    more than one column wide (see ``class_blocks``). Otherwise the images fill a square-ish grid
    row by row. Small images are enlarged by a whole factor (nearest neighbour) to at least
    ``min_cell`` pixels, so 8x8 digits stay legible.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"expected a non-empty [N, H, W, C] batch, got shape {list(images.shape)}")
    n, h, w, c = images.shape
    if labels is not None and len(labels) != n:
        raise ValueError(f"got {len(labels)} labels for {n} images")
    factor = max(1, math.ceil(min_cell / max(h, w)))
    pixels = to_uint8(images)
    if factor > 1:
        pixels = pixels.repeat(factor, axis=1).repeat(factor, axis=2)
        h, w = h * factor, w * factor
    blocks = class_blocks(labels)
    if blocks is None:  # one block as wide as the grid, filled row by row
        members, width = [np.arange(n)], math.ceil(math.sqrt(n))
    else:
        members, width = blocks
    gap = w // 4 if len(members) > 1 and width > 1 else 0  # between the blocks of two classes
    cells = [(i, j // width, k, j % width) for k, found in enumerate(members) for j, i in enumerate(found)]
    rows = max(row for _, row, _, _ in cells) + 1
    block_width = width * (w + padding) + gap
    canvas = np.zeros((rows * (h + padding) + padding, len(members) * block_width - gap + padding, c), np.uint8)
    for i, row, block, col in cells:
        y, x = padding + row * (h + padding), padding + block * block_width + col * (w + padding)
        canvas[y : y + h, x : x + w] = pixels[i]
    return canvas


def pairs_grid(originals: np.ndarray, reconstructions: np.ndarray, per_row: int = 4, padding: int = 2,
               min_cell: int = 32) -> np.ndarray:
    """Images beside their reconstructions, as one uint8 image: each pair is two cells side by
    side (the original left), ``per_row`` pairs to a row filled row by row, a wider gap (a
    quarter of a cell) between pairs. Cells are enlarged as in :func:`grid`."""
    originals, reconstructions = np.asarray(originals), np.asarray(reconstructions)
    if originals.ndim != 4 or originals.shape[0] == 0 or originals.shape != reconstructions.shape:
        raise ValueError(f"expected two non-empty [N, H, W, C] batches of one shape, got "
                         f"{list(originals.shape)} and {list(reconstructions.shape)}")
    n, h, w, c = originals.shape
    factor = max(1, math.ceil(min_cell / max(h, w)))
    pixels = [to_uint8(x).repeat(factor, axis=1).repeat(factor, axis=2) for x in (originals, reconstructions)]
    h, w = h * factor, w * factor
    gap, columns = w // 4, min(n, per_row)
    pair_width = 2 * (w + padding) + gap
    rows = math.ceil(n / per_row)
    canvas = np.zeros((rows * (h + padding) + padding, columns * pair_width - gap + padding, c), np.uint8)
    for i in range(n):
        row, column = divmod(i, per_row)
        y, x = padding + row * (h + padding), padding + column * pair_width
        canvas[y : y + h, x : x + w] = pixels[0][i]
        canvas[y : y + h, x + w + padding : x + 2 * w + padding] = pixels[1][i]
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
