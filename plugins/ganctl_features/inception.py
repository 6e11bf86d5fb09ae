"""The ``inception`` feature extractor: InceptionV3 pool features from a weights file you provide.

ganctl never downloads the weights. It takes the first of these that is set or exists:

1. the extractor's ``weights:`` parameter (a path; ``~`` and ``$VARS`` are expanded);
2. ``$GANCTL_INCEPTION_WEIGHTS``;
3. Keras's cache file ``inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`` in
   ``$KERAS_HOME/models`` (default ``~/.keras/models``, or ``/tmp/.keras/models`` when the home
   folder is not writable, as Keras does);
4. the with-top file ``inception_v3_weights_tf_dim_ordering_tf_kernels.h5`` in the same folder.

A path given by 1 or 2 that does not exist is an error (no quiet fallback). The file may be in
Keras's legacy HDF5 format (the cache files) or Keras 3's ``.weights.h5`` format (what
``model.save_weights`` writes), whatever its name. When it holds the top (a ``2048 x 1000``
dense kernel), the extractor is also an ImageNet classifier: it returns the softmax
``probabilities`` and ``num_classes`` is 1000 (so ``inception-score`` works); without the top,
``num_classes`` is 0.

Preprocessing, exactly (this is also the ``input`` of :meth:`Inception.identity`, since FID
depends on it):

* images arrive float32 NHWC in ``[-1, 1]``, which is InceptionV3's expected range: no rescale;
* each image is resized to 299x299 in numpy (float32) by separable bilinear interpolation with
  half-pixel centres (``align_corners=False``), no antialiasing, edge pixels clamped — the same
  as ``tf.image.resize(method="bilinear", antialias=False)``, ``keras.ops.image.resize(...,
  interpolation="bilinear", antialias=False)`` on TensorFlow and torch's ``F.interpolate(...,
  mode="bilinear", align_corners=False)``; doing it in numpy keeps it identical on every backend;
* 1 channel is then repeated to 3; 3 channels are used as they are; other counts are refused;
* Keras's ``InceptionV3(weights=None, pooling="avg", input_shape=(299, 299, 3))`` with the file's
  weights, in inference mode, ``batch_size`` images at a time; the features are the 2048 values
  of the global average pool.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ganctl import api

ENV = "GANCTL_INCEPTION_WEIGHTS"
NOTOP_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
TOP_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
SIZE = 299
DIM = 2048
CLASSES = 1000
INPUT = (
    "float32 NHWC in [-1, 1] used as is (no rescale); resized to 299x299 by bilinear interpolation "
    "(half-pixel centres, no antialiasing, edges clamped; numpy float32); 1 channel repeated to 3; "
    "InceptionV3 in inference mode, 2048-d global average pool"
)
_FETCH = 'python -c "import keras; keras.applications.InceptionV3(include_top=False, weights=\'imagenet\')"'


# -- finding the file ----------------------------------------------------------------------------


def keras_models_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where Keras caches application weights: ``$KERAS_HOME/models``, else ``~/.keras/models``
    (``/tmp/.keras/models`` when the home folder is not writable), as ``keras.utils.get_file``."""
    env = os.environ if env is None else env
    if "KERAS_HOME" in env:
        return Path(os.path.expanduser(env["KERAS_HOME"])) / "models"
    home = os.path.expanduser("~")
    base = home if os.access(home, os.W_OK) else "/tmp"
    return Path(base) / ".keras" / "models"


def _expand(text: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(text)))


def find_weights(weights: str | None, env: Mapping[str, str] | None = None) -> tuple[Path, str]:
    """The weights file and where it came from; :class:`api.ConfigError` when there is none."""
    env = os.environ if env is None else env
    if weights:
        path = _expand(weights)
        if path.is_file():
            return path, "the `weights:` parameter"
        raise api.ConfigError(_missing([f"`weights: {weights}` -> {path} (does not exist)"], explicit=True,
                                       models=keras_models_dir(env)))
    if env.get(ENV):
        path = _expand(env[ENV])
        if path.is_file():
            return path, f"${ENV}"
        raise api.ConfigError(_missing([f"${ENV}={env[ENV]} -> {path} (does not exist)"], explicit=True,
                                       models=keras_models_dir(env)))
    models = keras_models_dir(env)
    for name in (NOTOP_FILE, TOP_FILE):
        if (models / name).is_file():
            return models / name, "the Keras cache"
    looked = ["the `weights:` parameter (not set)", f"${ENV} (not set)",
              f"{models / NOTOP_FILE} (absent)", f"{models / TOP_FILE} (absent)"]
    raise api.ConfigError(_missing(looked, explicit=False, models=models))


def _missing(looked: list[str], *, explicit: bool, models: Path) -> str:
    what = "the given weights file does not exist" if explicit else "no weights file was found"
    return (
        f"the inception feature extractor needs Keras's ImageNet weights of InceptionV3 without the top, "
        f"the file {NOTOP_FILE} (about 88 MB; the with-top {TOP_FILE} also works), and ganctl never "
        f"downloads it: {what}. Looked at: {'; '.join(looked)}. Provide it in one of three ways: "
        f"`features: {{plugin: inception, weights: PATH}}` in a recipe's metric; "
        f"`export {ENV}=PATH`; or copy it into {models}/. To get it, run on a machine with network "
        f"{_FETCH}, which saves it to the Keras cache folder (~/.keras/models/)."
    )


# -- reading the file ----------------------------------------------------------------------------


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def inspect_weights(path: Path) -> tuple[str, bool]:
    """``(format, has_top)``: format ``"legacy"`` (Keras 2 HDF5, the cache files) or ``"keras3"``
    (``.weights.h5``); the top is there when the file holds a ``2048 x 1000`` kernel."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            legacy = "layer_names" in handle.attrs or "model_weights" in handle
            if not legacy and "layers" not in handle:
                raise ValueError("it holds no Keras layer weights")
            shapes: list[tuple[int, ...]] = []
            handle.visititems(lambda _, item: shapes.append(item.shape) if isinstance(item, h5py.Dataset) else None)
    except (OSError, ValueError) as exc:
        raise api.ConfigError(_unloadable(path, f"it is not a Keras HDF5 weights file ({_first_line(exc)})")) from None
    return ("legacy" if legacy else "keras3"), (DIM, CLASSES) in shapes


def _unloadable(path: Path, why: str) -> str:
    return (
        f"the inception feature extractor cannot use the weights file {path}: {why}. It must hold the weights "
        f"of keras.applications.InceptionV3: Keras's {NOTOP_FILE} (or the with-top {TOP_FILE}), or a "
        "file written by model.save_weights(...) of that model. Get a good copy on a machine with network with "
        f"{_FETCH} (it lands in ~/.keras/models/), then point `weights:` or ${ENV} at it."
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0].split(". Example error message", 1)[0].rstrip(": ") if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _load_model(path: Path) -> tuple[Any, bool]:
    """InceptionV3 with the file's weights: a model of one output (features) or two (features,
    probabilities), and whether it has the top."""
    import keras

    fmt, top = inspect_weights(path)
    base = keras.applications.InceptionV3(weights=None, include_top=top, pooling="avg",
                                          input_shape=(SIZE, SIZE, 3), classes=CLASSES)
    suffix = ".h5" if fmt == "legacy" else ".weights.h5"
    named_right = path.name.endswith(".weights.h5") == (fmt == "keras3") and path.name.endswith((".h5", ".hdf5"))
    try:
        with contextlib.ExitStack() as stack:
            # Keras picks the reader by the file's name; give it the name its content needs
            source = path
            if not named_right:
                folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ganctl-inception-")))
                source = folder / f"inception{suffix}"
                try:
                    source.symlink_to(path.resolve())
                except OSError:
                    shutil.copyfile(path, source)
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")  # Keras warns per skipped container before it raises
            base.load_weights(str(source))
    except Exception as exc:  # any failure to read the file is the same problem for the user
        raise api.ConfigError(_unloadable(path, f"it does not load into InceptionV3 "
                                                f"({'with' if top else 'without'} top): {_first_line(exc)}")) from None
    if not top:
        return base, False
    model = keras.Model(base.input, [base.get_layer("avg_pool").output, base.output], name="inception_v3_two_heads")
    return model, True


_CACHE: dict[tuple[Any, ...], tuple[Any, bool, str]] = {}


def _cached(path: Path) -> tuple[Any, bool, str]:
    """The loaded model, whether it has the top, and the file's sha256: one file kept per process,
    so that evaluations during training do not rebuild InceptionV3 every time."""
    import keras

    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, keras.backend.backend())
    if key not in _CACHE:
        _CACHE.clear()
        sha256 = file_sha256(path)
        model, top = _load_model(path)
        _CACHE[key] = (model, top, sha256)
    return _CACHE[key]


# -- resizing ----------------------------------------------------------------------------------


def _interpolation(n_in: int, n_out: int) -> np.ndarray:
    """``[n_out, n_in]`` weights of bilinear interpolation with half-pixel centres, clamped."""
    source = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    source = np.clip(source, 0, n_in - 1)
    low = np.floor(source).astype(np.int64)
    high = np.minimum(low + 1, n_in - 1)
    frac = source - low
    matrix = np.zeros((n_out, n_in), np.float64)
    np.add.at(matrix, (np.arange(n_out), low), 1 - frac)
    np.add.at(matrix, (np.arange(n_out), high), frac)
    return matrix.astype(np.float32)


def resize_bilinear(images: np.ndarray, height: int = SIZE, width: int = SIZE) -> np.ndarray:
    """``[B, H, W, C]`` float32 images resized to ``[B, height, width, C]`` (see the module doc)."""
    _, h, w, _ = images.shape
    if (h, w) == (height, width):
        return np.asarray(images, np.float32)
    rows, cols = _interpolation(h, height), _interpolation(w, width)
    planes = np.asarray(images, np.float32).transpose(0, 3, 1, 2)  # B, C, H, W
    return np.ascontiguousarray((rows @ planes @ cols.T).transpose(0, 2, 3, 1))


# -- the plugin --------------------------------------------------------------------------------


class Inception(api.FeatureExtractor):
    """InceptionV3 (Keras) pool features, 2048-d, from a weights file you provide; with the top,
    ImageNet class probabilities too. Never downloads anything."""

    batch_size = 32

    class Params(api.Params):
        weights: str | None = api.Field(
            None,
            description=(
                "The InceptionV3 weights file (~ and $VARS expanded). Default: $GANCTL_INCEPTION_WEIGHTS, "
                f"then {NOTOP_FILE} or {TOP_FILE} in the Keras cache ($KERAS_HOME/models or ~/.keras/models)."
            ),
        )

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self.num_classes = 0
        self._model: Any = None
        self._sha256 = ""
        self.path: Path | None = None

    def prepare(self, spec: api.DataSpec) -> None:
        if spec.channels not in (1, 3):
            raise api.ConfigError(
                f"the inception feature extractor takes images of 1 or 3 channels; these have {spec.channels} "
                f"({spec.height}x{spec.width}x{spec.channels}). Use another extractor (e.g. pixels) for them."
            )
        path, _ = find_weights(self.params.weights)
        self._model, top, self._sha256 = _cached(path)
        self.path = path
        self.num_classes = CLASSES if top else 0

    def identity(self) -> dict[str, str]:
        if not self._sha256:
            raise api.GanctlError("inception: identity() before prepare(); this is a bug in the caller.")
        return {"name": "inception", "sha256": self._sha256, "input": INPUT}

    def extract(self, images: np.ndarray) -> api.Features:
        if self._model is None:
            raise api.GanctlError("inception: extract() before prepare(); this is a bug in the caller.")
        channels = images.shape[-1]
        if channels not in (1, 3):
            raise api.ConfigError(f"the inception feature extractor takes 1 or 3 channels, got {channels}.")
        batch = resize_bilinear(images)
        if channels == 1:
            batch = np.repeat(batch, 3, axis=-1)
        outputs = self._model.predict_on_batch(batch)
        if self.num_classes:
            features, probabilities = (np.asarray(o, np.float32) for o in outputs)
            return api.Features(features, probabilities)
        return api.Features(np.asarray(outputs, np.float32))
