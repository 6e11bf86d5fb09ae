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
        schedule = getattr(optimizer, "_learning_rate", None)
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            rate = schedule(np.asarray(updates.get(player, 0), dtype="int64"))
            out[f"{player}/lr"] = float(keras.ops.convert_to_numpy(rate))
    return out


def make_optimizer(config: OptimizerConfig, name: str) -> Any:
    """A Keras optimizer for ``config``; weight decay is decoupled (applied to the weights)."""
    import keras

    common: dict[str, Any] = {
        "learning_rate": learning_rate(config.learning_rate, config.schedule),
        "weight_decay": config.weight_decay or None,
        "clipnorm": config.clipnorm,
        "name": name,
    }
    if config.type == "adam":
        return keras.optimizers.Adam(beta_1=config.beta_1, beta_2=config.beta_2, **common)
    if config.type == "sgd":
        return keras.optimizers.SGD(momentum=config.momentum, **common)
    return keras.optimizers.RMSprop(rho=config.rho, momentum=config.momentum, **common)
