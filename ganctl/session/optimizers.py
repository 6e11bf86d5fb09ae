"""Keras optimizers from the recipe's optimizer settings."""

from __future__ import annotations

from typing import Any

from ganctl.recipe.schema import OptimizerConfig


def make_optimizer(config: OptimizerConfig, name: str) -> Any:
    """A Keras optimizer for ``config``; weight decay is decoupled (applied to the weights)."""
    import keras

    common: dict[str, Any] = {
        "learning_rate": config.learning_rate,
        "weight_decay": config.weight_decay or None,
        "clipnorm": config.clipnorm,
        "name": name,
    }
    if config.type == "adam":
        return keras.optimizers.Adam(beta_1=config.beta_1, beta_2=config.beta_2, **common)
    if config.type == "sgd":
        return keras.optimizers.SGD(momentum=config.momentum, **common)
    return keras.optimizers.RMSprop(rho=config.rho, momentum=config.momentum, **common)
