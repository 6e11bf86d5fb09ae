"""Everything one process builds from a recipe: backend, data, model, optimizers, engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ganctl.api import ClassifierModel, Dataset, DataSpec, GenerativeModel, Model
from ganctl.backend import activate
from ganctl.data import build_dataset
from ganctl.errors import ConfigError
from ganctl.plugins import PluginHost
from ganctl.recipe import Recipe


@dataclass
class Session:
    recipe: Recipe
    backend: str
    spec: DataSpec
    dataset: Dataset | None
    model: Model
    engine: Any
    jit: bool


def resolve_jit(setting: str | bool, backend: str) -> bool:
    """``train.jit: auto`` per backend, as measured (docs/performance.md).

    JAX: always jit (un-jitted JAX dispatches op by op). TensorFlow: graph mode (the engine adds
    XLA only on GPUs; on CPUs XLA made a transposed-convolution DCGAN 3-4x slower). PyTorch:
    eager (``torch.compile`` gained 4 % after a minute of compiling); ``true`` asks for
    ``torch.compile``.
    """
    if setting != "auto":
        return bool(setting)
    return backend in ("jax", "tensorflow")


def build_model(recipe: Recipe, spec: DataSpec, host: PluginHost) -> Model:
    """Seed Keras, then build the recipe's model for data of ``spec``."""
    import keras

    keras.utils.set_random_seed(recipe.seed)
    factory = host.get("models", recipe.model.plugin).factory
    model = factory(recipe.model.params, spec)
    if not isinstance(model, (GenerativeModel, ClassifierModel)):
        raise ConfigError(
            f"model plugin '{recipe.model.plugin}' built a {type(model).__name__}, not a "
            "ganctl.api.GenerativeModel or ganctl.api.ClassifierModel; this is a bug in the plugin."
        )
    return model


def open_session(recipe: Recipe, host: PluginHost, backend: str, spec: DataSpec | None = None) -> Session:
    """Build a session; with ``spec`` given the data is not loaded (for sampling a run)."""
    activate(backend)
    from ganctl.engine import engine_for
    from ganctl.optim import make_optimizer

    engine_module = engine_for(backend)  # before any variable exists: engines may configure the backend
    dataset = build_dataset(recipe.data, host) if spec is None else None
    spec = dataset.spec if dataset is not None else spec
    assert spec is not None
    model = build_model(recipe, spec, host)
    optimizers = {p: make_optimizer(recipe.train.optimizer_for(p), f"{p}_optimizer") for p in model.players}
    jit = resolve_jit(recipe.train.jit, backend)
    engine = engine_module.Engine(model, optimizers, jit)
    return Session(recipe, backend, spec, dataset, model, engine, jit)


def spec_from_dict(data: dict[str, Any]) -> DataSpec:
    height, width, channels = data["shape"]
    return DataSpec(
        height=height, width=width, channels=channels, num_classes=data.get("num_classes", 0),
        class_names=tuple(data.get("class_names", ())),
    )
