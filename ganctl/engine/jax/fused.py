"""Fused steps on JAX (``train.steps_per_execution``): k steps in one compiled call.

One step of the loop is a *plan*: each player's updates in order (``discriminator`` five times,
then ``generator``, say). :func:`fused_steps` compiles, per plan, one function that runs the plan
over k stacked batches with ``jax.lax.scan``, unrolled: the carry is the engine's whole state
(every model variable's value and every player's optimizer state), each update is the engine's
own pure update (:meth:`JaxEngine._update`, which its single step jits), in the same strict
scope, and the logs of every update come back stacked, ``[k]`` per value. One dispatch and one
transfer of logs replace k of each, which is what costs on small models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax


def _build(engine: Any, plan: tuple[str, ...]) -> Callable[..., Any]:
    updates = {player: engine._update(player) for player in dict.fromkeys(plan)}
    layout = engine._layout

    def one_step(carry: tuple[list[Any], dict[str, list[Any]]], inputs: tuple[Any, Any, Any]):
        values, opt_values = list(carry[0]), dict(carry[1])
        images, labels, latents = inputs
        logs = []
        for j, player in enumerate(plan):
            trainable_idx, other_idx = layout[player]
            train_values, other_values, new_opt, found = updates[player](
                [values[i] for i in trainable_idx], [values[i] for i in other_idx], opt_values[player],
                images, labels, latents[j])
            for i, value in zip(trainable_idx, train_values, strict=True):
                values[i] = value
            for i, value in zip(other_idx, other_values, strict=True):
                values[i] = value
            opt_values[player] = list(new_opt)
            logs.append(dict(found))
        return (values, opt_values), logs

    def run(values: list[Any], opt_values: dict[str, list[Any]], images: Any, labels: Any, latents: Any):
        # Unrolled: XLA on CPUs ran a rolled loop's body some 15x slower than the same step outside a
        # loop (the quickstart's dcgan: 150 ms a step against 10 ms); unrolled, the k steps are one
        # straight-line program, whose compilation grows with k.
        (values, opt_values), logs = jax.lax.scan(one_step, (values, opt_values), (images, labels, latents),
                                                 unroll=True)
        return values, opt_values, logs

    return jax.jit(run)


def fused_steps(engine: Any, plan: tuple[str, ...], images: Any, labels: Any,
                latents: Any) -> list[Mapping[str, Any]]:
    """Run ``plan`` over each of the k stacked batches in one compiled call, updating ``engine``'s
    state; returns each update's logs, stacked over the k steps."""
    cache = engine.fused  # the compiled function of each plan lives and dies with the engine
    if plan not in cache:
        cache[plan] = _build(engine, plan)
    players = list(dict.fromkeys(plan))
    values, opt_values, logs = cache[plan](list(engine._values), {p: list(engine._opt_values[p]) for p in players},
                                           images, labels, latents)
    engine._values = list(values)
    for player in players:
        engine._opt_values[player] = list(opt_values[player])
    return logs
