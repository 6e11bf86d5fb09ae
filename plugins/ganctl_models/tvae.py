"""The ``tvae`` model: a variational autoencoder of table rows in the TVAE design (Xu et al. 2019).

It takes tables (``data_kinds = ("table",)``, API 1.7): each row arrives encoded as the dataset's
:class:`ganctl.api.TableSpec` says (a numeric column: its offset within its Gaussian-mixture mode,
one ``tanh`` slot, and the mode one-hot; a categorical or boolean column one-hot; a missingness
indicator one-hot). One player, ``tvae``: an MLP encoder ``q(z|x)`` (``compress`` widths) and an MLP
decoder (``decompress`` widths) whose output is read per segment of the row. The loss per row is
``loss_factor`` times the reconstruction's negative log-likelihood (each offset slot a Gaussian
``N(tanh(o), sigma^2)`` with a learned ``sigma`` per numeric column, kept within [0.01, 1]; each
one-hot block a categorical cross-entropy) plus ``KL(q(z|x) || N(0, I))``, averaged over the batch,
as TVAE's. ``z`` is drawn with the reparameterisation trick from the model's own seed generator.

The generator (``z`` -> rows: offsets through ``tanh``, one-hot blocks through ``softmax``) is what
``ganctl generate RUN --out synthetic.csv`` samples; ganctl decodes its rows back into the table's
columns (argmax of each block; an indicator that says missing leaves the value empty). Unlike
TVAE's sampler it adds no ``sigma`` noise to the offsets, so a seed gives the same table everywhere.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from ganctl import api

if TYPE_CHECKING:
    import keras

_Width = Annotated[int, api.Field(ge=1, le=8192)]

SIGMA_RANGE = (0.01, 1.0)
"""TVAE clamps each column's learned standard deviation to this range."""

HELD_OUT_SEED = 20190
"""The fixed seed of the held-out ELBO's noise (as the image vae's)."""


class TVAEParams(api.Params):
    """Parameters of the ``tvae`` model."""

    latent_dim: int = api.Field(128, ge=1, le=4096, description="Size of the latent vector z (TVAE: 128).")
    compress: tuple[_Width, ...] = api.Field((128, 128), min_length=1,
                                             description="Widths of the encoder's hidden layers.")
    decompress: tuple[_Width, ...] = api.Field((128, 128), min_length=1,
                                               description="Widths of the decoder's hidden layers.")
    loss_factor: float = api.Field(2.0, gt=0, description="Weight of the reconstruction against the KL term "
                                                          "(TVAE: 2).")
    sigma: float = api.Field(0.1, ge=SIGMA_RANGE[0], le=SIGMA_RANGE[1],
                             description="Initial standard deviation of each numeric column's offset (TVAE: 0.1).")


def _layers(spec: api.TableSpec, sigma: float) -> tuple[Any, Any]:
    """The two layers TVAE needs beyond Dense: the learned sigmas, and the row activation."""
    import keras
    from keras import ops

    segments = spec.segments()
    values = [s.start for s in segments if s.role == "value"]

    class Sigmas(keras.layers.Layer):
        """One learned standard deviation per numeric column, broadcast over the batch: ``[B, n]``."""

        def build(self, input_shape: Any) -> None:
            self.sigma = self.add_weight(shape=(max(len(values), 1),), name="sigma",
                                         initializer=keras.initializers.Constant(sigma))

        def call(self, x: Any) -> Any:
            return ops.zeros_like(x[:, :1]) + ops.clip(self.sigma, *SIGMA_RANGE)[None, :]

        def compute_output_shape(self, input_shape: Any) -> tuple[Any, int]:
            return (input_shape[0], max(len(values), 1))

    class Activate(keras.layers.Layer):
        """The decoder's output as a row: ``tanh`` on offsets, ``softmax`` over each one-hot block."""

        def call(self, x: Any) -> Any:
            parts = [ops.tanh(x[:, s.start:s.stop]) if s.role == "value" else ops.softmax(x[:, s.start:s.stop], axis=-1)
                     for s in segments]
            return ops.concatenate(parts, axis=-1)

    return Sigmas(name="sigmas"), Activate(dtype="float32", name="g_rows")


class TVAE(api.GenerativeModel):
    """Tabular VAE (TVAE design): mode-normalised numbers, one-hot categories, missingness learned."""

    players: ClassVar[tuple[str, ...]] = ("tvae",)
    data_kinds: ClassVar[tuple[str, ...]] = ("table",)
    Params = TVAEParams
    params: TVAEParams
    spec: api.TableSpec

    def __init__(self, params: TVAEParams, spec: api.TableSpec) -> None:
        import keras

        super().__init__(params, spec)
        self.latent_dim = params.latent_dim
        self._segments = spec.segments()
        self._values = [s.start for s in self._segments if s.role == "value"]
        self._blocks = [(s.start, s.stop) for s in self._segments if s.role != "value"]
        width = spec.width
        rows = keras.Input(shape=(width,), name="rows")
        x = rows
        for i, units in enumerate(params.compress):
            x = keras.layers.Dense(units, activation="relu", name=f"e_dense_{i}")(x)
        mean = keras.layers.Dense(params.latent_dim, dtype="float32", name="e_mean")(x)
        log_variance = keras.layers.Dense(params.latent_dim, dtype="float32", name="e_log_variance")(x)
        self._encoder = keras.Model(rows, [mean, log_variance], name="encoder")
        z = keras.Input(shape=(params.latent_dim,), name="z")
        x = z
        for i, units in enumerate(params.decompress):
            x = keras.layers.Dense(units, activation="relu", name=f"d_dense_{i}")(x)
        out = keras.layers.Dense(width, dtype="float32", name="d_out")(x)
        self._decoder = keras.Model(z, out, name="decoder")
        self._sigmas, activate = _layers(spec, params.sigma)
        z = keras.Input(shape=(params.latent_dim,), name="z")
        self._generator = keras.Model(z, activate(self._decoder(z)), name="generator")
        # The player's network holds every trained weight: encoder, decoder and the sigmas.
        mean, _ = self._encoder(rows)
        self._tvae = keras.Model(rows, [self._decoder(mean), self._sigmas(rows)], name="tvae")
        self._noise = keras.random.SeedGenerator(name="tvae_noise")

    @property
    def generator(self) -> keras.Model:
        """``z`` -> rows ``[batch, width]`` (offsets in [-1, 1], one-hot blocks as probabilities)."""
        return self._generator

    def networks(self) -> dict[str, Any]:
        return {"tvae": self._tvae}

    def seed_generators(self) -> list[Any]:
        return [self._noise]

    def loss(self, player: str, images: Any, labels: Any, z: Any) -> tuple[Any, dict[str, Any]]:
        """``loss_factor * reconstruction + kl`` per row, batch mean; logged: ``loss``,
        ``reconstruction`` and ``kl`` (batch means) and ``elbo`` (``-(reconstruction + kl)``)."""
        import keras
        from keras import ops

        if player not in self.players:
            raise ValueError(f"unknown player '{player}': the tvae's only player is tvae.")
        rows = ops.convert_to_tensor(images, dtype="float32")
        mean, log_variance = self._encoder(rows, training=True)
        noise = keras.random.normal(ops.shape(mean), dtype="float32", seed=self._noise)
        reconstruction, kl = self._terms(rows, mean, log_variance, noise, training=True)
        loss = ops.mean(self.params.loss_factor * reconstruction + kl)
        reconstruction, kl = ops.mean(reconstruction), ops.mean(kl)
        return loss, {"loss": loss, "reconstruction": reconstruction, "kl": kl, "elbo": -(reconstruction + kl)}

    def _terms(self, rows: Any, mean: Any, log_variance: Any, noise: Any, training: bool) -> tuple[Any, Any]:
        """Per row: the reconstruction's negative log-likelihood and ``KL(q(z|x) || N(0, I))``, both ``[batch]``."""
        from keras import ops

        out = ops.cast(self._decoder(mean + ops.exp(0.5 * log_variance) * noise, training=training), "float32")
        terms = []
        if self._values:
            sigma = self._sigmas(rows)[:, : len(self._values)]
            x, o = ops.take(rows, self._values, axis=1), ops.take(out, self._values, axis=1)
            gaussian = ops.square(x - ops.tanh(o)) / (2.0 * ops.square(sigma)) + ops.log(sigma)
            terms.append(ops.sum(gaussian, axis=-1) + 0.5 * math.log(2.0 * math.pi) * len(self._values))
        for start, stop in self._blocks:
            log_p = ops.log_softmax(out[:, start:stop], axis=-1)
            terms.append(-ops.sum(rows[:, start:stop] * log_p, axis=-1))
        reconstruction = terms[0]
        for term in terms[1:]:
            reconstruction = reconstruction + term
        kl = 0.5 * ops.sum(ops.exp(log_variance) + ops.square(mean) - 1.0 - log_variance, axis=-1)
        return reconstruction, kl

    def held_out_logs(self, images: Any, labels: Any) -> dict[str, Any]:
        """``elbo``, ``reconstruction`` and ``kl`` per row (batch means) on held-out rows, with
        noise from a fixed seed (the same rows always give the same numbers)."""
        import keras
        from keras import ops

        rows = ops.convert_to_tensor(images, dtype="float32")
        mean, log_variance = self._encoder(rows, training=False)
        noise = keras.random.normal(ops.shape(mean), dtype="float32", seed=HELD_OUT_SEED)
        reconstruction, kl = self._terms(rows, mean, log_variance, noise, training=False)
        reconstruction, kl = ops.mean(reconstruction), ops.mean(kl)
        return {"elbo": -(reconstruction + kl), "reconstruction": reconstruction, "kl": kl}
