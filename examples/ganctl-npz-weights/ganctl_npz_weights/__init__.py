"""The `npz-weights` exporter: The generator's architecture and weights in one NumPy .npz file."""

import json

import numpy as np

from ganctl import api


class NpzWeights(api.Exporter):
    """The generator's architecture and weights in one NumPy .npz file."""  # the first line is what `ganctl plugins` shows

    suffix = ".npz"  # what the written path ends with ("" for a folder)

    class Params(api.Params):  # validates the recipe's export: entry
        compress: bool = api.Field(True, description="Compress the arrays.")

    def export(self, source, path):
        # source.generator is a called keras.Model; write it at path (a scratch file ganctl then checks).
        network = source.network
        arrays = {f"weight_{i}": np.asarray(w) for i, w in enumerate(network.get_weights())}
        save = np.savez_compressed if self.params.compress else np.savez
        with open(path, "wb") as handle:
            save(handle, architecture=np.array(network.to_json()),
                 metadata=np.array(json.dumps(dict(source.metadata))), **arrays)

    def load(self, path):
        import keras

        with np.load(path) as archive:
            network = keras.models.model_from_json(str(archive["architecture"]))
            count = sum(1 for key in archive.files if key.startswith("weight_"))
            network.set_weights([archive[f"weight_{i}"] for i in range(count)])
        conditional = len(network.inputs) > 1

        def run(z, labels):
            inputs = [z, labels] if conditional and labels is not None else z
            return keras.ops.convert_to_numpy(network(inputs, training=False))

        return run


@api.hookimpl
def register_exporters(register):
    register("npz-weights", NpzWeights)
