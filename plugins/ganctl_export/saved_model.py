"""The ``tf_saved_model`` exporter: a TensorFlow SavedModel folder for TF Serving and friends."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ganctl import api

from ._quiet import quiet_conversion

BACKENDS = ("tensorflow", "jax")  # Keras writes SavedModels from these (JAX through jax2tf)


class SavedModelExporter(api.Exporter):
    """TensorFlow SavedModel (a folder) with a "serve" endpoint; from TensorFlow or JAX runs."""

    suffix = ""

    class Params(api.Params):
        pass

    def unavailable(self, backend: str) -> str | None:
        if backend not in BACKENDS:
            return (f"Keras writes SavedModels from the {' and '.join(BACKENDS)} backends only; "
                    f"export with --backend tensorflow (the weights are portable)")
        if importlib.util.find_spec("tensorflow") is None:
            return "needs TensorFlow; install with: pip install 'ganctl[tensorflow]'"
        return None

    def export(self, source: api.ExportSource, path: Path) -> None:
        with quiet_conversion("SavedModel export"):
            source.generator.export(str(path), format="tf_saved_model", verbose=False)

    def load(self, path: Path) -> api.Runner:
        import tensorflow as tf

        with quiet_conversion("loading the SavedModel"):
            loaded = tf.saved_model.load(str(path))
        signatures = loaded.signatures
        if not signatures:
            raise api.GanctlError(f"{path} has no serving signature.")
        serve = signatures.get("serving_default") or next(iter(signatures.values()))
        specs = serve.structured_input_signature[1]  # keyword inputs: name -> TensorSpec
        floats = [name for name, spec in specs.items() if spec.dtype.is_floating]
        ints = [name for name, spec in specs.items() if spec.dtype.is_integer]
        z_name = api.INPUT_Z if api.INPUT_Z in specs else floats[0]
        label_name = (api.INPUT_LABEL if api.INPUT_LABEL in specs else ints[0]) if len(specs) > 1 else None

        def run(z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
            feed = {z_name: tf.constant(z, dtype=specs[z_name].dtype)}
            if label_name is not None:
                feed[label_name] = tf.constant(labels, dtype=specs[label_name].dtype)
            (images,) = serve(**feed).values()
            return images.numpy()

        return run
