"""The ``litert`` exporter: a LiteRT (TensorFlow Lite) flatbuffer, for phones and microcontrollers."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np

from ganctl import api

from ._quiet import captured_fds, quiet_conversion


class LiteRtExporter(api.Exporter):
    """LiteRT (.tflite) for mobile and edge devices; from TensorFlow runs."""

    suffix = ".tflite"

    class Params(api.Params):
        pass

    def unavailable(self, backend: str) -> str | None:
        if backend != "tensorflow":
            # Keras also converts PyTorch models through the litert-torch package, but only with a
            # fixed batch size; the TensorFlow converter keeps it free.
            return "Keras writes LiteRT with a free batch size from the tensorflow backend; export with --backend tensorflow"
        if importlib.util.find_spec("tensorflow") is None:
            return "needs TensorFlow; install with: pip install 'ganctl[tensorflow]'"
        return None

    def export(self, source: api.ExportSource, path: Path) -> None:
        with quiet_conversion("LiteRT export"):
            source.generator.export(str(path), format="litert", verbose=False)

    def load(self, path: Path) -> api.Runner:
        interpreter = _interpreter(path)
        details = interpreter.get_input_details()
        z_index = next((d for d in details if np.issubdtype(d["dtype"], np.floating)), details[0])
        others = [d for d in details if d is not z_index]
        output = interpreter.get_output_details()[0]["index"]

        def run(z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
            with captured_fds():  # the interpreter logs at INFO level on the terminal
                return _invoke(z, labels)

        def _invoke(z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
            n = len(z)
            interpreter.resize_tensor_input(z_index["index"], [n, z.shape[1]])
            for d in others:
                interpreter.resize_tensor_input(d["index"], [n])
            interpreter.allocate_tensors()
            interpreter.set_tensor(z_index["index"], z.astype(z_index["dtype"]))
            for d in others:
                interpreter.set_tensor(d["index"], np.asarray(labels).astype(d["dtype"]))
            interpreter.invoke()
            return interpreter.get_tensor(output).copy()

        return run


def _interpreter(path: Path):
    """LiteRT's own interpreter when installed (ai-edge-litert), else TensorFlow's."""
    if importlib.util.find_spec("ai_edge_litert") is not None:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter(model_path=str(path))
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice: it still works
        return tf.lite.Interpreter(model_path=str(path))
