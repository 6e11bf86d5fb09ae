"""The recipe's ``freeze:``: layers of a player kept fixed while the rest trains (fine-tuning).

A frozen layer is made non-trainable (``layer.trainable = False``) before the engine exists, so
its weights are not among the player's trainable variables: no gradient is taken for them and
the optimizer has no slots for them. A frozen ``BatchNormalization`` runs in inference mode, as
Keras defines it: it normalises with its moving statistics, and they are not updated.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from ganctl.api import Model
from ganctl.errors import ConfigError
from ganctl.recipe.load import Recipe


def weighted_layers(network: Any) -> list[Any]:
    """The layers of ``network`` (top level) that hold weights: what ``freeze:`` patterns match."""
    return [layer for layer in network.layers if layer.weights]


def freeze_layers(recipe: Recipe, model: Model) -> dict[str, list[str]]:
    """Make the layers that ``recipe.freeze`` names non-trainable; the names frozen, per player.

    Raises ConfigError for a pattern that matches no layer with weights (listing the player's
    layers), and for a player left with nothing to train.
    """
    if not recipe.freeze:
        return {}
    networks = model.networks()
    frozen: dict[str, list[str]] = {}
    for player, patterns in recipe.freeze.items():
        network = networks[player]  # the loader checked that the player exists
        layers = weighted_layers(network)
        names = [layer.name for layer in layers]
        chosen: list[str] = []
        for pattern in patterns:
            matched = [name for name in names if fnmatchcase(name, pattern)]
            if not matched:
                raise ConfigError(
                    f"{recipe.source}: freeze.{player}: the pattern '{pattern}' matches none of the "
                    f"{player}'s layers with weights, which are: {', '.join(names) or 'none'}. Use one of "
                    "these names, or a glob pattern over them (g_up_*), or remove the pattern."
                )
            chosen += [name for name in matched if name not in chosen]
        for layer in layers:
            if layer.name in chosen:
                layer.trainable = False
        if not network.trainable_variables:
            raise ConfigError(
                f"{recipe.source}: freeze.{player}: these patterns freeze every layer of the {player}, so it "
                f"would have nothing to train. Leave some of its layers ({', '.join(names)}) out of "
                f"freeze.{player}."
            )
        frozen[player] = chosen
    return frozen
