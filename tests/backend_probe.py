"""Run by tests/test_engine.py once per backend: each player's loss and gradients for fixed
weights and inputs, written to an .npz for comparison across backends.

Usage: KERAS_BACKEND=<backend> python tests/backend_probe.py OUT.npz
"""

from __future__ import annotations

import sys
import zlib

import numpy as np

from ganctl.engine.backends import activate, resolve

activate(resolve()[0])

from ganctl.api import DataSpec  # noqa: E402
from ganctl.engine import engine_for  # noqa: E402
from ganctl.plugins import get_host  # noqa: E402
from ganctl.recipe.schema import OptimizerConfig  # noqa: E402
from ganctl.session.optimizers import make_optimizer  # noqa: E402


def main(out: str) -> None:
    import keras

    backend = keras.backend.backend()
    engine_module = engine_for(backend)
    host = get_host()
    spec = DataSpec(height=8, width=8, channels=1, num_classes=10)
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, size=(16, 8, 8, 1)).astype(np.float32)
    labels = (np.arange(16) % 10).astype(np.int32)
    z = rng.standard_normal((16, 8)).astype(np.float32)
    results = {}
    for name, params in (("dcgan", {"latent_dim": 8, "filters": 16, "conditional": True}),
                         ("gan", {"latent_dim": 8, "hidden": [32, 16], "loss": "hinge", "l2": 0.01})):
        factory = host.get("models", name).factory
        model = factory(factory.Params(**params), spec)
        optimizers = {p: make_optimizer(OptimizerConfig(), p) for p in model.players}
        engine = engine_module.Engine(model, optimizers, jit=False)
        state = engine.state_arrays()
        for name, variable in engine.state_variables().items():
            if name.startswith("model/") and variable.trainable:
                # the same values on every backend, whatever the order variables were made in
                weights = np.random.default_rng(zlib.crc32(variable.path.encode()))
                state[name] = weights.normal(scale=0.2, size=variable.shape).astype(np.float32)
        engine.load_state(state)
        for player in model.players:
            loss, grads = engine.gradients(player, images, labels if model.conditional else None, z)
            results[f"{name}/{player}/loss"] = np.float64(loss)
            for variable, grad in zip(model.networks()[player].trainable_variables, grads, strict=True):
                results[f"{name}/{player}/grad/{variable.path}"] = grad
    np.savez(out, **results)


if __name__ == "__main__":
    main(sys.argv[1])
