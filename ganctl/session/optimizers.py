"""Keras optimizers from the recipe's optimizer settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ganctl.recipe.schema import OptimizerConfig, ScheduleConfig

_WARMUP: Any = None


def _warmup_class() -> Any:
    """:class:`keras.optimizers.schedules.LearningRateSchedule` that rises linearly from 0 to
    ``peak`` over ``warmup_steps`` updates, then follows ``after`` (a schedule started at 0 when the
    warm-up ends, or None: ``peak``). Made on first use: Keras is imported only with a backend."""
    global _WARMUP
    if _WARMUP is not None:
        return _WARMUP
    import keras

    @keras.saving.register_keras_serializable(package="ganctl")
    class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
        def __init__(self, peak: float, warmup_steps: int, after: Any = None) -> None:
            self.peak, self.warmup_steps = float(peak), int(warmup_steps)
            self.after = after

        def __call__(self, step: Any) -> Any:
            ops = keras.ops
            step = ops.cast(step, "float32")
            warmup = float(self.warmup_steps)
            rising = self.peak * step / warmup
            if self.after is None:
                return ops.where(step < warmup, rising, self.peak)
            return ops.where(step < warmup, rising, self.after(ops.maximum(step - warmup, 0.0)))

        def get_config(self) -> dict[str, Any]:
            after = None if self.after is None else keras.optimizers.schedules.serialize(self.after)
            return {"peak": self.peak, "warmup_steps": self.warmup_steps, "after": after}

        @classmethod
        def from_config(cls, config: dict[str, Any]) -> Any:
            after = config.get("after")
            if after is not None:
                after = keras.optimizers.schedules.deserialize(after)
            return cls(config["peak"], config["warmup_steps"], after)

    _WARMUP = LinearWarmup
    return _WARMUP


def learning_rate(rate: float, schedule: ScheduleConfig) -> Any:
    """The optimizer's ``learning_rate``: ``rate`` itself (constant), or a Keras schedule of it,
    driven by the optimizer's update count (its ``iterations``, which checkpoints carry)."""
    import keras

    schedules = keras.optimizers.schedules
    after: Any = None
    if schedule.type == "cosine":
        assert schedule.decay_steps is not None
        after = schedules.CosineDecay(rate, schedule.decay_steps, alpha=schedule.final_fraction or 0.0)
    elif schedule.type == "exponential":
        assert schedule.decay_steps is not None and schedule.decay_rate is not None
        after = schedules.ExponentialDecay(rate, schedule.decay_steps, schedule.decay_rate)
    if schedule.warmup_steps:
        return _warmup_class()(rate, schedule.warmup_steps, after)
    return rate if after is None else after


def scheduled_rates(optimizers: Mapping[str, Any], updates: Mapping[str, int]) -> dict[str, float]:
    """``{"<player>/lr": rate}`` for each player whose optimizer follows a schedule: its rate after
    ``updates[player]`` updates (computed on the host: the engine may hold the optimizer's state)."""
    import keras

    out: dict[str, float] = {}
    for player, optimizer in optimizers.items():
        schedule = getattr(unwrapped(optimizer), "_learning_rate", None)
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            rate = schedule(np.asarray(updates.get(player, 0), dtype="int64"))
            out[f"{player}/lr"] = float(keras.ops.convert_to_numpy(rate))
    return out


_AVERAGING: dict[type, type] = {}


def ema_momentum(ema: float, update: Any) -> Any:
    """The momentum of the moving average at ``update`` (updates made before this one):
    ``min(ema, (1 + t) / (10 + t))``, and 0 at the first update (the average starts at the
    weights). The ramp keeps the average of a short run from leaning on its first, untrained
    weights: with ``ema: 0.999`` the momentum reaches 0.99 after 890 updates and 0.999 after
    8,990 (TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``)."""
    from keras import ops

    t = ops.cast(update, "float32")
    ramp = ops.minimum(ema, (1.0 + t) / (10.0 + t))
    return ops.where(ops.equal(t, 0.0), 0.0, ramp)


def _averaging(optimizer_class: type) -> type:
    """``optimizer_class`` whose moving average (Keras's ``use_ema``) follows :func:`ema_momentum`:
    Keras's own uses a constant momentum from the second update on."""
    if optimizer_class not in _AVERAGING:

        class Averaging(optimizer_class):  # type: ignore[misc, valid-type]
            def _update_model_variables_moving_average(self, trainable_variables: Any) -> None:
                from keras import ops

                momentum = ema_momentum(self.ema_momentum, self.iterations)
                for variable, average in zip(trainable_variables, self._model_variables_moving_average, strict=True):
                    if average is not None:
                        m = ops.cast(momentum, variable.dtype)
                        average.assign(m * average + (1.0 - m) * variable)

        Averaging.__name__ = Averaging.__qualname__ = optimizer_class.__name__
        _AVERAGING[optimizer_class] = Averaging
    return _AVERAGING[optimizer_class]


def make_optimizer(config: OptimizerConfig, name: str, ema: float | None = None, loss_scale: bool = False,
                   prune: Any = None) -> Any:
    """A Keras optimizer for ``config``; weight decay is decoupled (applied to the weights).

    ``ema``: also keep an exponential moving average of the weights it updates, whose momentum
    ramps up to ``ema`` (:func:`ema_momentum`; Keras's ``use_ema``: optimizer variables, so
    checkpoints carry it; never written over the weights).
    ``loss_scale``: wrap it in Keras's ``LossScaleOptimizer`` (``train.precision: mixed_float16``):
    the engine multiplies the loss by its dynamic scale, and it divides the gradients by it, skips
    an update whose gradients are not finite and halves the scale then (doubling it after 2,000
    finite ones). Its scale and counter are optimizer variables, so checkpoints carry them.
    ``prune``: a :class:`ganctl.session.pruning.Plan` (``train.prune``): keep masks of the kernels it
    names, updated on its schedule and applied after every update (optimizer variables too).
    """
    optimizer = _make_optimizer(config, name, ema, prune)
    if not loss_scale:
        return optimizer
    import keras

    # Its own name: the wrapped optimizer's state keeps the names a float32 run's has (init: copies it).
    return keras.optimizers.LossScaleOptimizer(optimizer, name=name.replace("_optimizer", "") + "_loss_scale")


def unwrapped(optimizer: Any) -> Any:
    """The optimizer that updates the weights: the one inside a ``LossScaleOptimizer``, or ``optimizer``."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def _make_optimizer(config: OptimizerConfig, name: str, ema: float | None, prune: Any) -> Any:
    import keras

    from ganctl.session.pruning import pruning

    common: dict[str, Any] = {
        "learning_rate": learning_rate(config.learning_rate, config.schedule),
        "weight_decay": config.weight_decay or None,
        "clipnorm": config.clipnorm,
        "name": name,
    }
    if ema is not None:
        common.update(use_ema=True, ema_momentum=ema, ema_overwrite_frequency=None)

    def make(cls: type) -> type:
        cls = _averaging(cls) if ema is not None else cls
        return pruning(cls) if prune is not None else cls

    if config.type == "adam":
        optimizer = make(keras.optimizers.Adam)(beta_1=config.beta_1, beta_2=config.beta_2, **common)
    elif config.type == "sgd":
        optimizer = make(keras.optimizers.SGD)(momentum=config.momentum, **common)
    else:
        optimizer = make(keras.optimizers.RMSprop)(rho=config.rho, momentum=config.momentum, **common)
    if prune is not None:
        optimizer.prune_plan = prune
    return optimizer
