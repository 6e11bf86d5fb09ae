"""TensorFlow engine: ``GradientTape`` steps inside ``tf.function``.

``jit`` compiles each step as a ``tf.function``; XLA (``jit_compile``) is used only on GPUs, since
on CPUs it made a transposed-convolution DCGAN 3-4x slower than plain graph mode (and the
quickstart's model 1.11x faster: docs/performance.md keeps the measurements).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from ganctl.engine.interface import Engine as BaseEngine
from ganctl.engine.interface import stacked


def framework_version() -> str:
    return tf.__version__


def devices() -> list[str]:
    """Devices TensorFlow can run on, e.g. ``['cpu:0', 'gpu:0']``."""
    out = []
    for kind in ("CPU", "GPU"):
        for index, _ in enumerate(tf.config.list_physical_devices(kind)):
            out.append(f"{kind.lower()}:{index}")
    return out


def accelerated() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def input_gradient(fn: Callable[[Any], Any], x: Any) -> Any:
    """d sum(fn(x)) / dx; an outer tape records it, so it is differentiable."""
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(fn(x))
    return tape.gradient(total, x)


def _dense(grads: list[Any], variables: list[Any]) -> list[Any]:
    # tape.gradient gives None for a variable the loss does not touch, and
    # unconnected_gradients=ZERO fails on Keras variables: fill in zeros here.
    return [tf.zeros(v.shape, v.dtype) if g is None else g for g, v in zip(grads, variables, strict=True)]


class TensorFlowEngine(BaseEngine):
    backend = "tensorflow"

    def __init__(self, model: Any, optimizers: Mapping[str, Any], jit: bool) -> None:
        super().__init__(model, optimizers, jit)
        self._steps: dict[tuple[str, bool], Callable[..., Any]] = {}
        self.xla = accelerated()
        """Whether compiled steps use XLA (``jit_compile``): on GPUs only (see the module docstring).
        Set it before the first step to choose otherwise (bench/jit_policy.py times both)."""

    def _compile(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        if not self.jit:
            return fn
        return tf.function(fn, jit_compile=self.xla, reduce_retracing=True)

    def _tape(self, player: str, images: Any, labels: Any, z: Any,
              scaled: bool = True) -> tuple[Any, dict[str, Any], list[Any]]:
        variables = self.networks[player].trainable_variables
        with tf.GradientTape() as tape:
            loss, logs = self.model.loss(player, images, labels, z)
            target = self.scaled_loss(player, loss) if scaled else loss  # mixed_float16: times the loss scale
        return loss, logs, _dense(tape.gradient(target, variables), variables)

    def _update(self, player: str) -> Callable[..., Any]:
        """One update of ``player``, not compiled: the single step compiles it, fused steps
        (``train.steps_per_execution``, :mod:`ganctl.engine.tensorflow.fused`) loop over it."""
        variables = self.networks[player].trainable_variables
        optimizer = self.optimizers[player]

        def step(images: Any, labels: Any, z: Any) -> dict[str, Any]:
            _, logs, grads = self._tape(player, images, labels, z)
            optimizer.apply(grads, variables)
            return logs

        return step

    def _build_step(self, player: str, labelled: bool) -> Callable[..., Any]:
        step = self._update(player)
        if labelled:
            return self._compile(step)
        # No `None` in the compiled signature: passing one costs ~200 us per call.
        unlabelled = self._compile(lambda images, z: step(images, None, z))
        return lambda images, labels, z: unlabelled(images, z)

    def _player_step(self, player: str, images: Any, labels: Any, z: Any) -> Mapping[str, Any]:
        key = (player, labels is not None)
        if key not in self._steps:
            self._steps[key] = self._build_step(player, labels is not None)
        # Tensors, not NumPy arrays: tf.function converts and hashes arrays on every call.
        images, z = tf.convert_to_tensor(images), tf.convert_to_tensor(z)
        if labels is not None:
            labels = tf.convert_to_tensor(labels)
        return self._steps[key](images, labels, z)

    def stage(self, images: Any, labels: Any, latents: list[Any]) -> tuple[Any, Any, Any]:
        if not accelerated():  # on CPUs: NumPy, which the step converts
            return images, labels, latents
        with tf.device("/GPU:0"):  # copied now, in the feeding thread
            return (tf.identity(images), None if labels is None else tf.identity(labels),
                    [tf.identity(z) for z in latents])

    def fuses(self) -> bool:
        return self.jit

    def _fused_steps(self, plan: tuple[str, ...], inputs: Sequence[tuple[Any, Any, Sequence[Any]]]) -> list[Any]:
        if not self.fuses():
            return super()._fused_steps(plan, inputs)
        from ganctl.engine.tensorflow.fused import fused_steps  # k steps in one tf.function

        return fused_steps(self, plan, *stacked(inputs))

    def gradients(self, player: str, images: Any, labels: Any, z: Any) -> tuple[float, list[np.ndarray]]:
        loss, _, grads = self._tape(player, images, labels, z, scaled=False)
        # embeddings get sparse IndexedSlices gradients: densify them for comparison
        return float(loss), [np.asarray(tf.convert_to_tensor(g)) for g in grads]


Engine = TensorFlowEngine
