"""Fused steps on TensorFlow (``train.steps_per_execution``): k steps in one ``tf.function``.

One step of the loop is a *plan*: each player's updates in order. :func:`fused_steps` compiles,
per plan, one ``tf.function`` over k stacked batches: the first step is traced on its own (it
gives the logged values' names and dtypes), the others run in a ``tf.while_loop``, each update
being the engine's own (:meth:`TensorFlowEngine._update`, which its single step compiles), and
every update's logs come back stacked, ``[k]`` per value. The loop's length comes from the batches' shape, so the last, shorter
chunk of an epoch reuses the same trace. One dispatch replaces k, which is what costs on small
models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf


def _build(engine: Any, plan: tuple[str, ...], labelled: bool) -> Callable[..., Any]:
    updates = {player: engine._update(player) for player in dict.fromkeys(plan)}

    def one_step(images: Any, labels: Any, latents: Any) -> list[dict[str, Any]]:
        return [dict(updates[player](images, labels, latents[j])) for j, player in enumerate(plan)]

    def run(images: Any, labels: Any, latents: Any) -> list[dict[str, Any]]:
        k = tf.shape(images)[0]
        first = one_step(images[0], None if labels is None else labels[0], latents[0])
        arrays = [{key: tf.TensorArray(value.dtype, size=k).write(0, value) for key, value in logs.items()}
                  for logs in first]

        def body(i: Any, arrays: list[dict[str, Any]]) -> tuple[Any, list[dict[str, Any]]]:
            logs = one_step(images[i], None if labels is None else labels[i], latents[i])
            return i + 1, [{key: array.write(i, tf.cast(logs[j][key], array.dtype)) for key, array in each.items()}
                           for j, each in enumerate(arrays)]

        _, arrays = tf.while_loop(lambda i, _: i < k, body, (tf.constant(1), arrays))
        return [{key: array.stack() for key, array in each.items()} for each in arrays]

    if labelled:
        return engine._compile(run)
    # No `None` in the compiled signature (as the engine's single step).
    unlabelled = engine._compile(lambda images, latents: run(images, None, latents))
    return lambda images, labels, latents: unlabelled(images, latents)


def fused_steps(engine: Any, plan: tuple[str, ...], images: Any, labels: Any,
                latents: Any) -> list[Mapping[str, Any]]:
    """Run ``plan`` over each of the k stacked batches in one call; returns each update's logs,
    stacked over the k steps."""
    key = (plan, labels is not None)
    cache = engine.fused  # per plan, with and without labels; lives and dies with the engine
    if key not in cache:
        cache[key] = _build(engine, *key)
    images, latents = tf.convert_to_tensor(images), tf.convert_to_tensor(latents)
    if labels is not None:
        labels = tf.convert_to_tensor(labels)
    return cache[key](images, labels, latents)
