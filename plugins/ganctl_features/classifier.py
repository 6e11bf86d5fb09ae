"""The ``classifier`` feature extractor: a classifier trained by ganctl, run with onnxruntime.

Train one on real labelled data (``model: {plugin: classifier}``, e.g.
``recipes/digits-classifier.yaml``); its ONNX export (``RUN/exports/classifier.onnx``) maps
images to class probabilities and to the features of its penultimate layer. Running the ONNX
file rather than Keras means the features do not depend on the backend a generator was trained
or evaluated on, and the file's sha256 names the weights exactly.

Images are used at the classifier's own size: no resize. They must have the height, width and
channels it was trained on.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ganctl import api

EXPORT = Path("exports") / "classifier.onnx"
"""Where ``ganctl export RUN --onnx`` writes a classifier, relative to its run directory."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ClassifierFeatures(api.FeatureExtractor):
    """A ganctl-trained classifier's penultimate features and class probabilities, via onnxruntime."""

    batch_size = 512
    reads_classifier_exports = True  # ganctl evaluate CLASSIFIER.onnx scores the export through it

    class Params(api.Params):
        model: str = api.Field(
            description="A classifier's run directory (its exports/classifier.onnx) or the .onnx file itself; "
                        "train one with a `model: {plugin: classifier}` recipe, e.g. recipes/digits-classifier.yaml.",
        )

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._session: Any = None
        self._path: Path | None = None
        self._sha256 = ""
        self._shape: tuple[int, ...] = ()

    def _resolve(self) -> Path:
        given = self.params.model
        path = Path(os.path.expandvars(os.path.expanduser(given)))
        if path.is_dir():
            export = path / EXPORT
            if export.is_file():
                return export
            if (path / "run.json").is_file():
                raise api.ConfigError(
                    f"features: classifier: {path} is a run directory without a classifier export ({export} is "
                    f"missing). Export it first: ganctl export {path} --onnx"
                )
            raise api.ConfigError(
                f"features: classifier: {path} is a folder, but not a classifier's run directory; give the run "
                "directory of a classifier recipe (e.g. recipes/digits-classifier.yaml) or its .onnx export."
            )
        if not path.is_file():
            raise api.ConfigError(
                f"features: classifier: model {given!r} does not exist. Give the run directory of a trained "
                "classifier or its exports/classifier.onnx; train one with: ganctl train recipes/digits-classifier.yaml"
            )
        return path

    def prepare(self, spec: api.DataSpec) -> None:
        path = self._resolve()
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise api.ConfigError(f"the classifier feature extractor needs onnxruntime ({exc}); "
                                  "pip install onnxruntime-gpu (Linux x86-64) or onnxruntime.") from None
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            # The CPU provider: features must not depend on the machine's GPU or its kernels.
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises a different type per cause
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise api.ConfigError(f"features: classifier: {path} is not an ONNX model onnxruntime can load "
                                  f"({first}); export the classifier run again (ganctl export RUN --onnx).") from None
        meta = dict(session.get_modelmeta().custom_metadata_map or {})
        inputs = [i.name for i in session.get_inputs()]
        outputs = [o.name for o in session.get_outputs()]
        if meta.get("ganctl.kind") != "classifier" or inputs != [api.INPUT_IMAGES] or \
                outputs != [api.OUTPUT_PROBABILITIES, api.OUTPUT_FEATURES]:
            raise api.ConfigError(
                f"features: classifier: {path} is not a classifier exported by ganctl (it has inputs {inputs}, outputs "
                f"{outputs}, ganctl.kind {meta.get('ganctl.kind', 'missing')!r}; expected input images and outputs "
                "probabilities and features). Give the export of a `model: {plugin: classifier}` run."
            )
        try:
            shape = tuple(int(d) for d in json.loads(meta["ganctl.data_shape"]))
            classes = int(meta["ganctl.num_classes"])
        except (KeyError, TypeError, ValueError):
            raise api.ConfigError(f"features: classifier: {path} has damaged ganctl metadata; export the classifier "
                                  "run again (ganctl export RUN --onnx).") from None
        if shape != spec.shape:
            raise api.ConfigError(
                f"features: classifier: {path} was trained on {'x'.join(map(str, shape))} images, but these are "
                f"{'x'.join(map(str, spec.shape))} (height x width x channels). Train a classifier on this data "
                "(a recipe with `model: {plugin: classifier}` and the same data: section) and use that one."
            )
        self._session, self._path, self._shape = session, path, shape
        self._sha256 = _sha256(path)
        self.num_classes = classes

    def identity(self) -> dict[str, str]:
        if self._path is None:
            raise api.GanctlError("the classifier feature extractor was not prepared")
        shape = "x".join(map(str, self._shape))
        return {"name": "classifier", "sha256": self._sha256, "file": str(self._path),
                "input": f"images in [-1, 1] at the classifier's own size ({shape}), no resize; "
                         "features: its penultimate layer; onnxruntime CPU"}

    def extract(self, images: np.ndarray) -> api.Features:
        probabilities, features = self._session.run(
            [api.OUTPUT_PROBABILITIES, api.OUTPUT_FEATURES],
            {api.INPUT_IMAGES: np.ascontiguousarray(images, dtype=np.float32)})
        return api.Features(np.asarray(features, np.float32), np.asarray(probabilities, np.float32))
