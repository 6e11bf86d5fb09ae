"""The ``gan`` model: the classic fully-connected GAN (Goodfellow et al. 2014).

Both networks are multi-layer perceptrons, so it takes images of any shape (13x13, 1x100, ...)
and is the fallback for data the convolutional ``dcgan`` cannot tile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from ganctl import api

from ._common import (
    LEAK,
    AdversarialModel,
    GANParams,
    embed_label,
    image_input,
    kernel_regularizer,
    label_input,
    latent_input,
)

if TYPE_CHECKING:
    import keras

_Width = Annotated[int, api.Field(ge=1)]


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


class GAN(AdversarialModel):
    """The classic GAN: MLP generator and discriminator; works for images of any shape."""

    plugin_name = "gan"

    class Params(GANParams):
        hidden: tuple[_Width, ...] = api.Field(
            (256, 256),
            min_length=1,
            description=(
                "Widths of the hidden layers of the generator, from z outwards; the "
                "discriminator uses them in reverse order, from the image inwards."
            ),
        )

    params: Params

    def build_generator(self) -> keras.Model:
        import keras

        p, spec = self.params, self.spec
        reg = kernel_regularizer(p)
        inputs, x = latent_input(p, spec)
        for i, width in enumerate(p.hidden):
            x = keras.layers.Dense(width, kernel_regularizer=reg, name=f"g_dense_{i}")(x)
            x = keras.layers.LeakyReLU(LEAK, name=f"g_leaky_relu_{i}")(x)
        x = keras.layers.Dense(spec.height * spec.width * spec.channels, kernel_regularizer=reg, name="g_out")(x)
        x = keras.layers.Activation("tanh", dtype="float32", name="g_tanh")(x)
        images = keras.layers.Reshape(spec.shape, name="g_images")(x)
        return keras.Model(inputs, images, name="generator")

    def build_discriminator(self) -> keras.Model:
        import keras

        p, spec = self.params, self.spec
        reg = kernel_regularizer(p)
        images = image_input(spec)
        inputs = images
        x = keras.layers.Flatten(name="d_flatten")(images)
        if p.conditional:
            label = label_input()
            inputs = [images, label]
            embedded = embed_label(label, spec.num_classes, p.latent_dim, "d")
            x = keras.layers.Concatenate(name="d_image_and_label")([x, embedded])
        for i, width in enumerate(reversed(p.hidden)):
            x = spectral(keras.layers.Dense(width, kernel_regularizer=reg, name=f"d_dense_{i}"), p.spectral_norm)(x)
            x = keras.layers.LeakyReLU(LEAK, name=f"d_leaky_relu_{i}")(x)
            if p.dropout > 0:
                x = keras.layers.Dropout(p.dropout, name=f"d_dropout_{i}")(x)
        logit = keras.layers.Dense(1, kernel_regularizer=reg, dtype="float32", name="d_logit")
        logits = spectral(logit, p.spectral_norm)(x)
        return keras.Model(inputs, logits, name="discriminator")
