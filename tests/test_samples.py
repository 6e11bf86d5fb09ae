"""Sample grids (one layout for training and `ganctl generate`) and `--label` by class name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganctl.cli import app
from ganctl.plugins import set_host
from ganctl.runs.images import MAX_CLASS_COLUMNS, class_blocks, grid
from ganctl.sampling import sample_labels

from . import onnx_models

CELL = 32 + 2  # an 8x8 image is enlarged 4x to 32 pixels, plus the padding


def _by_class(n: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 8x8 images drawn as `ganctl generate` draws them, each filled with its label's grey."""
    labels = sample_labels(n, num_classes)
    images = (labels / max(num_classes - 1, 1) * 1.6 - 0.8)[:, None, None, None] * np.ones((n, 8, 8, 1))
    return images.astype(np.float32), labels


def _cell(canvas: np.ndarray, row: int, x: int) -> int:
    """The grey of the cell at ``row`` whose left edge is at pixel ``x``."""
    return int(canvas[2 + row * CELL + 16, x + 16, 0])


def test_many_classes_get_one_column_each():
    images, labels = _by_class(64, 10)
    canvas = grid(images, labels)
    assert canvas.shape[:2] == (7 * CELL + 2, 10 * CELL + 2)  # 10 columns, 7 rows: 64 = 4 x 7 + 6 x 6
    for k in range(10):
        grey = _cell(canvas, 0, 2 + k * CELL)
        rows = 7 if k < 4 else 6
        assert [_cell(canvas, r, 2 + k * CELL) for r in range(rows)] == [grey] * rows
        assert rows == 7 or _cell(canvas, 6, 2 + k * CELL) == 0  # nothing below a shorter class
    assert len({_cell(canvas, 0, 2 + k * CELL) for k in range(10)}) == 10


def test_two_classes_sit_side_by_side_in_a_square_grid():
    images, labels = _by_class(64, 2)
    members, width = class_blocks(labels)
    assert width == 4 and [len(m) for m in members] == [32, 32]
    canvas = grid(images, labels)
    gap = 32 // 4
    assert canvas.shape[:2] == (8 * CELL + 2, 8 * CELL + 2 + gap)  # 8 x 8, not 32 rows of 2
    left = {_cell(canvas, r, 2 + c * CELL) for r in range(8) for c in range(4)}
    right = {_cell(canvas, r, 2 + 4 * CELL + gap + c * CELL) for r in range(8) for c in range(4)}
    assert len(left) == 1 and len(right) == 1 and left != right


@pytest.mark.parametrize("labels", [None, np.full(64, 3), sample_labels(64, MAX_CLASS_COLUMNS + 1)],
                         ids=["unconditional", "one label", "too many classes"])
def test_otherwise_a_square_grid_in_drawing_order(labels):
    images = np.linspace(-1, 1, 64, dtype=np.float32)[:, None, None, None] * np.ones((64, 8, 8, 1), np.float32)
    canvas = grid(images, labels)
    assert canvas.shape[:2] == (8 * CELL + 2, 8 * CELL + 2)
    np.testing.assert_array_equal(canvas, grid(images))
    assert _cell(canvas, 0, 2 + CELL) > _cell(canvas, 0, 2) and _cell(canvas, 1, 2) > _cell(canvas, 0, 7 * CELL + 2)


# -- a conditional run on two named classes -------------------------------------------------------


@pytest.fixture(scope="module")
def two_classes(tmp_path_factory) -> Path:
    """A conditional dcgan trained for one epoch (2 steps) on 64 images in two class folders."""
    from typer.testing import CliRunner

    folder = tmp_path_factory.mktemp("two")
    rng = np.random.default_rng(0)
    for index, name in enumerate(["cat", "dog"]):
        (folder / "data" / name).mkdir(parents=True)
        for i in range(32):
            pixels = rng.integers(0, 128, (8, 8), dtype=np.uint8) + 127 * index
            Image.fromarray(pixels).save(folder / "data" / name / f"{i}.png")
    recipe = folder / "r.yaml"
    recipe.write_text(
        f"name: two\nseed: 1\ndata: {{plugin: image-folder, path: {folder / 'data'}, size: 8, channels: 1}}\n"
        "model: {plugin: dcgan, latent_dim: 8, filters: 8, conditional: true}\n"
        "train: {epochs: 1, batch_size: 32}\n"
    )
    set_host(None)
    result = CliRunner().invoke(app, ["train", str(recipe), "--out", str(folder / "run"), "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads((folder / "run" / "run.json").read_text())["data_spec"]["class_names"] == ["cat", "dog"]
    return folder / "run"


def test_training_samples_use_the_class_layout(two_classes):
    final = np.asarray(Image.open(two_classes / "samples" / "final.png"))
    assert final.shape[:2] == grid(*_by_class(64, 2)).shape[:2]  # 8 x 8 with a gap, not 32 rows of 2


def test_generate_png_is_the_grid_of_its_images_by_class(runner, two_classes, tmp_path):
    for suffix in ("npz", "png"):
        out = tmp_path / f"s.{suffix}"
        result = runner.invoke(app, ["generate", str(two_classes), "-n", "20", "--seed", "4", "--out", str(out)])
        assert result.exit_code == 0, result.output
    with np.load(tmp_path / "s.npz") as data:
        expected = grid(data["images"], data["labels"])
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "s.png")), expected[..., 0])


def test_generate_label_by_class_name(runner, two_classes, tmp_path):
    out = tmp_path / "dog.npz"
    result = runner.invoke(app, ["generate", str(two_classes), "-n", "3", "--label", "dog", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with np.load(out) as data:
        assert list(data["labels"]) == [1, 1, 1]
    result = runner.invoke(app, ["generate", str(two_classes), "--label", "cow", "--out", str(out)])
    assert result.exit_code == 2
    assert ("--label 'cow' is not a class of this model: use a class index from 0 to 1 or one of its class names: "
            "cat, dog.") in result.stderr


def test_onnx_label_by_class_name(runner, tmp_path):
    model = onnx_models.generator(tmp_path / "cond.onnx", latent_dim=4, num_classes=3, shape=(2, 3, 1))
    out = tmp_path / "o.npz"
    result = runner.invoke(app, ["generate", str(model), "-n", "4", "--label", "class2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with np.load(out) as data:
        assert list(data["labels"]) == [2, 2, 2, 2]
    result = runner.invoke(app, ["generate", str(model), "--label", "class9", "--out", str(out)])
    assert result.exit_code == 2 and "class names: class0, class1, class2." in result.stderr
    result = runner.invoke(app, ["generate", str(model), "--label", "5", "--out", str(out)])
    assert result.exit_code == 2
    assert "--label 5 is outside the classes of this model: use 0 to 2. Class names work too" in result.stderr


def test_label_name_without_recorded_names():
    from ganctl.errors import ConfigError
    from ganctl.runs.trained import check_label

    assert check_label("1", True, 3) == 1 and check_label(None, True, 3) is None
    with pytest.raises(ConfigError, match="is not a class index, and this model records no class names: use 0 to 2"):
        check_label("dog", True, 3)
