"""Everything one process builds from a recipe: backend, data, model, optimizers, engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ganctl.api import ClassifierModel, Dataset, DataSpec, GenerativeModel, Model, TableSpec
from ganctl.engine.backends import activate, placement, resolve_jit
from ganctl.errors import ConfigError
from ganctl.plugins import PluginHost
from ganctl.recipe.load import Recipe
from ganctl.session.data import build_dataset


@dataclass
class Session:
    """What :func:`open_session` built for one recipe: the data (None when only sampling), the
    model, its engine, and whether the engine's steps are compiled."""

    recipe: Recipe
    backend: str
    spec: DataSpec | TableSpec
    dataset: Dataset | None
    model: Model
    engine: Any
    jit: bool
    precision: str = "float32"
    """The dtype policy the model was built under (``train.precision``, or float32 when opened for export)."""


def build_model(recipe: Recipe, spec: DataSpec | TableSpec, host: PluginHost) -> Model:
    """Seed Keras, then build the recipe's model for data of ``spec``."""
    import keras

    check_data_kind(recipe, spec, host)

    keras.utils.set_random_seed(recipe.seed)
    return host.build("models", recipe.model.plugin, recipe.model.params, spec,
                      expected=(GenerativeModel, ClassifierModel))


def check_data_kind(recipe: Recipe, spec: DataSpec | TableSpec, host: PluginHost) -> None:
    """Refuse a model that does not take the kind of data the recipe's dataset gives (API 1.7)."""
    takes = tuple(getattr(host.get("models", recipe.model.plugin).factory, "data_kinds", ("image",)))
    if spec.kind in takes:
        return
    words = {"image": "images", "table": "tables"}
    others = [name for name in host.names("models")
              if spec.kind in getattr(host.get("models", name).factory, "data_kinds", ("image",))]
    raise ConfigError(
        f"{recipe.source}: model '{recipe.model.plugin}' takes {' or '.join(words.get(k, k) for k in takes)}, but "
        f"dataset '{recipe.data.plugin}' gives {words.get(spec.kind, spec.kind)}. Choose a model for "
        f"{words.get(spec.kind, spec.kind)} in model.plugin ({', '.join(others) or 'none is installed'}), or a "
        f"dataset of {words.get(takes[0], takes[0])} in data.plugin."
    )


def open_session(recipe: Recipe, host: PluginHost, backend: str, spec: DataSpec | TableSpec | None = None,
                 precision: str | None = None) -> Session:
    """Build a session; with ``spec`` given the data is not loaded (for sampling a run).
    ``precision``: the dtype policy to build the model under instead of ``train.precision``."""
    activate(backend)
    from ganctl.engine import engine_for
    from ganctl.session.freeze import freeze_layers
    from ganctl.session.optimizers import make_optimizer
    from ganctl.session.precision import check_precision, loss_scaled, policy

    engine_module = engine_for(backend)  # before any variable exists: engines may configure the backend
    precision = recipe.train.precision if precision is None else precision
    check_precision(precision, backend, str(recipe.source))  # before anything is loaded or written
    # train.distribution: Keras's distribution is set before the model's variables exist (so they are
    # created replicated) and cleared for every other session. Only training splits batches; a run opened
    # to sample, evaluate or export uses one device, whatever devices it was trained on.
    distribution = recipe.train.distribution if spec is None else None
    devices = None if distribution is None else distribution.devices
    if devices is None and spec is None and backend == "jax":
        from ganctl.engine.jax.processes import current

        devices = "auto" if current().many else None  # several processes: the batch over all their devices
    placed = placement(devices, recipe.train.batch_size, backend, str(recipe.source))
    dataset = build_dataset(recipe.data, host) if spec is None else None
    spec = dataset.spec if dataset is not None else spec
    assert spec is not None
    with policy(precision):  # float32 again afterwards: no other session inherits it
        model = build_model(recipe, spec, host)
    freeze_layers(recipe, model)  # before the optimizers and the engine take the trainable weights
    averaged = average_player(recipe, model) if recipe.train.ema is not None else None
    pruned = prune_plans(recipe, model, dataset)
    optimizers = {p: make_optimizer(recipe.train.optimizer_for(p), f"{p}_optimizer",
                                    recipe.train.ema if p == averaged else None,
                                    loss_scaled(recipe.train.precision),  # the run's optimizer state, always
                                    pruned.get(p))
                  for p in model.players}
    jit = resolve_jit(recipe.train.jit, backend)
    engine = engine_module.Engine(model, optimizers, jit, **({} if placed is None else {"placement": placed}))
    return Session(recipe, backend, spec, dataset, model, engine, jit, precision)


def prune_plans(recipe: Recipe, model: Model, dataset: Dataset | None) -> dict[str, Any]:
    """Each pruned player's :class:`ganctl.session.pruning.Plan` (``train.prune``), for training
    only: a run opened to sample, evaluate or export holds the pruned weights and needs no masks."""
    prune = recipe.train.prune
    if prune is None or dataset is None:
        return {}
    from ganctl.session.pruning import plans

    train = recipe.train
    steps = train.steps_per_epoch or dataset.steps_per_epoch(train.batch_size)
    return plans(prune, model.networks(), model.schedule(), steps, str(recipe.source))


def average_player(recipe: Recipe, model: Model) -> str:
    """The player whose optimizer keeps ``train.ema``'s average: the one that trains every weight of
    the generator (a GAN's ``generator``; a one-player model's only player)."""
    if not isinstance(model, GenerativeModel):
        raise ConfigError(
            f"{recipe.source}: train.ema averages a generator's weights, but model '{recipe.model.plugin}' is a "
            f"{model.kind}, which has no generator. Remove train.ema from the recipe."
        )
    networks = model.networks()
    generator = {id(v) for v in model.generator.trainable_variables}
    for player in model.players:
        if generator <= {id(v) for v in networks[player].trainable_variables}:
            return player
    raise ConfigError(
        f"{recipe.source}: train.ema: no player of model '{recipe.model.plugin}' ({', '.join(model.players)}) "
        "trains all of its generator's weights, so no optimizer can keep their average. Remove train.ema."
    )


def spec_from_dict(data: dict[str, Any]) -> DataSpec | TableSpec:
    """The DataSpec (or TableSpec) of a run, from the ``data_spec`` of its ``run.json`` (``to_dict``)."""
    if data.get("kind") == TableSpec.kind:
        return TableSpec.from_dict(data)
    height, width, channels = data["shape"]
    return DataSpec(
        height=height, width=width, channels=channels, num_classes=data.get("num_classes", 0),
        class_names=tuple(data.get("class_names", ())),
    )
