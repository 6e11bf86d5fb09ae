"""The ``gan`` model: the classic fully-connected GAN (Goodfellow et al. 2014).

Both networks are multi-layer perceptrons, so it takes images of any shape (13x13, 1x100, ...)
and is the fallback for data the convolutional ``dcgan`` cannot tile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from ganctl import api

from ._blocks import (
    LEAK,
    dropout,
    embed_label,
    image_input,
    kernel_regularizer,
    label_input,
    latent_input,
    logits_with_projection,
    spectral,
)
from ._common import AdversarialModel, GANParams

if TYPE_CHECKING:
    import keras

_Width = Annotated[int, api.Field(ge=1)]


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
        x = keras.layers.Flatten(name="d_flatten")(self.augmented(images))
        label = label_input() if p.conditional else None
        if label is not None:
            inputs = [images, label]
        if label is not None and p.conditioning == "concat":
            embedded = embed_label(label, spec.num_classes, p.latent_dim, "d")
            x = keras.layers.Concatenate(name="d_image_and_label")([x, embedded])
        for i, width in enumerate(reversed(p.hidden)):
            x = spectral(keras.layers.Dense(width, kernel_regularizer=reg, name=f"d_dense_{i}"), p.spectral_norm)(x)
            x = keras.layers.LeakyReLU(LEAK, name=f"d_leaky_relu_{i}")(x)
            if p.dropout > 0:
                x = dropout(p.dropout, f"d_dropout_{i}")(x)
        logit = keras.layers.Dense(1, kernel_regularizer=reg, dtype="float32", name="d_logit")
        logits = spectral(logit, p.spectral_norm)(x)
        if label is not None and p.conditioning == "projection":
            logits = logits_with_projection(logits, x, label, spec.num_classes)
        return keras.Model(inputs, logits, name="discriminator")
