"""The engine interface: what a backend package provides, and what every engine shares.

A backend package (``ganctl/engine/<backend>/``) provides, in its ``engine.py``, everything
:class:`BackendModule` lists: an ``Engine`` class that subclasses :class:`Engine` and implements
:meth:`Engine._player_step` (compute one player's loss and gradients and apply them) and
:meth:`Engine.gradients` (the same without applying, for tests and diagnostics), plus
``input_gradient``, ``devices``, ``accelerated`` and ``framework_version``. Code that depends on
the backend's numerics and devices (mixed precision, distribution over devices or processes)
belongs beside that ``engine.py``, in the same package. Nothing here imports a backend
framework directly; ``ganctl.engine.engine_for(backend)`` loads a backend package.
"""

from __future__ import annotations

import contextlib
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from ganctl.api import Model
from ganctl.errors import GanctlError


class BackendModule(Protocol):
    """What ``ganctl.engine.<backend>.engine`` provides (``tests/test_engine.py`` checks each)."""

    Engine: type[Engine]
    """The backend's engine: trains a model's players, one step at a time."""

    @staticmethod
    def input_gradient(fn: Any, x: Any) -> Any:
        """d sum(fn(x)) / dx, itself differentiable (behind ``ganctl.api.input_gradient``)."""

    @staticmethod
    def devices() -> list[str]:
        """The devices this backend sees, in words (``run.json``, ``ganctl doctor``)."""

    @staticmethod
    def accelerated() -> bool:
        """Whether a GPU (or another accelerator) is in use."""

    @staticmethod
    def framework_version() -> str:
        """The version of the framework behind the backend."""


MODEL_PREFIX = "model/"
"""State names of the model's variables start with this; optimizer state with ``optimizer/``."""


class Engine(ABC):
    """Trains one :class:`~ganctl.api.Model`, one optimizer per player.

    Args:
        model: the built model (all networks built, so every variable exists).
        optimizers: one Keras optimizer per player (``model.players``).
        jit: whether to compile steps (the trainer resolves ``auto`` per backend and device).
    """

    backend: str = ""

    def __init__(self, model: Model, optimizers: Mapping[str, Any], jit: bool) -> None:
        missing = [p for p in model.players if p not in optimizers]
        if missing:
            raise GanctlError(f"no optimizer for player(s) {', '.join(missing)}")
        self.model = model
        self.jit = jit
        self.networks = model.networks()
        self.optimizers = dict(optimizers)
        for player in model.players:
            self.optimizers[player].build(self.networks[player].trainable_variables)
        self.weights: str | None = "raw" if self.average_player is not None else None
        """Which generator weights the model holds when it has an average (``train.ema``): ``raw``
        (training's) or ``ema`` (inside :meth:`averaged`, or a run opened with them); None without one."""
        self.fused: dict[Any, Any] = {}
        """The compiled functions of fused steps (``train.steps_per_execution``), per plan, kept by the
        backend's ``fused.py``: on the engine, so that they (and their compiled programs) go with it."""

    # -- state ----------------------------------------------------------------------------------

    def model_variables(self) -> list[Any]:
        """Every variable of the model: all networks' weights, non-trainable state and seeds."""
        seen: set[int] = set()
        out = []
        for network in self.networks.values():
            for variable in network.variables:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    out.append(variable)
        for generator in self.model.seed_generators():
            if id(generator.state) not in seen:
                seen.add(id(generator.state))
                out.append(generator.state)
        return out

    def state_variables(self) -> dict[str, Any]:
        """Everything a checkpoint holds, under stable names: model variables, then optimizers."""
        state = {canonical_name(f"{MODEL_PREFIX}{i:04d}/{v.path}"): v for i, v in enumerate(self.model_variables())}
        for player in self.model.players:
            for i, v in enumerate(self.optimizers[player].variables):
                state[canonical_name(f"optimizer/{player}/{i:04d}/{v.path}")] = v
        return state

    def sync(self) -> None:  # noqa: B027 - a no-op unless the engine keeps state apart
        """Write state held outside the Keras variables back into them (JAX keeps it apart)."""

    def load_state(self, arrays: Mapping[str, np.ndarray], only: list[str] | None = None) -> None:
        """Assign checkpointed values to the state variables (all, or the names in ``only``)."""
        self.sync()
        for name, variable in self.state_variables().items():
            if only is None or name in only:
                variable.assign(arrays[name])
        self._after_load()

    def model_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of each model variable (``model/...``; no optimizer state), by state name."""
        return {name: tuple(v.shape) for name, v in self.state_variables().items() if name.startswith(MODEL_PREFIX)}

    def load_model_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Assign a checkpoint's model variables only (sampling, exporting: optimizers untouched)."""
        self.load_state(arrays, only=list(self.model_shapes()))

    def _after_load(self) -> None:  # noqa: B027 - a no-op unless the engine caches values
        """Hook for engines that cache variable values (JAX)."""

    # -- the generator's moving average (train.ema) ---------------------------------------------

    @property
    def average_player(self) -> str | None:
        """The player whose optimizer keeps the moving average of the generator's weights
        (Keras's ``use_ema``, set by ``train.ema``); None when there is none."""
        return next((p for p in self.model.players if getattr(_inner(self.optimizers[p]), "use_ema", False)), None)

    def average_pairs(self) -> list[tuple[Any, Any]]:
        """``(weight, its moving average)`` for each trainable weight of the generator; [] without one."""
        player = self.average_player
        if player is None:
            return []
        optimizer = _inner(self.optimizers[player])
        generator = {id(v) for v in self.model.generator.trainable_variables}  # type: ignore[attr-defined]
        return [(variable, average) for variable, average in
                zip(optimizer._trainable_variables, optimizer._model_variables_moving_average, strict=True)
                if average is not None and id(variable) in generator]

    def average_names(self) -> dict[str, str]:
        """The state name of each averaged generator weight, mapped to its average's (checkpoint keys)."""
        names = {id(v): name for name, v in self.state_variables().items()}
        return {names[id(variable)]: names[id(average)] for variable, average in self.average_pairs()}

    def with_average(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A checkpoint's ``arrays`` with each averaged generator weight replaced by its average
        (for :meth:`load_model_state`); KeyError names an average the checkpoint lacks."""
        return {**arrays, **{name: arrays[average] for name, average in self.average_names().items()}}

    @contextlib.contextmanager
    def averaged(self) -> Any:
        """The generator's averaged weights in place of its raw ones while inside, then exactly the
        raw ones again: training's state is unchanged. Does nothing without an average."""
        pairs = self.average_pairs()
        if not pairs or self.weights == "ema":
            yield
            return
        import keras

        self.sync()
        raw = [np.array(keras.ops.convert_to_numpy(variable.value)) for variable, _ in pairs]
        for variable, average in pairs:
            variable.assign(average.value)
        self._after_load()
        self.weights = "ema"
        try:
            yield
        finally:
            for (variable, _), value in zip(pairs, raw, strict=True):
                variable.assign(value)
            self._after_load()
            self.weights = "raw"

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The current value of every state variable, as NumPy arrays."""
        import keras

        self.sync()
        return {name: storable(keras.ops.convert_to_numpy(v.value)) for name, v in self.state_variables().items()}

    # -- steps ----------------------------------------------------------------------------------

    def stage(self, images: np.ndarray, labels: np.ndarray | None, latents: list[np.ndarray]) -> tuple[Any, Any, Any]:
        """Start copying a step's inputs to the device, ahead of the step (``train.prefetch``; called
        from the feeding thread, :mod:`ganctl.training.feed`); returns them as :meth:`step` takes
        them. The values are unchanged. By default they stay NumPy and the step copies them."""
        return images, labels, latents

    def step(self, player: str, images: np.ndarray, labels: np.ndarray | None, z: np.ndarray) -> dict[str, float]:
        """One update of ``player`` on a batch; returns its logged values as floats."""
        return self.to_host(self._player_step(player, images, labels, z))

    def to_host(self, logs: Mapping[str, Any]) -> dict[str, float]:
        """Logged values as Python floats (this waits for the step to finish)."""
        return {key: float(value) for key, value in logs.items()}

    def steps(self, plan: Sequence[str], inputs: Sequence[tuple[Any, Any, Sequence[Any]]]) -> list[dict[str, np.ndarray]]:
        """k consecutive steps in one call (``train.steps_per_execution``). ``plan``: one step's
        updates, the player of each in order; ``inputs``: each step's ``(images, labels, latents)``
        as :meth:`stage` returns them, one latent array per update of the plan. Returns, per update
        of the plan, its logged values over the k steps (NumPy ``[k]``); this waits for the steps."""
        return [{key: np.asarray(value) for key, value in logs.items()} for logs in self._fused_steps(tuple(plan), inputs)]

    def fuses(self) -> bool:
        """Whether :meth:`steps` runs its k steps as one compiled call (JAX and TensorFlow with
        compiled steps on one device) rather than as k calls of the single step."""
        return False

    def _fused_steps(self, plan: tuple[str, ...], inputs: Sequence[tuple[Any, Any, Sequence[Any]]]) -> list[Any]:
        """What :meth:`steps` computes: per update of the plan, its values over the k steps (arrays
        or lists). By default the single step in a loop (PyTorch, engines that do not compile, JAX
        over several devices): exactly the updates of k calls of :meth:`step`."""
        found: list[list[Mapping[str, Any]]] = [[] for _ in plan]
        for images, labels, latents in inputs:
            for j, player in enumerate(plan):
                found[j].append(self._player_step(player, images, labels, latents[j]))
        hosted = [[self.to_host(logs) for logs in each] for each in found]  # after every step was dispatched
        return [{key: [logs[key] for logs in each] for key in each[0]} for each in hosted]

    def loss_scale(self, player: str, values: Sequence[Any] | None = None) -> Any:
        """The dynamic loss scale of ``player``'s optimizer when it is a ``LossScaleOptimizer``
        (``train.precision: mixed_float16``), else None: the variable, or with ``values`` (the
        optimizer's variables' values, where the engine keeps them apart) its value among them."""
        optimizer = self.optimizers[player]
        if not hasattr(optimizer, "inner_optimizer"):
            return None
        if values is None:
            return optimizer.dynamic_scale
        index = next(i for i, v in enumerate(optimizer.variables) if v is optimizer.dynamic_scale)
        return values[index]

    def scaled_loss(self, player: str, loss: Any, values: Sequence[Any] | None = None) -> Any:
        """What a step differentiates for ``player``: ``loss`` times the loss scale under
        mixed_float16 (the optimizer divides the gradients by it again and skips an update whose
        gradients overflowed), ``loss`` itself otherwise. Logged values stay unscaled."""
        scale = self.loss_scale(player, values)
        if scale is None:
            return loss
        import keras

        return keras.ops.multiply(loss, scale)

    @abstractmethod
    def _player_step(self, player: str, images: Any, labels: Any, z: Any) -> Mapping[str, Any]:
        """Compute ``player``'s loss, its gradients w.r.t. its trainable weights, and apply them."""

    @abstractmethod
    def gradients(self, player: str, images: Any, labels: Any, z: Any) -> tuple[float, list[np.ndarray]]:
        """``player``'s loss and its gradients (NumPy, in ``trainable_variables`` order); no update."""

    def generate(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Images from the generator in inference mode, as NumPy."""
        import keras

        self.sync()
        with self.inference():
            return np.asarray(keras.ops.convert_to_numpy(self.model.generate(z, labels)))

    def classify(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A classifier's probabilities and features for ``images``, in inference mode, as NumPy."""
        import keras

        self.sync()
        with self.inference():
            probabilities, features = self.model.classify(images)  # type: ignore[attr-defined]
        return (np.asarray(keras.ops.convert_to_numpy(probabilities)),
                np.asarray(keras.ops.convert_to_numpy(features)))

    def held_out_logs(self, images: np.ndarray, labels: np.ndarray | None) -> dict[str, float]:
        """A generative model's held-out values on one batch (``GenerativeModel.held_out_logs``),
        in inference mode, as floats; ``{}`` when the model has none. Training's state, seed
        generators included, is left as it was."""
        self.sync()
        with self.inference(), self._seeds_kept():
            found = self.model.held_out_logs(*_tensors(images, labels))  # type: ignore[attr-defined]
            try:
                values = self.to_host(found)
            except (TypeError, ValueError) as exc:
                raise GanctlError(f"the model's held_out_logs() must return scalar batch means, one per key "
                                  f"({exc}): a bug in the model plugin.") from None
        return {key: values[key] for key in found}  # the model's order (its first value is the headline)

    def reconstruct(self, images: np.ndarray, labels: np.ndarray | None) -> np.ndarray | None:
        """A generative model's reconstructions of ``images`` (``GenerativeModel.reconstruct``),
        in inference mode, as NumPy; None when it cannot reconstruct. Training's state is left as it was."""
        import keras

        self.sync()
        with self.inference(), self._seeds_kept():
            found = self.model.reconstruct(*_tensors(images, labels))  # type: ignore[attr-defined]
            return None if found is None else np.asarray(keras.ops.convert_to_numpy(found))

    def begin_training(self, steps_per_epoch: int) -> None:
        """``Model.begin_training`` before a run's first step (or a resume's): what the model
        assigns to its variables there is what the steps start from."""
        self.sync()
        self.model.begin_training(steps_per_epoch)
        self._after_load()

    @contextlib.contextmanager
    def _seeds_kept(self) -> Any:
        """Restore the model's seed generators afterwards: measuring must not change what training draws."""
        import keras

        states = [(g.state, keras.ops.convert_to_numpy(g.state.value)) for g in self.model.seed_generators()]
        try:
            yield
        finally:
            for variable, value in states:
                variable.assign(value)

    def inference(self) -> contextlib.AbstractContextManager[Any]:
        """A context for forward passes that need no gradients."""
        return contextlib.nullcontext()


def _tensors(images: np.ndarray, labels: np.ndarray | None) -> tuple[Any, Any]:
    """A batch as the backend's tensors, as a model's loss gets it (NumPy mixed into backend math
    misbehaves on torch)."""
    import keras

    return (keras.ops.convert_to_tensor(images),
            None if labels is None else keras.ops.convert_to_tensor(labels, dtype="int32"))


def stacked(inputs: Sequence[tuple[Any, Any, Sequence[Any]]]) -> tuple[Any, Any, Any]:
    """k steps' inputs (``Engine.steps``) stacked: images ``[k, B, ...]``, labels ``[k, B]`` or None,
    latents ``[k, updates, B, dim]``; NumPy stays NumPy, inputs already on the device stay there."""
    import keras

    def stack(values: Sequence[Any]) -> Any:
        return np.stack(values) if all(isinstance(v, np.ndarray) for v in values) else keras.ops.stack(values)

    return (stack([images for images, _, _ in inputs]),
            None if inputs[0][1] is None else stack([labels for _, labels, _ in inputs]),
            stack([stack(list(latents)) for _, _, latents in inputs]))


def _inner(optimizer: Any) -> Any:
    """The optimizer inside a ``LossScaleOptimizer`` (mixed_float16), or ``optimizer`` itself."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def storable(value: Any) -> np.ndarray:
    """A state value as NumPy for a checkpoint: bfloat16 (``train.precision: bfloat16``), which
    ``.npz`` files cannot hold, as float32, exactly; loading assigns it back as bfloat16."""
    array = np.asarray(value)
    return array.astype(np.float32) if array.dtype.name == "bfloat16" else array


_AUTO_SEED = re.compile(r"\bseed_generator_\d+\b")


def canonical_name(name: str) -> str:
    """A state variable's name without the process-wide counter Keras puts in seed generators' names.

    Keras names each ``SeedGenerator`` (a Dropout layer's, say) ``seed_generator_<n>`` with a
    counter over the whole process, so the same model gets another name when something else was
    built first; the variable's index in the name keeps names unique without it.
    """
    return _AUTO_SEED.sub("seed_generator", name)
