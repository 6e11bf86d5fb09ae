"""Run by tests/test_engine.py once per backend: each player's loss and gradients for fixed
weights and inputs, written to an .npz for comparison across backends.

Usage: KERAS_BACKEND=<backend> python tests/backend_probe.py OUT.npz

Every backend has its own random-number generator, so the same seed draws different numbers on
JAX, TensorFlow and PyTorch. To compare what the models compute with those numbers (a gradient
penalty's interpolation weights, an augmentation's offsets), the probe replaces
``keras.random.uniform`` / ``normal`` / ``randint`` with draws from NumPy that depend only on the
requested shape and the call's rank in the run: the numbers then agree, and the seed generators
are still called (so their state is part of what runs).
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
from ganctl.testing.child import HostRandom  # noqa: E402  # the test kit's: host-drawn noise, the same on every backend

CASES = (
    ("dcgan", {"latent_dim": 8, "filters": 16, "conditional": True}),
    ("gan", {"latent_dim": 8, "hidden": [32, 16], "loss": "hinge", "l2": 0.01}),
    ("dcgan", {"latent_dim": 8, "filters": 16, "loss": "wasserstein", "gradient_penalty": 10.0}),
    ("gan", {"latent_dim": 8, "hidden": [32, 16], "r1": {"gamma": 10.0}, "spectral_norm": True}),
    ("dcgan", {"latent_dim": 8, "filters": 16, "r1": {"gamma": 5.0, "every": 2}, "spectral_norm": True,
               "conditional": True}),
    ("dcgan", {"latent_dim": 8, "filters": 16, "conditional": True, "feature_matching": 1.0,
               "augment": {"policy": ["color", "translation", "cutout"], "adaptive": {"start": 0.5}}}),
    ("gan", {"latent_dim": 8, "hidden": [32, 16], "augment": {"policy": ["translation", "cutout"], "p": 1.0}}),
)
"""(model, params) pairs: the losses, the input-gradient penalties, spectral normalisation,
DiffAugment (fixed and adaptive p) and feature matching; then the moving average of the generator's weights (:func:`ema_update`)."""


def fixed_weights(engine: object, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``state`` with every trainable weight, and each spectral norm's power-iteration vector, set
    from its own path: the same values on every backend, whatever the order variables were made in."""
    for name, variable in engine.state_variables().items():
        if name.startswith("model/") and (variable.trainable or variable.path.endswith("vector_u")):
            weights = np.random.default_rng(zlib.crc32(variable.path.encode()))
            state[name] = weights.normal(scale=0.2, size=variable.shape).astype(np.float32)
    return state


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
    with HostRandom(keras):
        for case, (name, params) in enumerate(CASES):
            factory = host.get("models", name).factory
            model = factory(factory.Params(**params), spec)
            optimizers = {p: make_optimizer(OptimizerConfig(), p) for p in model.players}
            engine = engine_module.Engine(model, optimizers, jit=False)
            fixed = fixed_weights(engine, engine.state_arrays())
            for player in model.players:
                # Each player starts from the same state: computing a loss updates state (a spectral
                # norm's vector) on TensorFlow and PyTorch, where JAX's gradients() keeps none of it.
                engine.load_state(fixed)
                loss, grads = engine.gradients(player, images, labels if model.conditional else None, z)
                results[f"{case}-{name}/{player}/loss"] = np.float64(loss)
                for variable, grad in zip(model.networks()[player].trainable_variables, grads, strict=True):
                    results[f"{case}-{name}/{player}/grad/{variable.path}"] = grad
        results.update(ema_update(engine_module, host, spec, images, z))
    np.savez(out, **results)


def ema_update(engine_module: object, host: object, spec: object, images: np.ndarray,
               z: np.ndarray) -> dict[str, np.ndarray]:
    """The generator's moving average (``train.ema: 0.9``) after three of its updates."""
    factory = host.get("models", "gan").factory
    model = factory(factory.Params(latent_dim=8, hidden=[32, 16]), spec)
    optimizers = {p: make_optimizer(OptimizerConfig(learning_rate=0.01), p, ema=0.9 if p == "generator" else None)
                  for p in model.players}
    engine = engine_module.Engine(model, optimizers, jit=False)
    engine.load_state(fixed_weights(engine, engine.state_arrays()))
    for _ in range(3):
        engine.step("generator", images, None, z)
    state = engine.state_arrays()
    pairs = engine.average_names()
    assert pairs, "the generator's optimizer keeps no average"
    return {f"ema/{weight}": state[average] for weight, average in pairs.items()}


if __name__ == "__main__":
    main(sys.argv[1])
