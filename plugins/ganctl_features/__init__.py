"""ganctl's first-party feature extractors: what metrics see of an image.

* ``classifier``: a classifier trained by ganctl on your labelled data (its ONNX export), run
  with onnxruntime: penultimate-layer features and class probabilities.
* ``pixels``: flattened (optionally pooled) pixels; no weights, for tiny images and tests.
* ``inception``: InceptionV3 pool features (2048-d) from a weights file you provide (never
  downloaded); with the top in the file, ImageNet class probabilities too.

Importing this package is cheap: networks are loaded in ``prepare``.
"""

from __future__ import annotations

from ganctl import api

from .classifier import ClassifierFeatures
from .inception import Inception
from .pixels import Pixels

GANCTL_API = "1.7"  # the ganctl.api version this plugin needs (docs/plugins.md)

__all__ = ["ClassifierFeatures", "Inception", "Pixels", "register_feature_extractors"]


@api.hookimpl
def register_feature_extractors(register: api.Register) -> None:
    """Register the first-party feature extractors."""
    register("classifier", ClassifierFeatures)
    register("pixels", Pixels)
    register("inception", Inception)
