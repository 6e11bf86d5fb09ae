"""The ``image-folder`` dataset: a folder of image files, optionally one sub-folder per class.

Two layouts are accepted:

* **labelled**: ``root/<class>/**/<image>``. Each sub-folder of the root that holds images
  (searched recursively) is a class; classes are numbered in the sorted order of the folder
  names, which become the class names. Sub-folders without any image are ignored.
* **unlabelled**: ``root/<image>``, the images directly in the root and no class folders.

Files ending in .png, .jpg, .jpeg, .bmp, .webp or .gif (any case) are read; for GIFs only the
first frame. Hidden files and folders (names starting with ".") are skipped. Files are read in
sorted path order, so ``limit`` and batching are deterministic.

Each image is turned upright by its EXIF orientation, composited onto black if it has
transparency, converted to grayscale ('L') or RGB, and resized with Lanczos resampling (sharp
when shrinking, which is the usual case): ``fit: crop`` scales the image to cover the target and
cuts the centre, ``stretch`` resizes ignoring the aspect ratio, ``pad`` scales it to fit inside
and letterboxes on black. Images are stored as uint8. Relative paths are resolved against the
current working directory; ``~`` and ``$VARS`` are expanded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np

from ganctl import api

from ._common import LIMIT_DESCRIPTION, resolve_path

if TYPE_CHECKING:
    from PIL import Image

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif")

_Side = Annotated[int, api.Field(ge=1)]


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(EXTENSIONS)


def _images_under(folder: Path) -> list[Path]:
    """Every image file below ``folder`` (recursively, skipping hidden entries), sorted."""
    found = []
    for parent, dirs, files in os.walk(folder):
        dirs[:] = [name for name in dirs if not name.startswith(".")]
        found += [Path(parent) / name for name in files if _is_image(name)]
    return sorted(found)


def _scan(root: Path) -> tuple[list[Path], list[int] | None, list[str]]:
    """The image files of ``root``, their class indices (None if unlabelled), the class names."""
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise api.DataError(
            f"the image folder {root} {what}: point `path:` at a folder of images (relative "
            "paths start from the current directory)."
        )
    with os.scandir(root) as scan:
        entries = sorted(
            (entry for entry in scan if not entry.name.startswith(".")), key=lambda e: e.name
        )
    direct = [Path(entry.path) for entry in entries if entry.is_file() and _is_image(entry.name)]
    classes = []
    for entry in entries:
        if entry.is_dir():
            files = _images_under(Path(entry.path))
            if files:
                classes.append((entry.name, files))

    if direct and classes:
        raise api.DataError(
            f"the image folder {root} holds both images ({direct[0].name}, ...) and class "
            f"folders ({classes[0][0]}/, ...). Use one of the two layouts: all images directly in "
            "the folder (unlabelled), or one sub-folder per class with the images inside "
            "(labelled); move the loose images into a class folder or elsewhere."
        )
    if classes:
        paths = [path for _, files in classes for path in files]
        labels = [index for index, (_, files) in enumerate(classes) for _ in files]
        return paths, labels, [name for name, _ in classes]
    if direct:
        return direct, None, []
    raise api.DataError(
        f"no images found in {root} (looked for files ending in {', '.join(EXTENSIONS)}, directly "
        "in it or in class sub-folders, skipping hidden ones)."
    )


def _to_mode(image: Image.Image, mode: str) -> Image.Image:
    """Convert to 'L' or 'RGB': transparency over black, 16-bit grayscale scaled to 8 bits."""
    from PIL import Image

    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        pixels = np.asarray(image).astype(np.int64) >> 8
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L")
    elif "A" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    return image.convert(mode)


def _resize(image: Image.Image, height: int, width: int, fit: str) -> Image.Image:
    from PIL import Image

    resample = Image.Resampling.LANCZOS
    src_w, src_h = image.size
    if fit == "stretch":
        return image.resize((width, height), resample)
    if fit == "crop":
        # The largest centred box of the target's aspect ratio, resized in one step.
        scale = min(src_w / width, src_h / height)
        box_w, box_h = width * scale, height * scale
        left, top = (src_w - box_w) / 2, (src_h - box_h) / 2
        return image.resize((width, height), resample, box=(left, top, left + box_w, top + box_h))
    # pad: fit inside, centre on black.
    scale = min(width / src_w, height / src_h)
    new_w = max(1, min(width, round(src_w * scale)))
    new_h = max(1, min(height, round(src_h * scale)))
    canvas = Image.new(image.mode, (width, height))  # zeros: black
    canvas.paste(
        image.resize((new_w, new_h), resample), ((width - new_w) // 2, (height - new_h) // 2)
    )
    return canvas


def _load(path: Path, height: int, width: int, channels: int, fit: str) -> np.ndarray:
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            image.seek(0)  # first frame of animations
            image.load()
            image = ImageOps.exif_transpose(image)
            image = _to_mode(image, "L" if channels == 1 else "RGB")
    except Exception as error:  # noqa: BLE001 - Pillow raises many kinds of error on bad files
        raise api.DataError(
            f"the image {path} cannot be read ({type(error).__name__}: {error}): remove or "
            "replace the file."
        ) from None
    pixels = np.asarray(_resize(image, height, width, fit), dtype=np.uint8)
    return pixels.reshape(height, width, channels)


class ImageFolder(api.ArrayDataset):
    """A folder of PNG/JPEG/... images, optionally one sub-folder per class."""

    class Params(api.Params):
        path: str = api.PathField(
            ...,
            description=(
                "The root folder: images directly in it (unlabelled), or one sub-folder of "
                "images per class (labelled). Relative to the current directory."
            ),
        )
        size: _Side | tuple[_Side, _Side] = api.Field(
            64, description="Target size: one number for square images, or [height, width]."
        )
        channels: Literal[1, 3] = api.Field(3, description="1 for grayscale, 3 for RGB.")
        fit: Literal["crop", "stretch", "pad"] = api.Field(
            "crop",
            description=(
                "How to reach the target size: 'crop' scales to cover it and cuts the centre, "
                "'stretch' ignores the aspect ratio, 'pad' scales to fit and letterboxes on black."
            ),
        )
        limit: int | None = api.Field(None, ge=1, description=LIMIT_DESCRIPTION)

    def __init__(self, params: Params) -> None:
        root = resolve_path(params.path)
        paths, labels, class_names = _scan(root)
        height, width = (params.size, params.size) if isinstance(params.size, int) else params.size

        if params.limit is not None:  # decode only the images that are kept
            paths = paths[: params.limit]
            labels = None if labels is None else labels[: params.limit]
        images = np.empty((len(paths), height, width, params.channels), dtype=np.uint8)
        for index, path in enumerate(paths):
            images[index] = _load(path, height, width, params.channels, params.fit)

        super().__init__(
            images,
            None if labels is None else np.asarray(labels, dtype=np.int64),
            raw_range=(0, 255),
            num_classes=len(class_names) if class_names else None,
            class_names=class_names,
        )
