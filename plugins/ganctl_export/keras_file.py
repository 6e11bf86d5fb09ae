"""The ``keras`` exporter: the generator as a ``.keras`` file, reloaded with ``safe_mode=True``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ganctl import api


class KerasExporter(api.Exporter):
    """Keras's native .keras file: architecture and weights, loadable on any backend."""

    suffix = ".keras"

    class Params(api.Params):
        pass

    def export(self, source: api.ExportSource, path: Path) -> None:
        source.generator.save(str(path))

    def load(self, path: Path) -> api.Runner:
        import keras

        # safe_mode refuses lambda layers and other code embedded in the file
        model = keras.saving.load_model(str(path), safe_mode=True, compile=False)
        conditional = len(model.inputs) > 1

        def run(z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
            inputs = [z, labels.astype(model.inputs[1].dtype)] if conditional and labels is not None else z
            return keras.ops.convert_to_numpy(model(inputs, training=False))

        return run
