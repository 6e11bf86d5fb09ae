"""The `mlp-gan` model: A small fully-connected GAN.

Two players, a generator and a discriminator, both fully connected (images of any shape), with
the non-saturating logistic loss and instance noise on the discriminator's inputs. Written with
keras.layers and keras.ops only, so it trains on JAX, TensorFlow and PyTorch.
"""

from ganctl import api


class MlpGan(api.GenerativeModel):
    """A small fully-connected GAN."""  # the first line is what `ganctl plugins` shows

    players = ("generator", "discriminator")  # updated in this order, each by its own optimizer

    class Params(api.Params):  # validates the recipe's model: section (unknown keys are refused)
        latent_dim: int = api.Field(32, ge=1, le=4096, description="Size of the latent vector z.")
        hidden: int = api.Field(128, ge=1, description="Width of each network's hidden layer.")
        noise: float = api.Field(0.1, ge=0, description="Std of the noise added to the discriminator's inputs.")

    def __init__(self, params: Params, spec: api.DataSpec) -> None:
        import keras

        super().__init__(params, spec)
        self.latent_dim = params.latent_dim
        # Build every network here, so every variable exists before training starts.
        z = keras.Input(shape=(params.latent_dim,), name=api.INPUT_Z)
        x = keras.layers.Dense(params.hidden, activation="relu", name="g_hidden")(z)
        x = keras.layers.Dense(spec.height * spec.width * spec.channels, name="g_out")(x)
        x = keras.layers.Activation("tanh", dtype="float32", name="g_tanh")(x)  # images in [-1, 1]
        self._generator = keras.Model(z, keras.layers.Reshape(spec.shape, name="g_images")(x), name="generator")
        images = keras.Input(shape=spec.shape, name="images")
        y = keras.layers.Flatten(name="d_flatten")(images)
        y = keras.layers.Dense(params.hidden, name="d_hidden")(y)
        y = keras.layers.LeakyReLU(0.2, name="d_leaky_relu")(y)
        logits = keras.layers.Dense(1, dtype="float32", name="d_logit")(y)
        self._discriminator = keras.Model(images, logits, name="discriminator")
        # Noise drawn inside a loss comes from a SeedGenerator, returned by seed_generators():
        # on JAX an unregistered one would be frozen into the compiled step.
        self._noise = keras.random.SeedGenerator(0, name="instance_noise")

    @property
    def generator(self):
        return self._generator

    def networks(self):
        return {"generator": self._generator, "discriminator": self._discriminator}

    def seed_generators(self):
        return [self._noise]

    def loss(self, player, images, labels, z):
        import keras
        from keras import ops

        images, z = ops.convert_to_tensor(images), ops.convert_to_tensor(z)
        fake = self._generator(z, training=True)
        fake_logits = self._discriminator(self._noisy(fake), training=True)
        if player == "generator":
            loss = ops.mean(keras.losses.binary_crossentropy(ops.ones_like(fake_logits), fake_logits, from_logits=True))
            return loss, {"loss": loss}
        real_logits = self._discriminator(self._noisy(images), training=True)
        real = keras.losses.binary_crossentropy(ops.ones_like(real_logits), real_logits, from_logits=True)
        fake_loss = keras.losses.binary_crossentropy(ops.zeros_like(fake_logits), fake_logits, from_logits=True)
        loss = ops.mean(real) + ops.mean(fake_loss)
        return loss, {"loss": loss, "real": ops.mean(real_logits), "fake": ops.mean(fake_logits)}

    def _noisy(self, images):
        import keras

        if not self.params.noise:
            return images
        return images + self.params.noise * keras.random.normal(keras.ops.shape(images), seed=self._noise)


@api.hookimpl
def register_models(register):
    register("mlp-gan", MlpGan)
