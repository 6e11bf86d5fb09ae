"""ganctl's first-party exporters, registered through the plugin API like any third party's.

* ``onnx``: one self-contained ONNX file with stable input/output names and ganctl metadata,
  for onnxruntime (``ganctl generate MODEL.onnx``).
* ``keras``: the native ``.keras`` file, reloaded with ``safe_mode=True`` for the check.
* ``tf_saved_model``: a TensorFlow SavedModel folder (from TensorFlow or JAX runs).
* ``openvino``: OpenVINO IR (``pip install 'ganctl[openvino]'``).
* ``litert``: a LiteRT ``.tflite`` file (from TensorFlow runs).

ganctl checks every export against Keras on fixed latents before moving it into place.
Importing this package is cheap: converters are imported only when an export runs.
"""

from __future__ import annotations

from ganctl import api

from .keras_file import KerasExporter
from .litert import LiteRtExporter
from .onnx import OnnxExporter
from .openvino import OpenVinoExporter
from .saved_model import SavedModelExporter

GANCTL_API = "1.7"  # the ganctl.api version this plugin needs (docs/plugins.md)

__all__ = ["KerasExporter", "LiteRtExporter", "OnnxExporter", "OpenVinoExporter", "SavedModelExporter",
           "register_exporters"]


@api.hookimpl
def register_exporters(register: api.Register) -> None:
    """Register the first-party exporters."""
    register("onnx", OnnxExporter)
    register("keras", KerasExporter)
    register("tf_saved_model", SavedModelExporter)
    register("openvino", OpenVinoExporter)
    register("litert", LiteRtExporter)
