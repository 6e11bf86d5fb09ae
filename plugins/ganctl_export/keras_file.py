"""The ``keras`` exporter: the generator (or classifier) as a ``.keras`` file, reloaded with ``safe_mode=True``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ganctl import api


class KerasExporter(api.Exporter):
    """Keras's native .keras file: architecture and weights, loadable on any backend."""

    suffix = ".keras"
    kinds = ("generator", "classifier")

    class Params(api.Params):
        pass

    def export(self, source: api.ExportSource, path: Path) -> None:
        source.generator.save(str(path))

    def load(self, path: Path) -> api.Runner:
        import keras

        # safe_mode refuses lambda layers and other code embedded in the file
        model = keras.saving.load_model(str(path), safe_mode=True, compile=False)
        conditional = len(model.inputs) > 1

        def run(z: np.ndarray, labels: np.ndarray | None) -> Any:
            inputs = [z, labels.astype(model.inputs[1].dtype)] if conditional and labels is not None else z
            outputs = model(inputs, training=False)
            if isinstance(outputs, (list, tuple)):  # a classifier: probabilities and features
                return tuple(keras.ops.convert_to_numpy(o) for o in outputs)
            return keras.ops.convert_to_numpy(outputs)

        return run
