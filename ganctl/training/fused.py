"""Fused steps (``train.steps_per_execution: k``): the loop hands the engine k steps at once.

An epoch's steps are cut into *chunks* of k, counted from the epoch's first step, the last one
shorter when k does not divide the epoch (a chunk never crosses an epoch's end, and a k larger
than an epoch is one chunk per epoch). A resume that starts inside an epoch at a chunk boundary
(signals and checkpoints stop only there) cuts the rest of it exactly as the uninterrupted run
did; one that starts elsewhere (a checkpoint of a run with another k) first takes a shorter chunk
up to the next boundary. Each step of a chunk still has its own batch and its own latents,
:func:`ganctl.sampling.step_latents` of its global step, and makes every player's
``schedule()`` updates in order; :meth:`~ganctl.engine.interface.Engine.steps` runs them all in
one call. :func:`chunk_logs` then gives each step's logged values in turn, exactly as the
single step gives them, so the NaN check, ``log_every``, the epoch means and the callbacks see
what k = 1 gives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ganctl.engine.interface import Engine

AUTO = 4
"""``train.steps_per_execution: auto`` where the engine fuses steps: measured on 2 CPU cores, k = 4
trains the quickstart 1.3x faster than k = 1 on JAX and TensorFlow, and k = 8 adds little
(docs/performance.md, "Fused steps")."""


def steps_for(setting: str | int, engine: Engine) -> int:
    """``train.steps_per_execution`` resolved: ``auto`` is :data:`AUTO` where ``engine`` runs k
    steps as one compiled call, else 1 (k calls of the single step would only move the safe points)."""
    if setting != "auto":
        return int(setting)
    return AUTO if engine.fuses() else 1


def chunk_end(index: int, steps_per_epoch: int, k: int) -> int:
    """The end (exclusive) of the chunk that starts at step ``index`` of an epoch (0-based)."""
    return min((index // k + 1) * k, steps_per_epoch)


def plan_of(players: Sequence[str], schedule: dict[str, int]) -> tuple[str, ...]:
    """One step's updates, the player of each in order: ``schedule[player]`` updates per player."""
    return tuple(player for player in players for _ in range(schedule.get(player, 1)))


def chunk_logs(engine: Engine, plan: tuple[str, ...], inputs: Sequence[Any], first_step: int,
               non_finite: Callable[[str, str, float, int], Exception]) -> Iterator[dict[str, float]]:
    """Run the chunk's steps (``inputs``: each step's ``(images, labels, latents)``) in one call,
    then yield each step's logged values (``<player>/<key>``: a player's last update's). A value
    that is NaN or infinite raises ``non_finite(player, key, value, step)`` at the step (1-based)
    and update that gave it, after the steps before it were yielded, as the single step does."""
    found = engine.steps(plan, inputs)
    for i in range(len(inputs)):
        logs: dict[str, float] = {}
        for player, values in zip(plan, found, strict=True):
            update = {key: float(value[i]) for key, value in values.items()}
            bad = [key for key, value in update.items() if not math.isfinite(value)]
            if bad:
                raise non_finite(player, bad[0], update[bad[0]], first_step + i + 1)
            logs.update({f"{player}/{key}": value for key, value in update.items()})
        yield logs
