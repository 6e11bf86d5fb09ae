"""The ``dcgan`` model: a deep convolutional GAN (Radford et al. 2015), sized to the data.

The generator projects z to a small base image and doubles its size k times (nearest-neighbour
upsampling and a 3x3 convolution by default, or strided transposed convolutions); the discriminator mirrors it with k strided convolutions. k follows
from the image shape (see :func:`upsampling_plan`): 8x8 -> base 2x2 and k=2, 28x28 -> 7x7 and
k=2, 32x32 -> 4x4 and k=3, 64x64 -> 4x4 and k=4, with any number of channels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

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

MAX_STEPS = 4
"""At most this many 2x up-sampling steps (larger images get a larger base)."""

MIN_CHANNELS = 16
"""No convolution gets fewer channels than this (or than ``filters``, if smaller)."""

KERNEL = 4
"""Kernel size of the strided (transposed) convolutions: divisible by the stride, no checkerboard."""


def upsampling_plan(height: int, width: int) -> tuple[int, int, int]:
    """``(k, base_height, base_width)``: how dcgan builds ``height x width`` images.

    Both sides are halved together while both are even and both halves stay at least the
    minimum base size (4, or 2 for images smaller than 16 pixels), at most :data:`MAX_STEPS`
    times. Raises :class:`api.ConfigError` when not even one halving is possible.
    """
    min_base = 4 if min(height, width) >= 16 else 2
    k = 0
    while (
        k < MAX_STEPS
        and all((side >> k) % 2 == 0 and (side >> k) // 2 >= min_base for side in (height, width))
    ):
        k += 1
    if k == 0:
        raise api.ConfigError(
            f"the dcgan model cannot make {height}x{width} images: its generator doubles a base "
            f"image of at least {min_base}x{min_base} pixels 1 to {MAX_STEPS} times, so height and "
            f"width must both be even, with halves of at least {min_base} (e.g. 8x8, 28x28, 32x32, "
            "64x64; any number of channels). Resize the images (e.g. image-folder `size: 32`), "
            "or use `model: {plugin: gan}`, whose fully-connected networks take any shape."
        )
    return k, height >> k, width >> k


def channels(filters: int, step: int) -> int:
    """Channels of the layer ``step`` resolution steps below the widest (``filters``) one."""
    return max(filters >> step, min(filters, MIN_CHANNELS))


class DCGAN(AdversarialModel):
    """Deep convolutional GAN, sized to the data: 8x8, 28x28, 32x32, 64x64 images and more."""

    plugin_name = "dcgan"

    class Params(GANParams):
        filters: int = api.Field(
            64,
            ge=1,
            le=4096,
            description=(
                "Channels of the widest layers: the generator's base image and the "
                f"discriminator's last convolution. They halve at each step towards full "
                f"resolution (never below {MIN_CHANNELS})."
            ),
        )
        batchnorm: bool = api.Field(True, description="Batch normalisation in the generator.")
        upsampling: Literal["resize", "transpose"] = api.Field(
            "resize",
            description=(
                "How the generator doubles its resolution: 'resize' (nearest-neighbour upsampling, "
                "then a 3x3 convolution: no checkerboard artefacts, and 2.3x faster on CPUs) or "
                "'transpose' (a strided 4x4 transposed convolution, as in the DCGAN paper)."
            ),
        )

    params: Params

    def __init__(self, params: Params, spec: api.DataSpec) -> None:
        self.steps, self.base_height, self.base_width = upsampling_plan(spec.height, spec.width)
        super().__init__(params, spec)

    def build_generator(self) -> keras.Model:
        import keras

        p, spec, k = self.params, self.spec, self.steps
        reg = kernel_regularizer(p)
        bn = p.batchnorm

        def normalise_and_activate(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
            if bn:
                x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
            return keras.layers.ReLU(name=f"{name}_relu")(x)

        inputs, x = latent_input(p, spec)
        width = channels(p.filters, 0)
        x = keras.layers.Dense(
            self.base_height * self.base_width * width, use_bias=not bn, kernel_regularizer=reg, name="g_project"
        )(x)
        x = normalise_and_activate(x, "g_project")
        x = keras.layers.Reshape((self.base_height, self.base_width, width), name="g_base")(x)
        for step in range(1, k + 1):
            conv = {"padding": "same", "data_format": "channels_last", "use_bias": not bn,
                    "kernel_regularizer": reg, "name": f"g_up_{step}"}
            if p.upsampling == "transpose":
                x = keras.layers.Conv2DTranspose(channels(p.filters, step), KERNEL, strides=2, **conv)(x)
            else:
                x = keras.layers.UpSampling2D(2, data_format="channels_last", name=f"g_resize_{step}")(x)
                x = keras.layers.Conv2D(channels(p.filters, step), 3, **conv)(x)
            x = normalise_and_activate(x, f"g_up_{step}")
        x = keras.layers.Conv2D(
            spec.channels, 3, padding="same", data_format="channels_last", kernel_regularizer=reg, name="g_out"
        )(x)
        images = keras.layers.Activation("tanh", dtype="float32", name="g_tanh")(x)
        return keras.Model(inputs, images, name="generator")

    def build_discriminator(self) -> keras.Model:
        import keras

        p, spec, k = self.params, self.spec, self.steps
        reg = kernel_regularizer(p)
        images = image_input(spec)
        inputs, x = images, self.augmented(images)
        label = label_input() if p.conditional else None
        if label is not None:
            inputs = [images, label]
        if label is not None and p.conditioning == "concat":
            # The label becomes one more image channel: embedding -> Dense(H*W) -> [H, W, 1].
            plane = embed_label(label, spec.num_classes, p.latent_dim, "d")
            # Not spectrally normalised: it only projects the class, and normalised it shrank the
            # class's channel until the discriminator ignored it (docs/quality.md).
            plane = keras.layers.Dense(spec.height * spec.width, kernel_regularizer=reg, name="d_label_plane")(plane)
            plane = keras.layers.Reshape((spec.height, spec.width, 1), name="d_label_image")(plane)
            x = keras.layers.Concatenate(axis=-1, name="d_image_and_label")([x, plane])
        for step in range(1, k + 1):
            conv = keras.layers.Conv2D(
                channels(p.filters, k - step),
                KERNEL,
                strides=2,
                padding="same",
                data_format="channels_last",
                kernel_regularizer=reg,
                name=f"d_down_{step}",
            )
            x = spectral(conv, p.spectral_norm)(x)
            x = keras.layers.LeakyReLU(LEAK, name=f"d_down_{step}_leaky_relu")(x)
            if p.dropout > 0:
                x = dropout(p.dropout, f"d_down_{step}_dropout")(x)
        x = keras.layers.Flatten(data_format="channels_last", name="d_flatten")(x)
        logit = keras.layers.Dense(1, kernel_regularizer=reg, dtype="float32", name="d_logit")
        logits = spectral(logit, p.spectral_norm)(x)
        if label is not None and p.conditioning == "projection":
            logits = logits_with_projection(logits, x, label, spec.num_classes)
        return keras.Model(inputs, logits, name="discriminator")
