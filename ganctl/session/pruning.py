"""Gradual magnitude pruning (``train.prune``; Zhu and Gupta 2017) inside a player's optimizer.

The masks are variables of the pruned player's optimizer, one per kernel of its Dense, Conv and
ConvTranspose layers (biases and normalisation are never pruned), beside a count of the updates
it made since the run began. Like ``train.ema``'s average they are optimizer state: every engine
carries them through its steps (JAX's stateless, compiled one included), every checkpoint holds
them, and a resume continues exactly. After each update of its weights the optimizer

1. on schedule, sets each kernel's mask to keep its largest-magnitude weights, so that the
   fraction ``s_t = s_f (1 - (1 - p)^3)`` of the kernel is zero, ``p`` the fraction of the pruning
   window passed (0 at its first update, 1 at its last); weights pruned before stay pruned;
2. multiplies each kernel by its mask, so pruned weights stay exactly zero whatever the inner
   optimizer's moments do; a moving average (``train.ema``) is masked the same way.

Everything is ``keras.ops`` and a ``cond`` on the update count: no per-backend code, and no Python
branch on a traced value. The count is the optimizer's own (not its ``iterations``), so a
fine-tuning run that copies another run's optimizer state (``init.optimizer``) prunes on its
own schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ganctl.errors import ConfigError

MASK = "prune_mask"
"""The suffix of a mask's name (``<kernel path>_prune_mask``) among the optimizer's variables."""
COUNT = "prune_updates"
"""The name of the pruned optimizer's update count."""
STATE_SUFFIXES = (f"_{MASK}", f"/{COUNT}")
"""How the state names of pruning state end (checkpoints, ``init``)."""


@dataclass(frozen=True)
class Plan:
    """One player's schedule, in updates of its optimizer (counted from 0).

    ``first``/``last``: the first and last update of the window; ``every``: updates between two
    mask updates; ``sparsity``: the final fraction of zeros; ``kernels``: the ids of the variables
    pruned."""

    first: int
    last: int
    every: int
    sparsity: float
    kernels: frozenset[int]


def prunable_layers(network: Any) -> list[Any]:
    """The layers of ``network`` whose kernel is pruned: Dense, Conv and ConvTranspose (1-3 D),
    wrapped ones included (e.g. by spectral normalisation), each once, in the network's order."""
    import keras

    kinds = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
             keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)
    seen: set[int] = set()
    out = []
    for layer in network._flatten_layers(include_self=False, recursive=True):
        kernel = getattr(layer, "kernel", None) if isinstance(layer, kinds) else None
        if kernel is not None and kernel.trainable and id(kernel) not in seen:
            seen.add(id(kernel))
            out.append(layer)
    return out


def plans(prune: Any, networks: dict[str, Any], schedule: dict[str, int], steps_per_epoch: int,
          source: str) -> dict[str, Plan]:
    """The plan of each player ``prune`` (a ``PruneConfig``) names; ConfigError for a player with
    nothing to prune. ``schedule``: the model's updates per step of each player."""
    out: dict[str, Plan] = {}
    for player in prune.players:
        kernels = [layer.kernel for layer in prunable_layers(networks[player])]
        if not kernels:
            raise ConfigError(
                f"{source}: train.prune.players: player '{player}' has no Dense, Conv or ConvTranspose layer with "
                f"trainable weights to prune (frozen layers are left alone). Remove '{player}' from train.prune.players."
            )
        updates = steps_per_epoch * schedule.get(player, 1)
        out[player] = Plan(first=prune.begin_epoch * updates, last=prune.end_epoch * updates - 1,
                           every=prune.every * schedule.get(player, 1), sparsity=prune.sparsity,
                           kernels=frozenset(id(k) for k in kernels))
    return out


def target_sparsity(plan: Plan, update: Any) -> Any:
    """The fraction of zeros the schedule wants at ``update`` (a tensor; cubic, Zhu and Gupta 2017)."""
    from keras import ops

    span = float(max(plan.last - plan.first, 1))
    progress = ops.clip((ops.cast(update, "float32") - float(plan.first)) / span, 0.0, 1.0)
    return plan.sparsity * (1.0 - (1.0 - progress) ** 3)


def _due(plan: Plan, update: Any) -> Any:
    """Whether the masks are updated at ``update``: every ``plan.every`` from the window's first
    update, and at its last."""
    from keras import ops

    update = ops.cast(update, "int32")
    inside = ops.logical_and(ops.greater_equal(update, plan.first), ops.less_equal(update, plan.last))
    on_beat = ops.logical_or(ops.equal(ops.mod(update - plan.first, plan.every), 0), ops.equal(update, plan.last))
    return ops.logical_and(inside, on_beat)


def new_mask(kernel: Any, mask: Any, sparsity: Any) -> Any:
    """The mask that zeroes the ``round(sparsity * size)`` weights of ``kernel`` smallest in
    magnitude, those ``mask`` already pruned first (ties broken by position)."""
    from keras import ops

    key = ops.where(ops.greater(mask, 0), ops.abs(ops.cast(kernel, "float32")), -1.0)
    flat = ops.reshape(key, (-1,))
    size = int(np.prod(kernel.shape))
    pruned = ops.cast(ops.round(ops.cast(sparsity, "float32") * float(size)), "int32")
    ranks = ops.argsort(ops.argsort(flat))
    keep = ops.greater_equal(ops.cast(ranks, "int32"), pruned)
    return ops.reshape(ops.cast(keep, mask.dtype), kernel.shape)


_PRUNING: dict[type, type] = {}


def pruning(optimizer_class: type) -> type:
    """``optimizer_class`` that keeps masks for the kernels its ``prune_plan`` names and applies
    them after every update (see the module's docstring). Set ``prune_plan`` before it is built."""
    if optimizer_class not in _PRUNING:

        class Pruning(optimizer_class):  # type: ignore[misc, valid-type]
            prune_plan: Plan | None = None

            def build(self, variables: Any) -> None:
                super().build(variables)
                plan = self.prune_plan
                assert plan is not None, "prune_plan is set before the optimizer is built"
                masks = [(i, self.add_variable_from_reference(v, MASK, initializer="ones"))
                         for i, v in enumerate(variables) if id(v) in plan.kernels]
                self._prune_masks = masks
                self._prune_count = self.add_variable((), initializer="zeros", dtype=self._iterations.dtype,
                                                      name=COUNT)

            def _backend_update_step(self, grads: Any, trainable_variables: Any, learning_rate: Any) -> None:
                from keras import ops

                super()._backend_update_step(grads, trainable_variables, learning_rate)
                plan, count = self.prune_plan, self._prune_count
                sparsity = target_sparsity(plan, count)
                due = _due(plan, count)
                for index, mask in self._prune_masks:
                    kernel = self._trainable_variables[index]
                    current = mask.value
                    value = ops.cond(due, lambda k=kernel, m=current: new_mask(k.value, m, sparsity), lambda m=current: m)
                    mask.assign(value)
                    kernel.assign(kernel.value * ops.cast(value, kernel.dtype))
                count.assign(count.value + 1)

            def _update_model_variables_moving_average(self, trainable_variables: Any) -> None:
                super()._update_model_variables_moving_average(trainable_variables)
                from keras import ops

                for index, mask in self._prune_masks:  # the average of a pruned weight is zero too
                    average = self._model_variables_moving_average[index]
                    if average is not None:
                        average.assign(average.value * ops.cast(mask.value, average.dtype))

        Pruning.__name__ = Pruning.__qualname__ = optimizer_class.__name__
        _PRUNING[optimizer_class] = Pruning
    return _PRUNING[optimizer_class]


def kernel_sparsity(network: Any) -> dict[str, float]:
    """The fraction of exact zeros in each prunable kernel of ``network``, by the kernel's path."""
    import keras

    out: dict[str, float] = {}
    for layer in prunable_layers(network):
        values = np.asarray(keras.ops.convert_to_numpy(layer.kernel.value))
        out[layer.kernel.path] = float(np.mean(values == 0))
    return out
