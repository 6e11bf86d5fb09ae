"""Tests of the first-party dataset plugins (plugins/ganctl_datasets).

Every file is written small and fresh in tmp_path; the only outside data is the real
Fashion-MNIST of Debian's ``dataset-fashion-mnist`` package, whose test is skipped when it is
not installed (and fails instead under CI=...).
"""

from __future__ import annotations

import gzip
import importlib.metadata
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pydantic
import pytest
from PIL import Image

import ganctl_datasets
from ganctl import api
from ganctl_datasets import IDX, NPZ, Digits, ImageFolder
from ganctl_datasets import idx as idx_module

from .conftest import require_fashion_mnist

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

# --------------------------------------------------------------------------------------------
# Helpers: writing small real files
# --------------------------------------------------------------------------------------------

IDX_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of ``array`` (dtype one of IDX_CODES' kinds)."""
    code = IDX_CODES[array.dtype.kind + str(array.dtype.itemsize)]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, *, gz: bool | None = None) -> Path:
    """Write ``array`` as an IDX file; gzip-compressed when the name ends in .gz (or gz=True)."""
    data = idx_bytes(array)
    if gz if gz is not None else path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def fake_mnist(
    seed: int, count: int, height: int = 6, width: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct random uint8 images (non-square, to catch H/W mix-ups) and labels 0..9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, height, width), dtype=np.uint8)
    images[:, 0, 0] = np.arange(count)  # every image distinct
    labels = (np.arange(count) % 10).astype(np.uint8)
    return images, labels


def write_idx_folder(folder: Path, *, gz: bool = True, train: int = 20, test: int = 12) -> dict:
    """The four standard MNIST files in ``folder``; returns the arrays written."""
    suffix = ".gz" if gz else ""
    arrays = {}
    for split, prefix, count, seed in (("train", "train", train, 1), ("test", "t10k", test, 2)):
        images, labels = fake_mnist(seed, count)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        arrays[split] = (images, labels)
    return arrays


def write_image(path: Path, color, size=(10, 8), mode: str = "RGB") -> Path:
    """A solid image of ``size`` (width, height) in ``color``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
    return path


def data_error(build, *needles: str) -> str:
    """Run ``build()``, expect a one-paragraph api.DataError that mentions every needle."""
    with pytest.raises(api.DataError) as caught:
        build()
    message = str(caught.value)
    assert "\n" not in message, message
    for needle in needles:
        assert str(needle) in message, f"{needle!r} not in {message!r}"
    return message


def all_images(dataset: api.Dataset) -> np.ndarray:
    return dataset.take(np.arange(len(dataset), dtype=np.int64)).images


# --------------------------------------------------------------------------------------------
# The plugin itself
# --------------------------------------------------------------------------------------------


def test_register_datasets_registers_all_six():
    registered = {}
    ganctl_datasets.register_datasets(lambda name, factory: registered.setdefault(name, factory))
    assert registered == {"digits": Digits, "idx": IDX, "image-folder": ImageFolder, "npz": NPZ,
                          "csv": ganctl_datasets.CSV, "parquet": ganctl_datasets.Parquet}
    for factory in registered.values():
        assert issubclass(factory, api.Dataset)
        assert issubclass(factory.Params, api.Params)
        assert factory.__doc__.strip().splitlines()[0]
        factory.Params.model_json_schema()  # publishable
        for name, field in factory.Params.model_fields.items():
            assert field.description, f"{factory.__name__}.Params.{name} has no description"


def test_entry_point_loads_through_pluggy():
    import pluggy

    from ganctl import hookspecs

    points = importlib.metadata.entry_points(group="ganctl")
    assert "ganctl_datasets" in {point.value for point in points}
    manager = pluggy.PluginManager("ganctl")
    manager.add_hookspecs(hookspecs)
    manager.register(ganctl_datasets)  # validates the hookimpl against its spec
    names = []
    manager.hook.register_datasets(register=lambda name, factory: names.append(name))
    assert names == ["digits", "idx", "image-folder", "npz", "csv", "parquet"]


def test_import_does_not_load_heavy_libraries():
    code = (
        "import sys, ganctl_datasets; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('sklearn', 'PIL', 'keras', 'jax')]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------------------------
# Behaviour shared by every dataset
# --------------------------------------------------------------------------------------------


def build_each(kind: str, tmp_path: Path) -> api.Dataset:
    """A small labelled dataset of each kind, with distinct examples."""
    if kind == "digits":
        return Digits(Digits.Params(limit=50))
    if kind == "idx":
        write_idx_folder(tmp_path / "mnist", train=50)
        return IDX(IDX.Params(path=str(tmp_path / "mnist")))
    if kind == "image-folder":
        for index in range(50):
            color = (index * 5, 255 - index * 5, index % 7 * 30)
            write_image(tmp_path / "imgs" / f"class{index % 3}" / f"{index:02d}.png", color)
        return ImageFolder(ImageFolder.Params(path=str(tmp_path / "imgs"), size=4))
    images, labels = fake_mnist(3, 50)
    np.savez(tmp_path / "data.npz", images=images, labels=labels)
    return NPZ(NPZ.Params(path=str(tmp_path / "data.npz")))


KINDS = ["digits", "idx", "image-folder", "npz"]


@pytest.mark.parametrize("kind", KINDS)
def test_batches_are_float32_in_range_with_int64_labels(kind, tmp_path):
    dataset = build_each(kind, tmp_path)
    assert len(dataset) == 50
    batch = next(dataset.batches(16, seed=0))
    assert batch.images.dtype == np.float32
    assert batch.images.shape == (16, *dataset.spec.shape)
    assert batch.images.min() >= -1.0 and batch.images.max() <= 1.0
    assert batch.labels.dtype == np.int64 and batch.labels.shape == (16,)
    assert dataset.labels.dtype == np.int64
    assert dataset.spec.value_range == (-1.0, 1.0)


@pytest.mark.parametrize("kind", KINDS)
def test_batches_are_deterministic_and_cover_each_example_once(kind, tmp_path):
    dataset = build_each(kind, tmp_path)

    def epoch(seed, number):
        return list(dataset.batches(16, seed=seed, epoch=number, drop_remainder=False))

    first, again = epoch(1, 0), epoch(1, 0)
    assert len(first) == 4  # 16 + 16 + 16 + 2
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.labels, b.labels)
    for other in (epoch(1, 1), epoch(2, 0)):
        assert not np.array_equal(first[0].images, other[0].images)

    seen = np.concatenate([batch.images for batch in first]).reshape(len(dataset), -1)
    expected = all_images(dataset).reshape(len(dataset), -1)
    assert sorted(row.tobytes() for row in seen) == sorted(row.tobytes() for row in expected)


@pytest.mark.parametrize("kind", KINDS)
def test_batch_larger_than_dataset_is_a_config_error(kind, tmp_path):
    dataset = build_each(kind, tmp_path)
    with pytest.raises(api.ConfigError, match="larger than the dataset"):
        next(dataset.batches(51, seed=0))


@pytest.mark.parametrize(
    ("factory", "required"),
    [(Digits, {}), (IDX, {"name": "mnist"}), (ImageFolder, {"path": "x"}), (NPZ, {"path": "x"})],
)
def test_params_reject_unknown_keys_and_bad_limits(factory, required):
    factory.Params(**required, limit=1)
    with pytest.raises(pydantic.ValidationError):
        factory.Params(**required, limit=0)
    with pytest.raises(pydantic.ValidationError):
        factory.Params(**required, bogus=1)


# --------------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------------


def _rows(dataset: api.Dataset) -> list[bytes]:
    images = all_images(dataset).reshape(len(dataset), -1)
    return sorted(row.tobytes() + bytes([label]) for row, label in zip(images, dataset.labels, strict=True))


def test_digits_splits_partition_the_data():
    train = Digits(Digits.Params())
    test = Digits(Digits.Params(split="test"))
    everything = Digits(Digits.Params(split="all"))
    assert (len(train), len(test), len(everything)) == (1437, 360, 1797)
    # Train and test together are exactly all examples: disjoint, nothing lost.
    assert sorted(_rows(train) + _rows(test)) == _rows(everything)
    # Stratified: every class is about 20% of the test split.
    counts = np.bincount(test.labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    # Deterministic.
    np.testing.assert_array_equal(all_images(Digits(Digits.Params(split="test"))), all_images(test))


def test_digits_spec_and_scaling():
    from sklearn.datasets import load_digits

    dataset = Digits(Digits.Params(split="all"))
    assert dataset.spec.shape == (8, 8, 1)
    assert dataset.spec.num_classes == 10
    assert dataset.spec.class_names == tuple("0123456789")
    raw = load_digits()
    expected = (raw.images / 8.0 - 1.0)[..., np.newaxis]  # 0 -> -1, 8 -> 0, 16 -> +1
    np.testing.assert_allclose(all_images(dataset), expected, atol=1e-6)
    np.testing.assert_array_equal(dataset.labels, raw.target)


def test_digits_limit_keeps_the_first_examples():
    full = Digits(Digits.Params())
    limited = Digits(Digits.Params(limit=10))
    assert len(limited) == 10
    np.testing.assert_array_equal(all_images(limited), all_images(full)[:10])
    assert limited.spec.num_classes == 10
    with pytest.raises(pydantic.ValidationError):
        Digits.Params(split="validation")


# --------------------------------------------------------------------------------------------
# idx
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8"])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips_every_type(dtype, gz, tmp_path):
    array = (np.arange(24).reshape(2, 3, 4) - (5 if dtype != "u1" else 0)).astype(dtype)
    path = write_idx(tmp_path / "a-idx3-ubyte", array, gz=gz)
    loaded = idx_module.read_idx(path)
    assert loaded.shape == (2, 3, 4)
    assert loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, array)


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("split", ["train", "test"])
def test_idx_folder(gz, split, tmp_path):
    arrays = write_idx_folder(tmp_path, gz=gz)
    dataset = IDX(IDX.Params(path=str(tmp_path), split=split))
    images, labels = arrays[split]
    assert len(dataset) == len(images)
    assert dataset.spec.shape == (6, 5, 1)
    assert dataset.spec.num_classes == 10
    assert dataset.spec.class_names == ()  # a custom path has no names
    np.testing.assert_array_equal(dataset.labels, labels)
    np.testing.assert_allclose(all_images(dataset)[..., 0], images / 127.5 - 1.0, atol=1e-6)


def test_idx_scaling_of_extreme_pixels(tmp_path):
    images = np.array([[[0, 255], [51, 204]]], dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    dataset = IDX(IDX.Params(path=str(tmp_path)))
    assert dataset.labels is None  # no labels file: unlabelled
    np.testing.assert_allclose(
        all_images(dataset)[0, ..., 0], [[-1.0, 1.0], [-0.6, 0.6]], atol=1e-6
    )


def test_idx_images_file_finds_its_labels_by_name(tmp_path):
    arrays = write_idx_folder(tmp_path / "d")
    dataset = IDX(IDX.Params(path=str(tmp_path / "d" / "t10k-images-idx3-ubyte.gz"), limit=5))
    assert len(dataset) == 5
    np.testing.assert_array_equal(dataset.labels, arrays["test"][1][:5])


def test_idx_custom_names_and_explicit_labels(tmp_path):
    images, labels = fake_mnist(4, 8)
    write_idx(tmp_path / "mine-images-idx3-ubyte", images)
    write_idx(tmp_path / "mine-labels-idx1-ubyte.gz", labels)  # other compression: still found
    assert IDX(IDX.Params(path=str(tmp_path / "mine-images-idx3-ubyte"))).spec.num_classes == 8
    write_idx(tmp_path / "other.idx", (labels + 1).astype(np.uint8))
    dataset = IDX(
        IDX.Params(
            path=str(tmp_path / "mine-images-idx3-ubyte"), labels=str(tmp_path / "other.idx")
        )
    )
    np.testing.assert_array_equal(dataset.labels, labels + 1)
    write_idx(tmp_path / "lonely.idx3", images)
    assert IDX(IDX.Params(path=str(tmp_path / "lonely.idx3"))).labels is None


def test_idx_classes_keeps_those_classes_before_limit_and_every_class_number(tmp_path):
    images, labels = write_idx_folder(tmp_path / "d", train=40)["train"]
    dataset = IDX(IDX.Params(path=str(tmp_path / "d"), classes=[3, 7], limit=6))
    keep = np.isin(labels, [3, 7])
    np.testing.assert_array_equal(dataset.labels, labels[keep][:6])
    np.testing.assert_allclose(all_images(dataset)[..., 0], images[keep][:6] / 127.5 - 1.0, atol=1e-6)
    assert dataset.spec.num_classes == 10  # a conditional model keeps its shape
    data_error(lambda: IDX(IDX.Params(path=str(tmp_path / "d"), classes=[10])), "class 10", "0..9")
    write_idx(tmp_path / "u" / "train-images-idx3-ubyte", images)
    data_error(lambda: IDX(IDX.Params(path=str(tmp_path / "u"), classes=[1])), "no labels", "`labels:`")
    with pytest.raises(pydantic.ValidationError):
        IDX.Params(path="x", classes=[])


def test_idx_four_dimensional_images(tmp_path):
    images = np.zeros((4, 3, 2, 3), dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    assert IDX(IDX.Params(path=str(tmp_path))).spec.shape == (3, 2, 3)


def test_idx_path_expands_user_and_variables_and_is_relative_to_cwd(tmp_path, monkeypatch):
    write_idx_folder(tmp_path / "data" / "fm")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MYDATA", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path / "data")
    for path in ("~/data/fm", "$MYDATA/fm", "fm", "./fm/train-images-idx3-ubyte.gz"):
        assert len(IDX(IDX.Params(path=path))) == 20


def test_idx_params_need_exactly_one_source():
    for bad in ({}, {"name": "mnist", "path": "x"}, {"name": "mnist", "labels": "y"}):
        with pytest.raises(pydantic.ValidationError, match="name|labels"):
            IDX.Params(**bad)
    with pytest.raises(pydantic.ValidationError):
        IDX.Params(name="cifar10")
    with pytest.raises(pydantic.ValidationError):
        IDX.Params(name="mnist", split="all")


def test_idx_truncated_and_overlong_files(tmp_path):
    good = idx_bytes(np.zeros((3, 4, 4), dtype=np.uint8))  # 16-byte header + 48 bytes
    short = tmp_path / "short-images-idx3-ubyte"
    short.write_bytes(good[:-5])
    data_error(lambda: IDX(IDX.Params(path=str(short))), short, "truncated", "48", "43")
    long = tmp_path / "long-images-idx3-ubyte.gz"
    long.write_bytes(gzip.compress(good + b"\0"))
    data_error(lambda: IDX(IDX.Params(path=str(long))), long, "longer", "48", "49")
    header_only = tmp_path / "header-images-idx3-ubyte"
    header_only.write_bytes(good[:6])
    data_error(lambda: IDX(IDX.Params(path=str(header_only))), header_only, "truncated")


@pytest.mark.parametrize(
    "content",
    [b"", b"hello world, not idx", bytes([0, 0, 0x42, 3]) + bytes(12), bytes([0, 0, 8, 0])],
)
def test_idx_bad_magic(content, tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(content)
    data_error(lambda: IDX(IDX.Params(path=str(tmp_path))), path, "not an IDX file")


def test_idx_corrupt_gzip(tmp_path):
    compressed = gzip.compress(idx_bytes(np.arange(600, dtype=np.uint8).reshape(6, 10, 10) % 7))
    truncated = tmp_path / "train-images-idx3-ubyte.gz"
    truncated.write_bytes(compressed[: len(compressed) // 2])
    data_error(lambda: IDX(IDX.Params(path=str(tmp_path))), truncated, "gzip")
    garbled = bytearray(compressed)
    garbled[20:30] = b"\xff" * 10
    truncated.write_bytes(bytes(garbled))
    data_error(lambda: IDX(IDX.Params(path=str(tmp_path))), truncated, "gzip")


def test_idx_shape_errors(tmp_path):
    images, labels = fake_mnist(5, 10)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels[:9])
    data_error(
        lambda: IDX(IDX.Params(path=str(tmp_path))),
        tmp_path / "train-labels-idx1-ubyte.gz",
        "[9]",
        "10",
    )
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels.reshape(2, 5))
    data_error(lambda: IDX(IDX.Params(path=str(tmp_path))), "train-labels-idx1-ubyte.gz", "[2, 5]")
    flat = write_idx(tmp_path / "flat.idx", labels)
    data_error(lambda: IDX(IDX.Params(path=str(flat))), flat, "not images")


def test_idx_missing_files(tmp_path):
    missing = tmp_path / "nowhere"
    data_error(lambda: IDX(IDX.Params(path=str(missing))), missing, "does not exist")
    (tmp_path / "empty").mkdir()
    data_error(
        lambda: IDX(IDX.Params(path=str(tmp_path / "empty"), split="test")),
        tmp_path / "empty",
        "t10k-images-idx3-ubyte",
    )
    write_idx_folder(tmp_path / "ok")
    data_error(
        lambda: IDX(IDX.Params(path=str(tmp_path / "ok"), labels=str(tmp_path / "nolabels"))),
        tmp_path / "nolabels",
    )


def test_idx_values_that_cannot_be_scaled(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.full((2, 2, 2), 1000, dtype=">i4"))
    data_error(
        lambda: IDX(IDX.Params(path=str(tmp_path))), tmp_path / "train-images-idx3-ubyte", "1000"
    )
    write_idx(tmp_path / "train-images-idx3-ubyte", np.full((2, 2, 2), np.nan, dtype=">f4"))
    data_error(
        lambda: IDX(IDX.Params(path=str(tmp_path))), tmp_path / "train-images-idx3-ubyte", "NaN"
    )
    write_idx(tmp_path / "train-images-idx3-ubyte", np.full((2, 2, 2), 0.5, dtype=">f4"))
    np.testing.assert_allclose(all_images(IDX(IDX.Params(path=str(tmp_path)))), 0.0)  # [0, 1] range


@pytest.fixture
def isolated_search(tmp_path, monkeypatch):
    """No real data anywhere: empty HOME, no GANCTL_DATA, no system data folders."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("GANCTL_DATA", raising=False)
    monkeypatch.setattr(idx_module, "SYSTEM_DATA_DIRS", (tmp_path / "system",))
    return home


def test_idx_name_searches_ganctl_data(isolated_search, tmp_path, monkeypatch):
    write_idx_folder(tmp_path / "second" / "fashion-mnist", train=7)
    write_idx_folder(tmp_path / "second", train=9)  # <dir>/ itself comes after <dir>/<name>/
    write_idx_folder(isolated_search / ".keras" / "datasets" / "fashion-mnist", train=11)
    monkeypatch.setenv(
        "GANCTL_DATA", os.pathsep.join([str(tmp_path / "first"), str(tmp_path / "second")])
    )
    dataset = IDX(IDX.Params(name="fashion-mnist"))
    assert len(dataset) == 7
    assert dataset.spec.class_names == idx_module.FASHION_MNIST_CLASSES
    assert (
        dataset.spec.class_names[0] == "T-shirt/top" and dataset.spec.class_names[9] == "Ankle boot"
    )
    assert len(IDX(IDX.Params(name="mnist"))) == 9  # found in <dir>/ itself
    assert IDX(IDX.Params(name="mnist")).spec.class_names == tuple("0123456789")
    monkeypatch.delenv("GANCTL_DATA")
    assert len(IDX(IDX.Params(name="fashion-mnist"))) == 11  # then Keras's cache folder
    write_idx_folder(tmp_path / "system" / "fashion-mnist", train=13)
    assert len(IDX(IDX.Params(name="fashion-mnist"))) == 11  # Keras's cache before /usr/share
    monkeypatch.setenv("GANCTL_DATA", "")
    assert len(IDX(IDX.Params(name="fashion-mnist", split="test"))) == 12


def test_idx_name_finds_the_system_package(isolated_search, tmp_path):
    write_idx_folder(tmp_path / "system" / "fashion-mnist", gz=False, train=13)
    assert len(IDX(IDX.Params(name="fashion-mnist"))) == 13


def test_idx_mnist_from_keras_npz_cache(isolated_search):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (15, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 15).astype(np.uint8),
        "x_test": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "y_test": np.array([0, 9, 3, 4], dtype=np.uint8),
    }
    cache = isolated_search / ".keras" / "datasets"
    cache.mkdir(parents=True)
    np.savez(cache / "mnist.npz", **arrays)
    train = IDX(IDX.Params(name="mnist"))
    assert len(train) == 15 and train.spec.shape == (28, 28, 1)
    test = IDX(IDX.Params(name="mnist", split="test"))
    np.testing.assert_array_equal(test.labels, [0, 9, 3, 4])
    assert test.spec.num_classes == 10 and test.spec.class_names == tuple("0123456789")
    (cache / "mnist.npz").write_bytes(b"broken")
    data_error(lambda: IDX(IDX.Params(name="mnist")), cache / "mnist.npz")


def test_idx_name_not_found_lists_every_place(isolated_search, tmp_path, monkeypatch):
    monkeypatch.setenv("GANCTL_DATA", str(tmp_path / "mine"))
    message = data_error(
        lambda: IDX(IDX.Params(name="fashion-mnist")),
        tmp_path / "mine" / "fashion-mnist",
        tmp_path / "mine",
        isolated_search / ".keras" / "datasets" / "fashion-mnist",
        tmp_path / "system" / "fashion-mnist",
        "apt-get install dataset-fashion-mnist",
        "$GANCTL_DATA/fashion-mnist/",
        "path:",
    )
    assert "mnist.npz" not in message
    data_error(
        lambda: IDX(IDX.Params(name="mnist", split="test")),
        "mnist.npz",
        "t10k-images-idx3-ubyte",
        "keras",
    )


def test_idx_name_found_without_labels(isolated_search, tmp_path, monkeypatch):
    images, _ = fake_mnist(0, 4)
    write_idx(tmp_path / "d" / "mnist" / "train-images-idx3-ubyte.gz", images)
    monkeypatch.setenv("GANCTL_DATA", str(tmp_path / "d"))
    data_error(
        lambda: IDX(IDX.Params(name="mnist")), tmp_path / "d" / "mnist", "train-labels-idx1-ubyte"
    )


def test_real_fashion_mnist():
    require_fashion_mnist()
    train = IDX(IDX.Params(path=str(FASHION_DIR)))
    assert len(train) == 60000
    assert train.spec.shape == (28, 28, 1)
    assert train.spec.num_classes == 10
    assert np.array_equal(np.bincount(train.labels), np.full(10, 6000))
    test = IDX(IDX.Params(path=str(FASHION_DIR), split="test", limit=100))
    assert len(test) == 100
    batch = next(train.batches(256, seed=0))
    assert batch.images.shape == (256, 28, 28, 1) and batch.images.dtype == np.float32
    assert batch.images.min() == -1.0 and batch.images.max() == 1.0
    full_test = IDX(IDX.Params(path=str(FASHION_DIR / "t10k-images-idx3-ubyte.gz")))
    assert len(full_test) == 10000 and full_test.labels is not None


def test_real_fashion_mnist_by_name(monkeypatch, tmp_path):
    require_fashion_mnist()
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("GANCTL_DATA", raising=False)
    dataset = IDX(IDX.Params(name="fashion-mnist", split="test"))
    assert len(dataset) == 10000
    assert dataset.spec.class_names == idx_module.FASHION_MNIST_CLASSES


# --------------------------------------------------------------------------------------------
# image-folder
# --------------------------------------------------------------------------------------------


def test_image_folder_with_class_folders(tmp_path):
    root = tmp_path / "pets"
    write_image(root / "dogs" / "b.png", (255, 255, 255))
    write_image(root / "cats" / "z.png", (0, 0, 0))
    write_image(root / "cats" / "deeper" / "a.jpg", (255, 0, 0))
    write_image(root / "cats" / ".hidden.png", (1, 2, 3))
    write_image(root / ".trash" / "x.png", (1, 2, 3))
    (root / "empty").mkdir()
    (root / "cats" / "notes.txt").write_text("not an image")
    (root / "README.md").write_text("not an image either")
    dataset = ImageFolder(ImageFolder.Params(path=str(root), size=4))
    assert dataset.spec.shape == (4, 4, 3)
    assert dataset.spec.num_classes == 2
    assert dataset.spec.class_names == ("cats", "dogs")
    np.testing.assert_array_equal(dataset.labels, [0, 0, 1])
    images = all_images(dataset)
    # Sorted paths: cats/deeper/a.jpg (red, lossy JPEG), cats/z.png (black), dogs/b.png (white).
    np.testing.assert_allclose(images[0, ..., 0], 1.0, atol=0.05)
    np.testing.assert_allclose(images[0, ..., 1:], -1.0, atol=0.05)
    np.testing.assert_array_equal(images[1], -1.0)
    np.testing.assert_array_equal(images[2], 1.0)


def test_image_folder_unlabelled_every_format(tmp_path):
    for index, extension in enumerate(["png", "JPG", "jpeg", "bmp", "webp", "gif"]):
        write_image(tmp_path / f"{index}.{extension}", (200, 200, 200))
    (tmp_path / "empty-dir").mkdir()
    dataset = ImageFolder(ImageFolder.Params(path=str(tmp_path), size=[3, 5], channels=1))
    assert len(dataset) == 6
    assert dataset.labels is None
    assert dataset.spec.shape == (3, 5, 1)
    assert dataset.spec.num_classes == 0 and dataset.spec.class_names == ()
    np.testing.assert_allclose(all_images(dataset), 200 / 127.5 - 1.0, atol=0.03)


def test_image_folder_gif_first_frame_and_transparency(tmp_path):
    frames = [Image.new("RGB", (6, 6), (255, 255, 255)), Image.new("RGB", (6, 6), (0, 0, 0))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    clear = Image.new("RGBA", (6, 6), (255, 255, 255, 0))
    clear.putpixel((0, 0), (255, 255, 255, 255))
    clear.save(tmp_path / "clear.png")
    images = all_images(ImageFolder(ImageFolder.Params(path=str(tmp_path), size=6, fit="stretch")))
    np.testing.assert_array_equal(images[0], 1.0)  # anim.gif: white first frame
    assert images[1][0, 0].tolist() == [1.0, 1.0, 1.0]  # opaque white pixel
    np.testing.assert_array_equal(images[1][1:, 1:], -1.0)  # transparent: black


def test_image_folder_grayscale_and_16_bit(tmp_path):
    Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16)).save(tmp_path / "a16.png")
    write_image(tmp_path / "b.png", (255, 0, 0))
    dataset = ImageFolder(ImageFolder.Params(path=str(tmp_path), size=4, channels=1))
    images = all_images(dataset)
    np.testing.assert_array_equal(images[0], 1.0)
    np.testing.assert_allclose(images[1], 76 / 127.5 - 1.0, atol=0.02)  # luma of pure red
    rgb = all_images(ImageFolder(ImageFolder.Params(path=str(tmp_path), size=4)))
    assert rgb.shape == (2, 4, 4, 3)
    np.testing.assert_array_equal(rgb[0], 1.0)


def _three_stripes(path: Path) -> None:
    """30x10 (width x height): red, green and blue vertical thirds."""
    pixels = np.zeros((10, 30, 3), dtype=np.uint8)
    pixels[:, :10, 0] = pixels[:, 10:20, 1] = pixels[:, 20:, 2] = 255
    Image.fromarray(pixels).save(path)


def test_image_folder_fit_modes(tmp_path):
    _three_stripes(tmp_path / "stripes.png")

    def load(fit):
        dataset = ImageFolder(ImageFolder.Params(path=str(tmp_path), size=8, fit=fit))
        return ((all_images(dataset)[0] + 1) * 127.5).round().astype(int)

    crop = load("crop")  # the centre square: green
    assert crop[2:6, 2:6].tolist() == [[[0, 255, 0]] * 4] * 4
    stretch = load("stretch")  # all three stripes, squeezed
    assert stretch[4, 0, 0] > 240 and stretch[4, 0, 2] < 15  # red on the left
    assert stretch[4, 7, 2] > 240 and stretch[4, 7, 0] < 15  # blue on the right
    assert stretch[4, 4, 1] > 200
    pad = load("pad")  # 8 wide x 3 tall in the middle, black bands above and below
    assert (pad[:2] == 0).all() and (pad[-2:] == 0).all()
    assert pad[4, 0].tolist()[0] > 200 and pad[4, 7].tolist()[2] > 200


def test_image_folder_is_deterministic_and_limit_decodes_first_files(tmp_path):
    for index in range(5):
        write_image(tmp_path / f"{index}.png", (index * 50, 0, 0))
    (tmp_path / "9.png").write_bytes(b"corrupt, but after the limit")
    dataset = ImageFolder(ImageFolder.Params(path=str(tmp_path), size=2, limit=3))
    reds = ((all_images(dataset)[:, 0, 0, 0] + 1) * 127.5).round()
    assert reds.tolist() == [0, 50, 100]


def test_image_folder_params():
    assert ImageFolder.Params(path="x").size == 64
    assert ImageFolder.Params(path="x", size=[16, 32]).size == (16, 32)
    for bad in (
        {"size": 0},
        {"size": [16, 0]},
        {"size": [1, 2, 3]},
        {"channels": 2},
        {"fit": "zoom"},
    ):
        with pytest.raises(pydantic.ValidationError):
            ImageFolder.Params(path="x", **bad)
    with pytest.raises(pydantic.ValidationError):
        ImageFolder.Params()  # path is required


def test_image_folder_errors(tmp_path):
    missing = tmp_path / "missing"
    data_error(
        lambda: ImageFolder(ImageFolder.Params(path=str(missing))), missing, "does not exist"
    )
    a_file = write_image(tmp_path / "one.png", (0, 0, 0))
    data_error(lambda: ImageFolder(ImageFolder.Params(path=str(a_file))), a_file, "not a folder")

    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("x")
    write_image(empty / ".hidden.png", (0, 0, 0))
    data_error(
        lambda: ImageFolder(ImageFolder.Params(path=str(empty))), empty, "no images", ".png", ".jpg"
    )

    mixed = tmp_path / "mixed"
    write_image(mixed / "loose.png", (0, 0, 0))
    write_image(mixed / "cats" / "a.png", (0, 0, 0))
    data_error(
        lambda: ImageFolder(ImageFolder.Params(path=str(mixed))),
        mixed,
        "loose.png",
        "cats",
        "layouts",
    )

    broken = tmp_path / "broken"
    write_image(broken / "good.png", (0, 0, 0))
    (broken / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    data_error(
        lambda: ImageFolder(ImageFolder.Params(path=str(broken))),
        broken / "bad.jpg",
        "cannot be read",
    )
    truncated = tmp_path / "truncated"
    png = write_image(truncated / "t.png", (9, 9, 9), size=(64, 64))
    png.write_bytes(png.read_bytes()[:60])
    data_error(lambda: ImageFolder(ImageFolder.Params(path=str(truncated))), png)


# --------------------------------------------------------------------------------------------
# npz
# --------------------------------------------------------------------------------------------


def test_npz_uint8_with_labels(tmp_path):
    images = np.zeros((3, 4, 5, 3), dtype=np.uint8)
    images[0] = 255
    np.savez(tmp_path / "d.npz", images=images, labels=np.array([2, 0, 1]))
    dataset = NPZ(NPZ.Params(path=str(tmp_path / "d.npz")))
    assert dataset.spec.shape == (4, 5, 3)
    assert dataset.spec.num_classes == 3 and dataset.spec.class_names == ()
    out = all_images(dataset)
    np.testing.assert_array_equal(out[0], 1.0)
    np.testing.assert_array_equal(out[1], -1.0)
    np.testing.assert_array_equal(dataset.labels, [2, 0, 1])


def test_npz_layouts(tmp_path):
    rng = np.random.default_rng(0)
    nhwc = rng.integers(0, 256, (4, 6, 5, 3), dtype=np.uint8)
    np.savez(tmp_path / "nchw.npz", images=nhwc.transpose(0, 3, 1, 2))
    dataset = NPZ(NPZ.Params(path=str(tmp_path / "nchw.npz"), layout="NCHW", limit=3))
    assert dataset.spec.shape == (6, 5, 3) and len(dataset) == 3
    assert dataset.labels is None
    np.testing.assert_allclose(all_images(dataset), nhwc[:3] / 127.5 - 1.0, atol=1e-6)
    np.savez(tmp_path / "gray.npz", images=nhwc[..., 0])
    assert NPZ(NPZ.Params(path=str(tmp_path / "gray.npz"), layout="NCHW")).spec.shape == (6, 5, 1)
    data_error(
        lambda: NPZ(NPZ.Params(path=str(tmp_path / "nchw.npz"))),
        tmp_path / "nchw.npz",
        "layout: NCHW",
    )
    np.savez(tmp_path / "2d.npz", images=nhwc[:, 0, 0])
    data_error(
        lambda: NPZ(NPZ.Params(path=str(tmp_path / "2d.npz"))), tmp_path / "2d.npz", "[4, 3]"
    )


@pytest.mark.parametrize(
    ("images", "low_maps_to", "expected"),
    [
        (np.array([0.0, 0.5, 1.0], dtype=np.float32), None, [-1.0, 0.0, 1.0]),  # [0, 1]
        (np.array([-1.0, 0.0, 0.5]), None, [-1.0, 0.0, 0.5]),  # [-1, 1]
        (np.array([0, 51, 255], dtype=np.int16), None, [-1.0, -0.6, 1.0]),  # ints in 0..255
        (np.array([0, 500, 1000], dtype=np.int32), (0, 1000), [-1.0, 0.0, 1.0]),  # explicit
        (np.array([0.25, 0.5], dtype=np.float64), (0.0, 0.5), [0.0, 1.0]),  # explicit beats guess
    ],
)
def test_npz_value_ranges(images, low_maps_to, expected, tmp_path):
    np.savez(tmp_path / "d.npz", images=np.broadcast_to(images[:, None, None], (len(images), 2, 2)))
    dataset = NPZ(NPZ.Params(path=str(tmp_path / "d.npz"), value_range=low_maps_to))
    np.testing.assert_allclose(all_images(dataset)[:, 0, 0, 0], expected, atol=1e-6)


@pytest.mark.parametrize(
    "images",
    [
        np.array([0, 1000]),
        np.array([-5, 5], dtype=np.int8),
        np.array([0.0, 2.0]),
        np.array([-2.0, 0.5]),
    ],
)
def test_npz_unguessable_range_asks_for_value_range(images, tmp_path):
    np.savez(tmp_path / "d.npz", images=np.broadcast_to(images[:, None, None], (2, 2, 2)))
    data_error(
        lambda: NPZ(NPZ.Params(path=str(tmp_path / "d.npz"))), tmp_path / "d.npz", "value_range"
    )


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_npz_non_finite_images(bad, tmp_path):
    images = np.zeros((2, 2, 2), dtype=np.float32)
    images[1, 1, 1] = bad
    np.savez(tmp_path / "d.npz", images=images)
    data_error(
        lambda: NPZ(NPZ.Params(path=str(tmp_path / "d.npz"), value_range=(0, 1))),
        tmp_path / "d.npz",
        "NaN",
    )


def test_npz_keys(tmp_path):
    path = tmp_path / "d.npz"
    images = np.zeros((2, 3, 3), dtype=np.uint8)
    np.savez(path, x=images, y=np.array([[1], [0]]), labels=np.array([5, 5]))
    data_error(
        lambda: NPZ(NPZ.Params(path=str(path))), path, "'images'", "'x'", "'y'", "images_key"
    )
    dataset = NPZ(NPZ.Params(path=str(path), images_key="x", labels_key="y"))
    np.testing.assert_array_equal(dataset.labels, [1, 0])  # [N, 1] accepted
    assert NPZ(NPZ.Params(path=str(path), images_key="x")).labels.tolist() == [5, 5]
    assert NPZ(NPZ.Params(path=str(path), images_key="x", labels_key=None)).labels is None
    data_error(
        lambda: NPZ(NPZ.Params(path=str(path), images_key="x", labels_key="classes")),
        path,
        "'classes'",
        "labels_key",
    )
    np.savez(path, images=images)
    assert NPZ(NPZ.Params(path=str(path))).labels is None  # default key absent: unlabelled


def test_npz_bad_labels(tmp_path):
    path = tmp_path / "d.npz"
    images = np.zeros((3, 2, 2), dtype=np.uint8)
    for labels, needle in [
        (np.array([0, 1]), "[2]"),
        (np.array([0, -1, 2]), ">= 0"),
        (np.array([0.5, 1, 2]), "whole"),
        (np.array(["a", "b", "c"]), "dtype"),
    ]:
        np.savez(path, images=images, labels=labels)
        data_error(lambda: NPZ(NPZ.Params(path=str(path))), path, needle)


def test_npz_bad_files(tmp_path):
    missing = tmp_path / "missing.npz"
    data_error(lambda: NPZ(NPZ.Params(path=str(missing))), missing, "does not exist")
    data_error(lambda: NPZ(NPZ.Params(path=str(tmp_path))), tmp_path, "folder")

    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file at all")
    data_error(lambda: NPZ(NPZ.Params(path=str(garbage))), garbage, "not a readable .npz")
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    data_error(lambda: NPZ(NPZ.Params(path=str(empty))), empty, "not a readable .npz")

    good = tmp_path / "good.npz"
    np.savez(good, images=np.zeros((10, 8, 8), dtype=np.uint8))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:-40])
    data_error(lambda: NPZ(NPZ.Params(path=str(truncated))), truncated)

    corrupt = tmp_path / "corrupt.npz"
    np.savez_compressed(corrupt, images=np.arange(4000, dtype=np.uint8).reshape(10, 20, 20))
    with zipfile.ZipFile(corrupt) as archive:
        offset = archive.getinfo("images.npy").header_offset + 60
    data = bytearray(corrupt.read_bytes())
    data[offset : offset + 40] = b"\x00" * 40
    corrupt.write_bytes(bytes(data))
    data_error(lambda: NPZ(NPZ.Params(path=str(corrupt))), corrupt)

    npy = tmp_path / "single.npy"
    np.save(npy, np.zeros((2, 2, 2), dtype=np.uint8))
    data_error(lambda: NPZ(NPZ.Params(path=str(npy))), npy, "single .npy")

    pickled = tmp_path / "objects.npz"
    np.savez(pickled, images=np.array([np.zeros((2, 2)), "x"], dtype=object))
    data_error(lambda: NPZ(NPZ.Params(path=str(pickled))), pickled, "Python objects")

    booleans = tmp_path / "bool.npz"
    np.savez(booleans, images=np.zeros((2, 2, 2), dtype=bool))
    data_error(lambda: NPZ(NPZ.Params(path=str(booleans))), booleans, "bool")


def test_npz_relative_path_and_params(tmp_path, monkeypatch):
    np.savez(tmp_path / "d.npz", images=np.zeros((2, 2, 2), dtype=np.uint8))
    monkeypatch.chdir(tmp_path)
    assert len(NPZ(NPZ.Params(path="d.npz"))) == 2
    assert NPZ.Params(path="d.npz", value_range=[0, 1]).value_range == (0.0, 1.0)
    for bad in ({"value_range": [1, 1]}, {"value_range": [2, 1]}, {"layout": "HWC"}):
        with pytest.raises(pydantic.ValidationError):
            NPZ.Params(path="d.npz", **bad)
    with pytest.raises(pydantic.ValidationError):
        NPZ.Params()
