"""The ``vae`` model: a variational autoencoder (Kingma & Welling 2014), beta-VAE and CVAE.

One player, ``vae``: its network holds the encoder ``q(z|x)`` (a diagonal Gaussian: mean and
log-variance) and the decoder ``p(x|z)``. The loss per example is the reconstruction's negative
log-likelihood summed over pixels plus ``kl_weight`` times ``KL(q(z|x) || N(0, I))`` summed over
the latent dimensions, averaged over the batch; ``z`` is drawn from ``q(z|x)`` with the
reparameterisation trick, from the model's own seed generator (not the engine's latents).

The decoder is the generator ganctl samples and exports: ``z`` (and ``label``) -> images in
[-1, 1]. ``likelihood: bernoulli`` reads pixels ``x`` in [-1, 1] as probabilities
``p = (x + 1) / 2`` and the decoder outputs logits ``l``: the images are ``2 * sigmoid(l) - 1``
(computed as ``tanh(l / 2)``, the same number). ``likelihood: gaussian`` models ``x`` as
``N(tanh(o), sigma^2)`` per pixel with a fixed ``sigma``: the images are ``tanh(o)``.

``architecture: conv`` sizes convolutional networks to the data as dcgan does (its
:func:`~.dcgan.upsampling_plan`); ``mlp`` takes images of any shape.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from ganctl import api

from ._blocks import LEAK, check_conditional, embed_label, image_input, label_input, latent_input
from .dcgan import channels, upsampling_plan

if TYPE_CHECKING:
    import keras

_Width = Annotated[int, api.Field(ge=1)]

DEFAULT_SIGMA = 0.1
"""The Gaussian likelihood's standard deviation when ``sigma`` is not set."""

HELD_OUT_SEED = 20140
"""The fixed seed of the held-out ELBO's noise (see :meth:`VAE.held_out_logs`)."""


class VAEParams(api.Params):
    """Parameters of the ``vae`` model."""

    latent_dim: int = api.Field(16, ge=1, le=4096, description="Size of the latent vector z (the decoder's input).")
    architecture: Literal["conv", "mlp"] = api.Field(
        "conv",
        description=(
            "'conv': convolutional encoder and decoder sized to the data like dcgan's (8x8, 28x28, "
            "32x32, 64x64, ...); 'mlp': fully-connected networks that take images of any shape."
        ),
    )
    filters: int = api.Field(
        32,
        ge=1,
        le=4096,
        description=(
            "conv: channels of the widest convolutions (the decoder's base image and the encoder's "
            "last convolution); they halve at each step towards full resolution (never below 16; "
            "mlp ignores it)."
        ),
    )
    hidden: tuple[_Width, ...] = api.Field(
        (256,),
        min_length=1,
        description=(
            "mlp: widths of the encoder's hidden layers, from the image inwards; the decoder uses "
            "them in reverse order, from z outwards (conv ignores them)."
        ),
    )
    likelihood: Literal["bernoulli", "gaussian"] = api.Field(
        "bernoulli",
        description=(
            "p(x|z) per pixel: 'bernoulli' (pixels mapped from [-1, 1] to [0, 1] are probabilities; "
            "the decoder outputs logits l, images are 2*sigmoid(l)-1) or 'gaussian' (N(mean, sigma^2) "
            "on [-1, 1] pixels with mean = tanh(decoder output) and a fixed sigma)."
        ),
    )
    sigma: float | None = api.Field(
        None,
        gt=0,
        description=(
            f"likelihood gaussian only: the fixed standard deviation of each pixel (null: {DEFAULT_SIGMA}); "
            "smaller values weigh the reconstruction more against the KL term."
        ),
    )
    beta: float = api.Field(
        1.0, gt=0, description="Weight of the KL term once warmed up (beta-VAE; 1: the plain VAE's ELBO)."
    )
    kl_warmup_epochs: int = api.Field(
        0,
        ge=0,
        description=(
            "The KL weight rises linearly from 0 to beta over this many epochs, counted in updates "
            "(0: beta from the first update)."
        ),
    )
    conditional: bool = api.Field(
        False,
        description=(
            "Condition encoder and decoder on the class label (a CVAE; needs labelled data); the "
            "generator then takes [z, label]."
        ),
    )

    @api.model_validator(mode="after")
    def _sigma_is_gaussian(self) -> VAEParams:
        if self.sigma is not None and self.likelihood != "gaussian":
            raise ValueError(
                f"sigma is {self.sigma}, but likelihood '{self.likelihood}' has no standard deviation "
                "(sigma is the Gaussian likelihood's). Remove `sigma`, or set `likelihood: gaussian`."
            )
        return self


class VAE(api.GenerativeModel):
    """Variational autoencoder (beta-VAE, KL warm-up, conditional CVAE); conv or MLP networks."""

    players: ClassVar[tuple[str, ...]] = ("vae",)
    Params = VAEParams
    params: VAEParams

    def __init__(self, params: VAEParams, spec: api.DataSpec) -> None:
        import keras

        super().__init__(params, spec)
        check_conditional("vae", params, spec)  # type: ignore[arg-type]  # it reads .conditional only
        self.latent_dim = params.latent_dim
        if params.architecture == "conv":
            try:
                self.steps, self.base_height, self.base_width = upsampling_plan(spec.height, spec.width)
            except api.ConfigError:
                raise api.ConfigError(
                    f"model.architecture is conv, but the vae's convolutional networks cannot tile "
                    f"{spec.height}x{spec.width} images: like dcgan's, they halve height and width "
                    "together 1 to 4 times down to a base of at least 2 pixels (4 from 16 pixels up), "
                    "so both must be even (e.g. 8x8, 28x28, 32x32, 64x64). Set `model.architecture: mlp` "
                    "(fully-connected networks take any shape), or resize the images."
                ) from None
        self._encoder = self._build_encoder()
        self._decoder = self._build_decoder()
        self._generator = self._build_generator()
        # The player's network: images (and label) -> reconstructions, holding both networks.
        images, label = image_input(spec), label_input() if self.conditional else None
        mean, _ = self._encoder(self._with_label(images, label))
        reconstruction = self._generator(self._with_label(mean, label))
        self._vae = keras.Model(self._with_label(images, label), reconstruction, name="vae")
        # The reparameterisation noise, and the update counter of the KL warm-up: the state of a
        # SeedGenerator advances by one per draw, and every checkpoint saves it.
        self._noise = keras.random.SeedGenerator(name="vae_noise")
        self._updates = keras.random.SeedGenerator(0, name="vae_update_counter")
        self._warmup_updates: int | None = None if params.kl_warmup_epochs else 0
        self._scale = 0.5 if params.likelihood == "bernoulli" else 1.0
        self._sigma = params.sigma or DEFAULT_SIGMA

    # -- networks -------------------------------------------------------------------------------

    @property
    def conditional(self) -> bool:
        return self.params.conditional

    @property
    def generator(self) -> keras.Model:
        """The decoder, ending in the image transform: ``z`` (and ``label``) -> images in [-1, 1]."""
        return self._generator

    @property
    def encoder(self) -> keras.Model:
        """images (and ``label``) -> ``[mean, log_variance]`` of q(z|x), each ``[batch, latent_dim]``."""
        return self._encoder

    @property
    def decoder(self) -> keras.Model:
        """``z`` (and ``label``) -> the decoder's raw output ``[batch, H, W, C]`` (logits, or the
        Gaussian mean before its tanh)."""
        return self._decoder

    def networks(self) -> dict[str, Any]:
        return {"vae": self._vae}

    def seed_generators(self) -> list[Any]:
        """The reparameterisation noise and the update counter of the KL warm-up."""
        return [self._noise, self._updates]

    def _build_encoder(self) -> keras.Model:
        import keras

        p, spec = self.params, self.spec
        images = image_input(spec)
        inputs: Any = images
        x = images
        label = None
        if p.conditional:
            label = label_input()
            inputs = [images, label]
        if p.architecture == "conv":
            if label is not None:
                # The label becomes one more image channel, as in dcgan's discriminator.
                plane = embed_label(label, spec.num_classes, p.latent_dim, "e")
                plane = keras.layers.Dense(spec.height * spec.width, name="e_label_plane")(plane)
                plane = keras.layers.Reshape((spec.height, spec.width, 1), name="e_label_image")(plane)
                x = keras.layers.Concatenate(axis=-1, name="e_image_and_label")([x, plane])
            for step in range(1, self.steps + 1):
                x = keras.layers.Conv2D(channels(p.filters, self.steps - step), 4, strides=2, padding="same",
                                        data_format="channels_last", name=f"e_down_{step}")(x)
                x = keras.layers.LeakyReLU(LEAK, name=f"e_down_{step}_leaky_relu")(x)
            x = keras.layers.Flatten(data_format="channels_last", name="e_flatten")(x)
        else:
            x = keras.layers.Flatten(name="e_flatten")(x)
            if label is not None:
                embedded = embed_label(label, spec.num_classes, p.latent_dim, "e")
                x = keras.layers.Concatenate(name="e_image_and_label")([x, embedded])
            for i, width in enumerate(p.hidden):
                x = keras.layers.Dense(width, name=f"e_dense_{i}")(x)
                x = keras.layers.LeakyReLU(LEAK, name=f"e_leaky_relu_{i}")(x)
        mean = keras.layers.Dense(p.latent_dim, dtype="float32", name="e_mean")(x)
        log_variance = keras.layers.Dense(p.latent_dim, dtype="float32", name="e_log_variance")(x)
        return keras.Model(inputs, [mean, log_variance], name="encoder")

    def _build_decoder(self) -> keras.Model:
        import keras

        p, spec = self.params, self.spec
        inputs, x = latent_input(p, spec)  # type: ignore[arg-type]  # it reads latent_dim and conditional only
        if p.architecture == "conv":
            width = channels(p.filters, 0)
            x = keras.layers.Dense(self.base_height * self.base_width * width, name="d_project")(x)
            x = keras.layers.ReLU(name="d_project_relu")(x)
            x = keras.layers.Reshape((self.base_height, self.base_width, width), name="d_base")(x)
            for step in range(1, self.steps + 1):
                x = keras.layers.UpSampling2D(2, data_format="channels_last", name=f"d_resize_{step}")(x)
                x = keras.layers.Conv2D(channels(p.filters, step), 3, padding="same", data_format="channels_last",
                                        name=f"d_up_{step}")(x)
                x = keras.layers.ReLU(name=f"d_up_{step}_relu")(x)
            x = keras.layers.Conv2D(spec.channels, 3, padding="same", data_format="channels_last",
                                    dtype="float32", name="d_out")(x)
        else:
            for i, width in enumerate(reversed(p.hidden)):
                x = keras.layers.Dense(width, name=f"d_dense_{i}")(x)
                x = keras.layers.ReLU(name=f"d_relu_{i}")(x)
            x = keras.layers.Dense(spec.height * spec.width * spec.channels, dtype="float32", name="d_out")(x)
            x = keras.layers.Reshape(spec.shape, dtype="float32", name="d_images")(x)
        return keras.Model(inputs, x, name="decoder")

    def _build_generator(self) -> keras.Model:
        """The decoder and the transform of its output into images: ``tanh(o / 2)`` (that is,
        ``2 * sigmoid(o) - 1``) for bernoulli logits, ``tanh(o)`` for the Gaussian mean."""
        import keras

        p = self.params
        z = keras.Input(shape=(p.latent_dim,), name="z")
        inputs: Any = [z, label_input()] if p.conditional else z
        x = self._decoder(inputs)
        if p.likelihood == "bernoulli":
            x = keras.layers.Rescaling(0.5, dtype="float32", name="g_half_logits")(x)
        images = keras.layers.Activation("tanh", dtype="float32", name="g_tanh")(x)
        return keras.Model(inputs, images, name="generator")

    # -- training -------------------------------------------------------------------------------

    def begin_training(self, steps_per_epoch: int) -> None:
        """The KL warm-up's length in updates: ``kl_warmup_epochs * steps_per_epoch``."""
        self._warmup_updates = self.params.kl_warmup_epochs * steps_per_epoch

    def kl_weight(self, update: Any) -> Any:
        """``beta * min(1, update / warm-up updates)`` (``beta`` without a warm-up), float32;
        ``update`` is the number of updates made before this one."""
        from keras import ops

        beta = float(self.params.beta)
        if not self._warmup_updates:
            if self._warmup_updates is None:
                raise api.GanctlError(
                    "the vae's model.kl_warmup_epochs needs the number of steps per epoch, but "
                    "begin_training(steps_per_epoch) was not called before training.")
            return ops.convert_to_tensor(beta, dtype="float32")
        done = ops.minimum(ops.cast(update, "int32"), self._warmup_updates)
        return ops.cast(done, "float32") * (beta / self._warmup_updates)

    def loss(self, player: str, images: Any, labels: Any, z: Any) -> tuple[Any, dict[str, Any]]:
        """The negative ELBO with the KL term weighted (see the module docstring); logged:
        ``loss``, ``reconstruction`` and ``kl`` (batch means of the per-example sums), ``elbo``
        (``-(reconstruction + kl)``, nats per image) and ``kl_weight``."""
        import keras
        from keras import ops

        if player not in self.players:
            raise ValueError(f"unknown player '{player}': the vae's only player is vae.")
        images, labels = ops.convert_to_tensor(images), self._labels(labels)
        update = self._updates.next()[1]
        mean, log_variance = self._encoder(self._with_label(images, labels), training=True)
        noise = keras.random.normal(ops.shape(mean), dtype="float32", seed=self._noise)
        reconstruction, kl = self._terms(images, labels, mean, log_variance, noise, training=True)
        weight = self.kl_weight(update)
        loss = ops.mean(reconstruction + weight * kl)
        reconstruction, kl = ops.mean(reconstruction), ops.mean(kl)
        return loss, {"loss": loss, "reconstruction": reconstruction, "kl": kl,
                      "elbo": -(reconstruction + kl), "kl_weight": weight}

    def _terms(self, images: Any, labels: Any, mean: Any, log_variance: Any, noise: Any,
               training: bool) -> tuple[Any, Any]:
        """Per example: the reconstruction's negative log-likelihood (summed over pixels) for
        ``z = mean + exp(log_variance / 2) * noise``, and ``KL(q(z|x) || N(0, I))`` (summed over
        the latent dimensions), both ``[batch]``."""
        from keras import ops

        sample = mean + ops.exp(0.5 * log_variance) * noise
        out = ops.cast(self._decoder(self._with_label(sample, labels), training=training), "float32")
        x = ops.cast(images, "float32")
        if self.params.likelihood == "bernoulli":
            # -log p(x|z) = sum softplus(l) - p * l, the cross-entropy of p = (x + 1) / 2 and sigmoid(l).
            pixels = ops.softplus(out) - 0.5 * (x + 1.0) * out
        else:
            sigma = self._sigma
            constant = math.log(sigma) + 0.5 * math.log(2.0 * math.pi)
            pixels = ops.square(x - ops.tanh(out)) * (0.5 / sigma**2) + constant
        axes = tuple(range(1, len(pixels.shape)))
        reconstruction = ops.sum(pixels, axis=axes)
        kl = 0.5 * ops.sum(ops.exp(log_variance) + ops.square(mean) - 1.0 - log_variance, axis=-1)
        return reconstruction, kl

    # -- inference ------------------------------------------------------------------------------

    def held_out_logs(self, images: Any, labels: Any) -> dict[str, Any]:
        """``elbo``, ``reconstruction`` and ``kl`` per example (batch means) with the KL weight 1
        (the true ELBO, whatever ``beta`` and the warm-up), one posterior sample per image.

        The noise comes from a fixed integer seed: a stateless draw, so the same images give the
        same numbers whenever they are measured, and training's noise generator is not touched
        (an evaluation between epochs does not change what training draws next).
        """
        import keras
        from keras import ops

        images, labels = ops.convert_to_tensor(images), self._labels(labels)
        mean, log_variance = self._encoder(self._with_label(images, labels), training=False)
        noise = keras.random.normal(ops.shape(mean), dtype="float32", seed=HELD_OUT_SEED)
        reconstruction, kl = self._terms(images, labels, mean, log_variance, noise, training=False)
        reconstruction, kl = ops.mean(reconstruction), ops.mean(kl)
        return {"elbo": -(reconstruction + kl), "reconstruction": reconstruction, "kl": kl}

    def reconstruct(self, images: Any, labels: Any) -> Any:
        """The decoder's images for the encoder's posterior mean."""
        from keras import ops

        images, labels = ops.convert_to_tensor(images), self._labels(labels)
        mean, _ = self._encoder(self._with_label(images, labels), training=False)
        return self._generator(self._with_label(mean, labels), training=False)

    def generate(self, z: Any, labels: Any = None) -> Any:
        from keras import ops

        z, labels = ops.convert_to_tensor(z), self._labels(labels)
        return self._generator(self._with_label(z, labels), training=False)

    def _labels(self, labels: Any) -> Any:
        """The labels as an int32 tensor for a conditional model; None otherwise."""
        if not self.conditional:
            return None
        if labels is None:
            raise api.ConfigError("the conditional vae model needs labels, but got none.")
        from keras import ops

        return ops.convert_to_tensor(labels, dtype="int32")

    def _with_label(self, x: Any, labels: Any) -> Any:
        return [x, labels] if self.conditional else x

