"""The ``inception`` feature extractor: where it looks for weights, its errors, its resize, and
(slow) features and probabilities from randomly initialised InceptionV3 weights files."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from ganctl import api
from ganctl.cli import app
from ganctl.evaluation.extractors import make_extractor
from ganctl_features import inception
from ganctl_features.inception import ENV, NOTOP_FILE, TOP_FILE, find_weights, resize_bilinear

from . import onnx_models
from .conftest import make_host

GRAY = api.DataSpec(height=8, width=8, channels=1)
RGB = api.DataSpec(height=28, width=28, channels=3)


@pytest.fixture(autouse=True)
def _no_weights_anywhere(tmp_path, monkeypatch):
    """An empty Keras home and no $GANCTL_INCEPTION_WEIGHTS: the user's real cache never leaks in."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("GANCTL_CACHE_DIR", str(tmp_path / "cache"))


def config_error(section, spec=GRAY) -> str:
    with pytest.raises(api.ConfigError) as caught:
        make_extractor(make_host(), section, spec)
    return caught.value.message


def test_it_is_a_built_in_extractor():
    host = make_host()
    assert "inception" in host.names("feature_extractors")
    assert list(host.get("feature_extractors", "inception").params_model.model_fields) == ["weights"]


def test_without_a_file_the_error_says_which_file_where_it_looked_and_how_to_provide_it(tmp_path):
    message = config_error("inception")
    models = tmp_path / "keras-home" / "models"
    for text in (NOTOP_FILE, str(models / NOTOP_FILE), str(models / TOP_FILE), f"${ENV} (not set)",
                 "`weights:` parameter (not set)", "features: {plugin: inception, weights: PATH}",
                 f"export {ENV}=PATH", f"copy it into {models}/", "include_top=False, weights='imagenet'",
                 "never downloads"):
        assert text in message, (text, message)
    assert "\n" not in message


def test_the_cli_says_it_without_a_traceback(runner, tmp_path):
    model = onnx_models.generator(tmp_path / "g.onnx", shape=(8, 8, 1))
    result = runner.invoke(app, ["evaluate", str(model), "--metric", "fid", "--features", "inception",
                                 "--data", "digits", "--n", "10"])
    assert result.exit_code == 2, result.output
    assert NOTOP_FILE in result.stderr and ENV in result.stderr
    assert str(tmp_path / "keras-home" / "models" / NOTOP_FILE) in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_a_weights_path_that_does_not_exist_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("WEIGHTS_DIR", str(tmp_path / "w"))
    message = config_error({"plugin": "inception", "weights": "$WEIGHTS_DIR/nope.h5"})
    assert f"{tmp_path / 'w' / 'nope.h5'} (does not exist)" in message and "$WEIGHTS_DIR/nope.h5" in message
    monkeypatch.setenv(ENV, str(tmp_path / "gone.h5"))
    message = config_error("inception")
    assert f"${ENV}={tmp_path / 'gone.h5'}" in message and "does not exist" in message


def test_where_the_file_is_looked_for_and_in_which_order(tmp_path, monkeypatch):
    models = tmp_path / "keras-home" / "models"
    models.mkdir(parents=True)
    (models / TOP_FILE).write_bytes(b"top")
    assert find_weights(None) == (models / TOP_FILE, "the Keras cache")
    (models / NOTOP_FILE).write_bytes(b"notop")
    assert find_weights(None) == (models / NOTOP_FILE, "the Keras cache")
    (tmp_path / "env.h5").write_bytes(b"env")
    monkeypatch.setenv(ENV, str(tmp_path / "env.h5"))
    assert find_weights(None)[0] == tmp_path / "env.h5"
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "param.h5").write_bytes(b"param")
    assert find_weights("~/param.h5")[0] == tmp_path / "param.h5"
    monkeypatch.delenv("KERAS_HOME")
    assert inception.keras_models_dir() == tmp_path / ".keras" / "models"


def test_a_file_that_is_not_weights_is_a_clear_error(tmp_path):
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not an HDF5 file at all" * 100)
    message = config_error({"plugin": "inception", "weights": str(garbage)})
    assert str(garbage) in message and "not a Keras HDF5 weights file" in message
    assert "keras.applications.InceptionV3" in message and ENV in message


def test_images_of_two_channels_are_refused():
    message = config_error("inception", api.DataSpec(height=8, width=8, channels=2))
    assert "1 or 3 channels" in message and "8x8x2" in message


def test_the_resize_is_keras_bilinear_without_antialiasing():
    import keras

    rng = np.random.default_rng(0)
    for shape in [(2, 8, 8, 1), (2, 28, 28, 3), (1, 320, 350, 3)]:
        images = rng.uniform(-1, 1, shape).astype(np.float32)
        ours = resize_bilinear(images)
        theirs = keras.ops.convert_to_numpy(
            keras.ops.image.resize(images, (299, 299), interpolation="bilinear", antialias=False))
        assert ours.shape == (shape[0], 299, 299, shape[3]) and ours.dtype == np.float32
        np.testing.assert_allclose(ours, theirs, atol=1e-4)
    same = rng.uniform(-1, 1, (1, 299, 299, 3)).astype(np.float32)
    np.testing.assert_array_equal(resize_bilinear(same), same)


# -- slow: real InceptionV3 networks with random weights ------------------------------------------------


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory) -> dict[str, Path]:
    """Random InceptionV3 weights: without the top in Keras 3's format and in the legacy HDF5
    format of Keras's cache files (same values), and with the top."""
    import h5py
    import keras

    folder = tmp_path_factory.mktemp("inception-weights")
    notop = keras.applications.InceptionV3(weights=None, include_top=False, pooling="avg", input_shape=(299, 299, 3))
    files = {"notop": folder / "random.weights.h5"}
    notop.save_weights(files["notop"])
    try:
        from keras.src.legacy.saving import legacy_h5_format  # how the cache files were written

        files["legacy"] = folder / NOTOP_FILE
        with h5py.File(files["legacy"], "w") as handle:
            legacy_h5_format.save_weights_to_hdf5_group(handle, notop)
    except ImportError:
        pass
    top = keras.applications.InceptionV3(weights=None, include_top=True, input_shape=(299, 299, 3))
    files["top"] = folder / "random-top.weights.h5"
    top.save_weights(files["top"])
    return files


def _images(n: int, spec: api.DataSpec, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, *spec.shape)).astype(np.float32)


@pytest.mark.slow
def test_features_of_a_weights_file_are_2048_finite_and_deterministic(weight_files):
    host = make_host()
    section = {"plugin": "inception", "weights": str(weight_files["notop"])}
    gray = make_extractor(host, section, GRAY)
    rgb = make_extractor(host, section, RGB)
    assert gray.plugin.num_classes == 0
    identity = gray.identity
    assert identity["name"] == "inception"
    assert identity["sha256"] == hashlib.sha256(weight_files["notop"].read_bytes()).hexdigest()
    assert identity["input"] == inception.INPUT and "bilinear" in identity["input"]
    first = np.concatenate([gray(_images(3, GRAY, 0)).features, rgb(_images(3, RGB, 1)).features])
    assert first.shape == (6, 2048) and first.dtype == np.float32 and np.isfinite(first).all()
    again = gray(_images(3, GRAY, 0))
    np.testing.assert_array_equal(again.features, first[:3])
    assert again.probabilities is None
    if "legacy" in weight_files:  # the same weights in the cache's format, found in the cache
        models = Path(inception.keras_models_dir())
        models.mkdir(parents=True)
        weight_files["legacy"].rename(models / NOTOP_FILE)
        legacy = make_extractor(host, "inception", GRAY)
        np.testing.assert_allclose(legacy(_images(3, GRAY, 0)).features, first[:3], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_with_the_top_it_is_an_imagenet_classifier(weight_files, tmp_path):
    host = make_host()
    renamed = tmp_path / "inception-top.bin"  # Keras reads by the name; the plugin reads by the content
    shutil.copyfile(weight_files["top"], renamed)
    extractor = make_extractor(host, {"plugin": "inception", "weights": str(renamed)}, RGB)
    assert extractor.plugin.num_classes == 1000
    out = extractor(_images(4, RGB, 2))
    assert out.features.shape == (4, 2048) and out.probabilities.shape == (4, 1000)
    np.testing.assert_allclose(out.probabilities.sum(axis=1), 1, rtol=1e-5)
    metric = host.get("metrics", "inception-score")
    values = metric.factory(metric.params_model(splits=2)).compute(out, out, fake_labels=None, seed=0)
    assert np.isfinite(values["inception_score"])


@pytest.mark.slow
def test_weights_of_another_network_are_a_clear_error(tmp_path):
    import keras

    small = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    small.save_weights(tmp_path / "small.weights.h5")
    message = config_error({"plugin": "inception", "weights": str(tmp_path / "small.weights.h5")})
    assert str(tmp_path / "small.weights.h5") in message and "does not load into InceptionV3" in message
