"""``train.prune``: gradual magnitude pruning during training (Zhu and Gupta 2017), its keys and checks.

The checks that need only the recipe are here (the schema's phase 1); whether the players exist is
checked against the model plugin in :mod:`ganctl.recipe.load`, and whether they have a layer to
prune when the model is built (:mod:`ganctl.session.pruning`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

DEFAULT_EVERY = 100
"""Steps between two mask updates when ``every`` is not given (Zhu and Gupta used 100 to 1,000)."""


class PruneConfig(BaseModel):
    """Gradual magnitude pruning of the players' Dense and Conv kernels, per layer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sparsity: float = Field(
        json_schema_extra={"minimum": 0, "exclusiveMaximum": 1},
        description="The fraction of each pruned kernel's weights that are zero at end_epoch (e.g. 0.8).",
    )
    players: list[str] = Field(
        min_length=1, description="The players whose Dense and Conv kernels are pruned (e.g. [generator])."
    )
    begin_epoch: StrictInt = Field(
        0, json_schema_extra={"minimum": 0},
        description="Epochs trained before pruning starts (0: from the first step).",
    )
    end_epoch: StrictInt = Field(
        json_schema_extra={"minimum": 1},
        description="The epoch at whose end the kernels reach the sparsity (at most train.epochs); the masks are fixed after.",
    )
    every: StrictInt = Field(
        DEFAULT_EVERY, json_schema_extra={"minimum": 1},
        description=f"Steps between two updates of the masks (default {DEFAULT_EVERY}); the last step of end_epoch updates them too.",
    )

    @field_validator("sparsity")
    @classmethod
    def _sparsity(cls, value: float) -> float:
        if not 0 <= value < 1:
            raise ValueError(
                f"sparsity is the fraction of each kernel's weights set to zero, at least 0 and below 1, got {value}; "
                "use e.g. 0.5, 0.8 or 0.9"
            )
        return value

    @field_validator("begin_epoch")
    @classmethod
    def _begin(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"begin_epoch is a number of epochs, 0 or more, got {value}; use 0 to prune from the start")
        return value

    @field_validator("every")
    @classmethod
    def _every(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"every is a number of steps between mask updates, 1 or more, got {value}; "
                             f"use e.g. {DEFAULT_EVERY}")
        return value

    @model_validator(mode="after")
    def _window(self) -> PruneConfig:
        if self.begin_epoch >= self.end_epoch:
            raise ValueError(
                f"begin_epoch ({self.begin_epoch}) must be before end_epoch ({self.end_epoch}): pruning runs from "
                f"the end of epoch begin_epoch to the end of epoch end_epoch; set end_epoch: {self.begin_epoch + 1} "
                "or more, or lower begin_epoch"
            )
        return self


def check_window(prune: PruneConfig, epochs: int) -> None:
    """ValueError when ``prune``'s window ends after the run's last epoch (the sparsity would never be reached)."""
    if prune.end_epoch > epochs:
        raise ValueError(
            f"end_epoch ({prune.end_epoch}) is past train.epochs ({epochs}): the kernels would never reach "
            f"sparsity {prune.sparsity}; set end_epoch to {epochs} or less, or train for more epochs"
        )
