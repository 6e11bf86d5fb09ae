"""JAX engine: pure, jitted steps over explicit state.

Each player's step is a pure function ``(trainable, other, optimizer state, batch) -> (new
state, logs)``: the model runs inside a :class:`StrictScope` that maps every Keras variable to a
traced value, ``jax.value_and_grad`` differentiates the loss with respect to the player's
trainable values only, and ``optimizer.stateless_apply`` updates them. Between steps the state
lives in this engine, not in the Keras variables; :meth:`JaxEngine.sync` writes it back.

The scope is strict because JAX fails silently otherwise: a variable missing from the mapping
would be read as a constant and frozen into the compiled step (a seed generator would then give
the same noise at every step). Here it is an error at trace time that names the variable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from keras import StatelessScope
from keras.src.backend.common.stateless_scope import get_stateless_scope

from ganctl.engine.interface import Engine as BaseEngine
from ganctl.engine.interface import stacked, storable
from ganctl.engine.jax.distribution import Placement
from ganctl.errors import GanctlError
from ganctl.fsutil import cache_dir

# Non-partitionable threefry compiles each new random-initialiser shape 3x faster on CPUs
# (model building for the quickstart: 8.7 s -> 2.7 s); it only changes which numbers are drawn.
jax.config.update("jax_threefry_partitionable", False)


def _persistent_cache() -> None:
    """Keep compiled steps on disk, so a second run of a recipe skips XLA compilation.

    It lives in ganctl's cache (:func:`ganctl.fsutil.cache_dir`) under ``jax/``; an empty
    ``GANCTL_CACHE_DIR`` turns it off. A user's own JAX cache setting is left alone.
    """
    if jax.config.jax_compilation_cache_dir:
        return
    folder = cache_dir("jax")
    if folder is None:
        return
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    jax.config.update("jax_compilation_cache_max_size", 2 * 1024**3)


_persistent_cache()


def framework_version() -> str:
    return jax.__version__


def devices() -> list[str]:
    """Devices JAX can run on, e.g. ``['cpu:0']`` or ``['cuda:0 (NVIDIA H200)']``."""
    out = []
    for device in jax.devices():
        kind = getattr(device, "device_kind", "")
        label = f"{device.platform}:{device.id}"
        out.append(f"{label} ({kind})" if kind and device.platform != "cpu" else label)
    return out


def accelerated() -> bool:
    return jax.default_backend() != "cpu"


class StrictScope(StatelessScope):
    """A StatelessScope that refuses to read any variable it was not given a value for."""

    def __init__(self, mapping: list[tuple[Any, Any]]) -> None:
        super().__init__(state_mapping=mapping, initialize_variables=False)
        self.variables = {id(variable): variable for variable, _ in mapping}

    def get_current_value(self, variable: Any) -> Any:
        value = self.state_mapping.get(id(variable))
        if value is None:
            raise GanctlError(
                f"the variable '{variable.path}' is not part of the model's registered state, so JAX "
                "would freeze it into the compiled step. Every network must be returned by the "
                "model's networks(), and every SeedGenerator used outside them by seed_generators()."
            )
        return value

    def add_update(self, update: tuple[Any, Any]) -> None:
        variable, _ = update
        self.variables.setdefault(id(variable), variable)
        super().add_update(update)

    def current(self) -> list[tuple[Any, Any]]:
        return [(variable, self.state_mapping[key]) for key, variable in self.variables.items()]


def input_gradient(fn: Callable[[Any], Any], x: Any) -> Any:
    """d sum(fn(x)) / dx, differentiable; state updates inside ``fn`` reach the outer scope."""
    outer = get_stateless_scope()
    if not isinstance(outer, StrictScope):
        return jax.grad(lambda value: jnp.sum(fn(value)))(x)
    mapping = outer.current()

    def inner(value: Any) -> tuple[Any, list[Any]]:
        # A fresh scope over the outer values: an inner scope does not inherit the outer
        # mapping, and updates (BatchNorm statistics) must leave as aux, not as leaked tracers.
        with StrictScope(mapping) as scope:
            total = jnp.sum(fn(value))
        return total, [scope.get_current_value(variable) for variable, _ in mapping]

    gradient, values = jax.grad(inner, has_aux=True)(x)
    for (variable, before), after in zip(mapping, values, strict=True):
        if after is not before:
            outer.add_update((variable, after))
    return gradient


class JaxEngine(BaseEngine):
    backend = "jax"

    def __init__(self, model: Any, optimizers: Mapping[str, Any], jit: bool,
                 placement: Placement | None = None) -> None:
        super().__init__(model, optimizers, jit)
        self.placement = placement
        """Where state and batches live over several devices (``train.distribution``); None: one device."""
        self._variables = self.model_variables()
        index = {id(v): i for i, v in enumerate(self._variables)}
        # Per player: positions of its trainable variables and of everything else, in the
        # order the compiled step takes and returns them (computed once: Keras's variable
        # properties walk every layer).
        self._layout: dict[str, tuple[list[int], list[int]]] = {}
        for player in model.players:
            trainable = [index[id(v)] for v in self.networks[player].trainable_variables]
            chosen = set(trainable)
            self._layout[player] = (trainable, [i for i in range(len(self._variables)) if i not in chosen])
        self._values: list[Any] = []
        self._opt_values: dict[str, list[Any]] = {}
        self._after_load()
        self._steps: dict[str, Callable[..., Any]] = {}
        self._grads: dict[str, Callable[..., Any]] = {}

    def _after_load(self) -> None:
        self._values = [v.value for v in self._variables]
        self._opt_values = {p: [v.value for v in self.optimizers[p].variables] for p in self.model.players}
        if self.placement is not None:  # replicated on every device, as the compiled steps return them
            self._values = self.placement.state(self._values)
            self._opt_values = {p: self.placement.state(values) for p, values in self._opt_values.items()}

    def sync(self) -> None:
        for variable, value in zip(self._variables, self._values, strict=True):
            variable.assign(value)
        for player in self.model.players:
            for variable, value in zip(self.optimizers[player].variables, self._opt_values[player], strict=True):
                variable.assign(value)

    def _loss_fn(self, player: str) -> Callable[..., Any]:
        trainable_idx, other_idx = self._layout[player]
        trainable = [self._variables[i] for i in trainable_idx]
        other = [self._variables[i] for i in other_idx]
        model = self.model

        def compute(train_values: list[Any], other_values: list[Any], images: Any, labels: Any, z: Any,
                    scale: Any = None):  # scale: the loss scale's value under mixed_float16 (loss_scale)
            mapping = list(zip(trainable, train_values, strict=True)) + list(zip(other, other_values, strict=True))
            with StrictScope(mapping) as scope:
                loss, logs = model.loss(player, images, labels, z)
            return loss if scale is None else loss * scale, (logs, [scope.get_current_value(v) for v in other])

        return jax.value_and_grad(compute, has_aux=True)

    def _update(self, player: str) -> Callable[..., Any]:
        """One update of ``player``, pure and not compiled: the single step jits it, fused steps
        (``train.steps_per_execution``, :mod:`ganctl.engine.jax.fused`) scan it."""
        grad_fn = self._loss_fn(player)
        optimizer = self.optimizers[player]

        def step(train_values, other_values, opt_values, images, labels, z):
            (_, (logs, other_values)), grads = grad_fn(train_values, other_values, images, labels, z,
                                                       self.loss_scale(player, opt_values))
            train_values, opt_values = optimizer.stateless_apply(opt_values, grads, train_values)
            return train_values, other_values, opt_values, logs

        return step

    def _build_step(self, player: str) -> Callable[..., Any]:
        step = self._update(player)
        if not self.jit:
            return step
        # Over several devices: one SPMD program on the batch's rows; the state stays replicated.
        return jax.jit(step) if self.placement is None else jax.jit(step, out_shardings=self.placement.replicated)

    def _inputs(self, player: str) -> tuple[list[Any], list[Any]]:
        trainable_idx, other_idx = self._layout[player]
        values = self._values
        return [values[i] for i in trainable_idx], [values[i] for i in other_idx]

    def _player_step(self, player: str, images: Any, labels: Any, z: Any) -> Mapping[str, Any]:
        if player not in self._steps:
            self._steps[player] = self._build_step(player)
        if self.placement is not None:
            images, labels, z = self.placement.batch(images, labels, z)
        train_values, other_values = self._inputs(player)
        train_values, other_values, opt_values, logs = self._steps[player](
            train_values, other_values, self._opt_values[player], images, labels, z
        )
        trainable_idx, other_idx = self._layout[player]
        for i, value in zip(trainable_idx, train_values, strict=True):
            self._values[i] = value
        for i, value in zip(other_idx, other_values, strict=True):
            self._values[i] = value
        self._opt_values[player] = list(opt_values)
        return logs

    def fuses(self) -> bool:
        return self.jit and self.placement is None  # over several devices: one placed step at a time

    def _fused_steps(self, plan: tuple[str, ...], inputs: Sequence[tuple[Any, Any, Sequence[Any]]]) -> list[Any]:
        if not self.fuses():
            return super()._fused_steps(plan, inputs)
        from ganctl.engine.jax.fused import fused_steps  # k steps in one lax.scan

        return fused_steps(self, plan, *stacked(inputs))

    def to_host(self, logs: Mapping[str, Any]) -> dict[str, float]:
        if self.placement is not None:
            return {key: float(self.placement.host(value)) for key, value in logs.items()}
        return {key: float(value) for key, value in jax.device_get(dict(logs)).items()}

    def state_arrays(self) -> dict[str, np.ndarray]:
        if self.placement is None:
            return super().state_arrays()
        self.sync()
        return {name: storable(self.placement.host(v.value)) for name, v in self.state_variables().items()}

    def stage(self, images: Any, labels: Any, latents: list[Any]) -> tuple[Any, Any, Any]:
        # Asynchronous: returns at once, the copy runs while the current step computes.
        if self.placement is not None:  # each device gets its rows
            images, labels = self.placement.batch(images, labels)
            return images, labels, [self.placement.batch(z)[0] for z in latents]
        return jax.device_put((images, labels, latents))

    def gradients(self, player: str, images: Any, labels: Any, z: Any) -> tuple[float, list[np.ndarray]]:
        if player not in self._grads:
            self._grads[player] = jax.jit(self._loss_fn(player)) if self.jit else self._loss_fn(player)
        if self.placement is not None:
            images, labels, z = self.placement.batch(images, labels, z)
        (loss, _), grads = self._grads[player](*self._inputs(player), images, labels, z)
        host = np.asarray if self.placement is None else self.placement.host
        return float(host(loss)), [host(g) for g in grads]


Engine = JaxEngine
