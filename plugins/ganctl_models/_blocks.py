"""The building blocks the first-party generative models share (private to this package): the
label and latent inputs, the image input, kernel regularisation, spectral normalisation, and the
check that conditioning has labels to use.

Keras is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ganctl import api

if TYPE_CHECKING:
    import keras

LEAK = 0.2
"""Negative slope of every LeakyReLU."""


def check_conditional(model: str, params: Any, spec: api.DataSpec) -> None:
    """Refuse ``conditional: true`` on data without labels."""
    if params.conditional and not spec.conditional:
        raise api.ConfigError(
            f"model.conditional is true, but the data has no class labels, so the {model} "
            "model has nothing to condition on. Set `model.conditional: false`, or train on "
            "labelled data (e.g. an image-folder with one sub-folder per class)."
        )


def dropout(rate: float, name: str) -> keras.layers.Layer:
    """A seeded ``Dropout``. Unseeded, Keras's PyTorch backend draws the masks from torch's global
    generator, which no checkpoint holds, so a resumed run would drop other units than a straight
    one. The seed comes from NumPy's global generator, which ganctl seeds with the recipe's seed
    before it builds a model: the same recipe gives the same masks on every backend's resume."""
    import keras
    import numpy as np

    return keras.layers.Dropout(rate, seed=int(np.random.randint(2**31 - 1)), name=name)


def kernel_regularizer(params: Any) -> Any:
    """The kernel regulariser for ``l1``/``l2``, or None when both are 0."""
    if params.l1 == 0 and params.l2 == 0:
        return None
    import keras

    return keras.regularizers.L1L2(l1=params.l1, l2=params.l2)


def label_input() -> keras.KerasTensor:
    """The integer class-label input: one label per example, shape ``[batch]``."""
    import keras

    return keras.Input(shape=(), dtype="int32", name="label")


def embed_label(label: keras.KerasTensor, num_classes: int, dim: int, prefix: str) -> keras.KerasTensor:
    """``[batch, dim]`` learned embeddings of ``label``."""
    import keras

    return keras.layers.Embedding(num_classes, dim, name=f"{prefix}_label_embedding")(label)


def logits_with_projection(logits: keras.KerasTensor, features: keras.KerasTensor, label: keras.KerasTensor,
                           num_classes: int) -> keras.KerasTensor:
    """A projection discriminator's output (Miyato and Koyama 2018): ``logits + <embed(label),
    features>``, ``[batch, 1]``, with a learned embedding as wide as ``features`` (``[batch, d]``).
    The embedding is not spectrally normalised (a normalised class path lost its classes:
    docs/quality.md)."""
    import keras

    embedded = embed_label(label, num_classes, int(features.shape[-1]), "d_projection")
    projection = keras.layers.Dot(axes=1, dtype="float32", name="d_projection")([embedded, features])
    return keras.layers.Add(dtype="float32", name="d_logit_and_projection")([logits, projection])


def latent_input(params: Any, spec: api.DataSpec) -> tuple[Any, keras.KerasTensor]:
    """The generator's inputs (``z``, or ``[z, label]``) and the vector its layers start from.

    A conditional generator concatenates ``z`` with a ``latent_dim``-sized label embedding.
    """
    import keras

    z = keras.Input(shape=(params.latent_dim,), name="z")
    if not params.conditional:
        return z, z
    label = label_input()
    embedded = embed_label(label, spec.num_classes, params.latent_dim, "g")
    return [z, label], keras.layers.Concatenate(name="g_z_and_label")([z, embedded])


def image_input(spec: api.DataSpec) -> keras.KerasTensor:
    """The discriminator's image input, ``[batch, H, W, C]``."""
    import keras

    return keras.Input(shape=spec.shape, name="images")


_SPECTRAL: type | None = None


def _spectral_class() -> type:
    """``keras.layers.SpectralNormalization`` that divides the kernel by its spectral norm as it
    is used, instead of assigning the divided kernel to the variable.

    Keras's own ``call`` assigns the kernel in place at every training call; a discriminator
    called twice in one loss (fake and real images) then fails on torch (autograd: "modified by an
    inplace operation"), and on JAX the assignment is dropped in the discriminator's own step.
    Here the stored kernel stays the raw weight ``W`` and every call (training or not) computes
    with ``W / sigma(W)``; only the power-iteration vector ``vector_u`` is updated, at training
    calls. The gradient flows through ``sigma`` (u and v are constants), as in Miyato et al. 2018,
    the same on every backend. Made on first use: Keras is imported only with a backend.
    """
    global _SPECTRAL
    if _SPECTRAL is not None:
        return _SPECTRAL
    import keras

    ops = keras.ops

    @keras.saving.register_keras_serializable(package="ganctl_models")
    class SpectralNormalization(keras.layers.SpectralNormalization):
        def call(self, inputs: keras.KerasTensor, training: bool = False) -> keras.KerasTensor:
            weights = ops.reshape(self.kernel, (-1, self.kernel_shape[-1]))
            u = self.vector_u.value
            for _ in range(self.power_iterations):
                v = ops.stop_gradient(_unit(ops.matmul(u, ops.transpose(weights))))
                u = ops.stop_gradient(_unit(ops.matmul(v, weights)))
            if training:
                self.vector_u.assign(ops.cast(u, self.vector_u.dtype))
            sigma = ops.matmul(ops.matmul(v, weights), ops.transpose(u))
            kernel = ops.divide(self.kernel.value, ops.maximum(ops.reshape(sigma, ()), 1e-12))
            layer = self.layer
            kernel = ops.cast(kernel, inputs.dtype)
            if isinstance(layer, keras.layers.Dense):
                out = ops.matmul(inputs, kernel)
                if layer.bias is not None:
                    out = ops.add(out, layer.bias)
            else:
                out = layer.convolution_op(inputs, kernel)
                if layer.use_bias:
                    out = ops.add(out, ops.reshape(layer.bias, (1,) * (layer.rank + 1) + (layer.filters,)))
            if layer.activation is not None:
                out = layer.activation(out)
            return ops.cast(out, inputs.dtype)

    def _unit(x: keras.KerasTensor) -> keras.KerasTensor:
        return ops.divide(x, ops.maximum(ops.sqrt(ops.sum(ops.square(x))), 1e-12))

    _SPECTRAL = SpectralNormalization
    return _SPECTRAL


def spectral(layer: keras.layers.Layer, on: bool) -> keras.layers.Layer:
    """``layer`` (a Dense, or a channels-last Conv), wrapped in a ``keras.layers.SpectralNormalization``
    when ``on`` (``spectral_norm``; see :func:`_spectral_class`).

    The wrapper computes in the layer's dtype (the float32 logit stays float32 under mixed
    precision); its power-iteration vector ``vector_u`` is non-trainable state, updated at each
    training call and carried by checkpoints like the other variables."""
    if not on:
        return layer
    return _spectral_class()(layer, dtype=layer.dtype_policy, name=f"{layer.name}_sn")
