"""The ``ctgan`` model: a tabular GAN in the CTGAN design (Xu et al. 2019).

It takes tables (``data_kinds = ("table",)``, API 1.7), each row encoded as the dataset's
:class:`ganctl.api.TableSpec` says: a numeric column by mode-specific normalisation (its offset within
its Gaussian-mixture mode, a ``tanh`` slot, and the mode one-hot), a categorical or boolean column
one-hot, a missingness indicator one-hot. Two players, updated in this order each step:

* ``discriminator``, the critic: ``pac`` rows, each with its condition vector, concatenated into one
  input (PacGAN), through Linear-LeakyReLU(0.2)-Dropout(0.5) layers to one score; the WGAN loss
  ``mean(fake) - mean(real)`` plus WGAN-GP's gradient penalty on interpolates of the *packed* inputs.
* ``generator``: ``[noise, condition]`` through residual blocks (Linear-BatchNorm-ReLU, its output
  concatenated with its input) to one logit per slot of the row; offsets through ``tanh``, every
  one-hot block (modes, categories, indicators) through a Gumbel-softmax of temperature ``tau``. Its
  loss is ``-mean(critic(fake))`` plus the cross-entropy of the conditioned column's logits against
  the conditioned category.

The condition vector and training-by-sampling: the conditions are the one-hot blocks of the discrete
columns (categorical and boolean; with ``condition_missing`` the missingness indicators too; never a
numeric column's mode). The model returns them as :attr:`training_by_sampling`, so ganctl draws each
batch with :meth:`ganctl.api.TableDataset.sampled_batches`: per row a block uniformly, a category by
log-frequency, and a real row that has it, the condition's index arriving as the batch's ``labels``.
The generated rows of a step are conditioned on the same conditions as its real rows.

The generator ganctl samples and exports (:attr:`generator`) takes one input, ``z`` of
``embedding_dim + 1`` standard-normal values: the last one becomes a uniform number (the normal CDF,
through ``erf``) that picks the condition by the categories' original frequencies (a block uniformly,
then its category by its share of the training rows), as CTGAN samples; the rows come out with
offsets through ``tanh`` and blocks as softmax probabilities, from which ganctl draws each block. A
table with no discrete column has no condition: then ``z`` is the noise alone, and batches are the
ordinary permutation.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import numpy as np

from ganctl import api

from ._blocks import LEAK, dropout

if TYPE_CHECKING:
    import keras

_Width = Annotated[int, api.Field(ge=1, le=8192)]

DROPOUT = 0.5
GUMBEL_EPS = 1e-6
"""Uniform draws of the Gumbel noise stay within [eps, 1 - eps] (the noise within about ±14)."""


class CTGANParams(api.Params):
    """Parameters of the ``ctgan`` model."""

    embedding_dim: int = api.Field(128, ge=1, le=4096, description="Size of the generator's noise vector (CTGAN: "
                                                                   "128); z has one more value, which draws the "
                                                                   "condition when the table has discrete columns.")
    generator_dim: tuple[_Width, ...] = api.Field((256, 256), min_length=1,
                                                  description="Widths of the generator's residual blocks.")
    discriminator_dim: tuple[_Width, ...] = api.Field((256, 256), min_length=1,
                                                      description="Widths of the critic's hidden layers.")
    pac: int = api.Field(10, ge=1, le=256, description="Rows packed into one critic input (PacGAN); the batch "
                                                       "size must be a multiple of it.")
    gradient_penalty: float = api.Field(10.0, ge=0, description="Weight of WGAN-GP's gradient penalty on the "
                                                                "packed inputs (CTGAN: 10; 0: off).")
    d_steps: int = api.Field(1, ge=1, le=100, description="Critic updates per generator update, on the same "
                                                          "batch (CTGAN: 1).")
    tau: float = api.Field(0.2, gt=0, le=10, description="Temperature of the Gumbel-softmax of one-hot blocks "
                                                         "during training (CTGAN: 0.2).")
    condition_missing: bool = api.Field(False, description="Condition on the missingness indicators too, beside "
                                                           "the categorical and boolean columns (CTGAN: only "
                                                           "discrete columns).")


def _layers(spec: api.TableSpec, embedding_dim: int, lower: np.ndarray, upper: np.ndarray) -> tuple[Any, Any]:
    """The generator's two layers beyond Dense: the latent split into noise and a drawn condition,
    and the row activation."""
    import keras
    from keras import ops

    segments = spec.segments()

    class DrawCondition(keras.layers.Layer):
        """``z`` -> ``[noise, condition]``: the last value of ``z``, through the normal CDF, picks the
        condition whose interval ``[lower, upper)`` holds it (one-hot ``[B, len(lower)]``)."""

        def call(self, z: Any) -> Any:
            u = 0.5 * (1.0 + ops.erf(z[:, embedding_dim:embedding_dim + 1] / math.sqrt(2.0)))
            low, high = ops.convert_to_tensor(lower[None, :]), ops.convert_to_tensor(upper[None, :])
            inside = ops.cast(ops.greater_equal(u, low), "float32") * ops.cast(ops.less(u, high), "float32")
            return [z[:, :embedding_dim], inside]

    class Activate(keras.layers.Layer):
        """The generator's logits as a row: ``tanh`` on offsets, ``softmax`` over each one-hot block."""

        def call(self, x: Any) -> Any:
            parts = [ops.tanh(x[:, s.start:s.stop]) if s.role == "value" else ops.softmax(x[:, s.start:s.stop], axis=-1)
                     for s in segments]
            return ops.concatenate(parts, axis=-1)

    return DrawCondition(dtype="float32", name="g_condition"), Activate(dtype="float32", name="g_rows")


def condition_intervals(spec: api.TableSpec, blocks: tuple[api.Segment, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Each condition's interval ``[lower, upper)`` of a uniform number: its probability is its block's
    ``1 / len(blocks)`` times its category's share of the training rows (``Column.frequencies``; equal
    shares when the dataset gave none; an indicator's ``[1 - missing_rate, missing_rate]``)."""
    shares = []
    for block in blocks:
        column = spec.column(block.column)
        if block.role == "missing":
            share = np.array([1.0 - column.missing_rate, column.missing_rate])
        elif column.frequencies:
            share = np.asarray(column.frequencies, np.float64)
        else:
            share = np.ones(block.size)
        total = share.sum()
        shares.append(share / total if total > 0 else np.full(block.size, 1.0 / block.size))
    p = np.concatenate(shares) / len(blocks)
    edges = np.concatenate([[0.0], np.cumsum(p)])
    lower, upper = edges[:-1].copy(), edges[1:].copy()
    lower[0] = -1.0  # u = 0 and u = 1 (erf saturates) fall in the first and last condition that can occur
    upper[np.flatnonzero(p)[-1]] = 2.0
    lower[np.flatnonzero(p)[-1] + 1:] = upper[np.flatnonzero(p)[-1] + 1:] = 2.0
    return lower.astype(np.float32), upper.astype(np.float32)


class CTGAN(api.GenerativeModel):
    """Tabular GAN (CTGAN design): conditional vector, training-by-sampling, WGAN-GP critic with PacGAN."""

    players: ClassVar[tuple[str, ...]] = ("discriminator", "generator")
    data_kinds: ClassVar[tuple[str, ...]] = ("table",)
    Params = CTGANParams
    params: CTGANParams
    spec: api.TableSpec

    def __init__(self, params: CTGANParams, spec: api.TableSpec) -> None:
        import keras

        super().__init__(params, spec)
        self._segments = spec.segments()
        roles = ("category", "missing") if params.condition_missing else ("category",)
        self._blocks = tuple(s for s in self._segments if s.role in roles)
        self._conditions = sum(s.size for s in self._blocks)
        self.latent_dim = params.embedding_dim + (1 if self._blocks else 0)
        width = spec.width
        noise = keras.Input(shape=(params.embedding_dim,), name="noise")
        inputs: Any = noise
        x = noise
        if self._blocks:
            condition = keras.Input(shape=(self._conditions,), name="condition")
            inputs = [noise, condition]
            x = keras.layers.Concatenate(name="g_noise_and_condition")([noise, condition])
        for i, units in enumerate(params.generator_dim):
            h = keras.layers.Dense(units, name=f"g_dense_{i}")(x)
            h = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"g_batchnorm_{i}")(h)
            h = keras.layers.ReLU(name=f"g_relu_{i}")(h)
            x = keras.layers.Concatenate(name=f"g_residual_{i}")([h, x])
        logits = keras.layers.Dense(width, dtype="float32", name="g_logits")(x)
        self._network = keras.Model(inputs, logits, name="generator_logits")
        packed = keras.Input(shape=(params.pac * (width + self._conditions),), name="packed_rows")
        x = packed
        for i, units in enumerate(params.discriminator_dim):
            x = keras.layers.Dense(units, name=f"d_dense_{i}")(x)
            x = keras.layers.LeakyReLU(LEAK, name=f"d_leaky_relu_{i}")(x)
            x = dropout(DROPOUT, f"d_dropout_{i}")(x)  # seeded: exact resume on PyTorch
        score = keras.layers.Dense(1, dtype="float32", name="d_score")(x)
        self._critic = keras.Model(packed, score, name="discriminator")
        lower, upper = condition_intervals(spec, self._blocks) if self._blocks else (np.zeros(0), np.zeros(0))
        draw, activate = _layers(spec, params.embedding_dim, lower, upper)
        z = keras.Input(shape=(self.latent_dim,), name="z")
        self._generator = keras.Model(z, activate(self._network(draw(z) if self._blocks else z)), name="generator")
        self._gumbel = keras.random.SeedGenerator(name="gumbel_seed")
        self._penalty = keras.random.SeedGenerator(name="gradient_penalty_seed")

    @property
    def generator(self) -> keras.Model:
        """``z`` ``[B, latent_dim]`` -> rows ``[B, width]`` (offsets in [-1, 1], one-hot blocks as
        probabilities), the condition drawn from ``z``'s last value by the original frequencies."""
        return self._generator

    @property
    def training_by_sampling(self) -> tuple[api.Segment, ...]:
        """The conditioned blocks: categorical and boolean columns (and indicators with ``condition_missing``)."""
        return self._blocks

    def batch_size_problem(self, batch_size: int) -> str | None:
        pac = self.params.pac
        if batch_size % pac == 0:
            return None
        return (f"its critic packs model.pac = {pac} rows into one input (PacGAN), so the batch size must be a "
                f"multiple of {pac}. Set train.batch_size to a multiple of {pac} (e.g. {max(pac, batch_size // pac * pac)}"
                "), or change model.pac.")

    def networks(self) -> dict[str, Any]:
        return {"discriminator": self._critic, "generator": self._network}

    def schedule(self) -> dict[str, int]:
        return {"discriminator": self.params.d_steps, "generator": 1}

    def seed_generators(self) -> list[Any]:
        return [self._gumbel, self._penalty]

    def loss(self, player: str, images: Any, labels: Any, z: Any) -> tuple[Any, dict[str, Any]]:
        """The critic's ``mean(fake) - mean(real) + gp`` (logged: ``loss``, ``real``, ``fake``, ``gp``) or
        the generator's ``-mean(fake) + condition`` (logged: ``loss``, ``adversarial``, ``condition``)."""
        from keras import ops

        if player not in self.players:
            raise ValueError(f"unknown player '{player}': the players are {', '.join(self.players)}.")
        rows = ops.convert_to_tensor(images, dtype="float32")
        noise = ops.convert_to_tensor(z, dtype="float32")[:, : self.params.embedding_dim]
        condition = None
        if self._blocks:
            if labels is None:
                raise api.GanctlError("the ctgan model trains by sampling: each batch needs its rows' conditions "
                                      "as labels (TableDataset.sampled_batches).")
            condition = ops.one_hot(ops.convert_to_tensor(labels, dtype="int32"), self._conditions, dtype="float32")
        logits = ops.cast(self._network(noise if condition is None else [noise, condition], training=True), "float32")
        fake = self._pack(self._gumbel_rows(logits), condition)
        fake_scores = self._critic(fake, training=True)
        if player == "generator":
            adversarial = -ops.mean(fake_scores)
            conditioned = self._condition_loss(logits, condition)
            loss = adversarial + conditioned
            return loss, {"loss": loss, "adversarial": adversarial, "condition": conditioned}
        real = self._pack(rows, condition)
        real_scores = self._critic(real, training=True)
        loss = ops.mean(fake_scores) - ops.mean(real_scores)
        logs = {"real": ops.mean(real_scores), "fake": ops.mean(fake_scores)}
        if self.params.gradient_penalty > 0:
            logs["gp"] = self._gradient_penalty(real, ops.stop_gradient(fake))
            loss = loss + logs["gp"]
        return loss, {"loss": loss, **logs}

    def _gumbel_rows(self, logits: Any) -> Any:
        """Training's rows: ``tanh`` on offsets, a Gumbel-softmax of temperature ``tau`` over each block."""
        import keras
        from keras import ops

        u = keras.random.uniform(ops.shape(logits), minval=GUMBEL_EPS, maxval=1.0 - GUMBEL_EPS, dtype="float32",
                                 seed=self._gumbel)
        noisy = (logits - ops.log(-ops.log(u))) / self.params.tau
        parts = [ops.tanh(logits[:, s.start:s.stop]) if s.role == "value" else ops.softmax(noisy[:, s.start:s.stop], axis=-1)
                 for s in self._segments]
        return ops.concatenate(parts, axis=-1)

    def _pack(self, rows: Any, condition: Any) -> Any:
        """Rows with their conditions, ``pac`` of them concatenated: ``[B / pac, pac * (width + conditions)]``."""
        from keras import ops

        if condition is not None:
            rows = ops.concatenate([rows, condition], axis=-1)
        return ops.reshape(rows, (-1, self.params.pac * (self.spec.width + self._conditions)))

    def _condition_loss(self, logits: Any, condition: Any) -> Any:
        """The batch mean of the cross-entropy of each row's conditioned block against its condition (0 without one)."""
        from keras import ops

        if condition is None:
            return ops.zeros(())
        logits = ops.convert_to_tensor(logits, dtype="float32")
        log_p = ops.concatenate([ops.log_softmax(logits[:, s.start:s.stop], axis=-1) for s in self._blocks], axis=-1)
        return -ops.mean(ops.sum(ops.convert_to_tensor(condition, dtype="float32") * log_p, axis=-1))

    def _gradient_penalty(self, real: Any, fake: Any) -> Any:
        """WGAN-GP on packed inputs: ``weight * mean((|grad D(x)| - 1)^2)``, ``x = eps * real + (1 - eps) * fake``
        with one ``eps ~ U[0, 1)`` per packed input (all its ``pac`` rows), as CTGAN's."""
        import keras
        from keras import ops

        eps = keras.random.uniform((ops.shape(real)[0], 1), dtype="float32", seed=self._penalty)
        mixed = eps * real + (1.0 - eps) * fake
        gradient = ops.cast(api.input_gradient(lambda x: self._critic(x, training=True), mixed), "float32")
        norms = ops.sqrt(ops.sum(ops.square(gradient), axis=-1) + 1e-12)
        return self.params.gradient_penalty * ops.mean(ops.square(norms - 1.0))
