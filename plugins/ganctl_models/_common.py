"""What the first-party GANs share (private to this package): the common parameters, the
two-player adversarial training logic, kernel regularisation and the label inputs.

A model subclasses :class:`AdversarialModel` and only says how to build its two networks.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from ganctl import api

from .losses import LOSSES, LossName

if TYPE_CHECKING:
    import keras

LEAK = 0.2
"""Negative slope of every LeakyReLU."""


class GANParams(api.Params):
    """The parameters every first-party GAN takes."""

    latent_dim: int = api.Field(
        64, ge=1, le=4096, description="Size of the latent vector z fed to the generator."
    )
    loss: LossName = api.Field(
        "bce",
        description=(
            "Adversarial loss: 'bce' (non-saturating cross-entropy, the usual choice), 'minimax' "
            "(the original saturating game), 'hinge', or 'least-squares' (LSGAN)."
        ),
    )
    dropout: float = api.Field(
        0.0, ge=0, lt=1, description="Dropout rate after each hidden layer of the discriminator."
    )
    l1: float = api.Field(
        0.0, ge=0, description="L1 penalty on every Dense/Conv kernel, added to its player's loss."
    )
    l2: float = api.Field(
        0.0,
        ge=0,
        description="L2 penalty (l2 * sum(w^2)) on every Dense/Conv kernel, added to its player's loss.",
    )
    conditional: bool = api.Field(
        False,
        description=(
            "Condition both networks on the class label (needs labelled data); the generator "
            "then takes [z, label]."
        ),
    )


def check_conditional(model: str, params: GANParams, spec: api.DataSpec) -> None:
    """Refuse ``conditional: true`` on data without labels."""
    if params.conditional and not spec.conditional:
        raise api.ConfigError(
            f"model.conditional is true, but the data has no class labels, so the {model} "
            "model has nothing to condition on. Set `model.conditional: false`, or train on "
            "labelled data (e.g. an image-folder with one sub-folder per class)."
        )


def kernel_regularizer(params: GANParams) -> Any:
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


def latent_input(params: GANParams, spec: api.DataSpec) -> tuple[Any, keras.KerasTensor]:
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


def total(loss: Any, network: Any, params: GANParams) -> Any:
    """``loss`` plus the network's regularisation losses (none unless ``l1`` or ``l2`` is set).

    Reading ``network.losses`` walks every layer, so it is skipped when it must be empty.
    """
    if params.l1 == 0 and params.l2 == 0:
        return loss
    for extra in network.losses:
        loss = loss + extra
    return loss


class AdversarialModel(api.GenerativeModel):
    """A generator and a discriminator playing a two-player game (base of gan and dcgan).

    Subclasses set ``Params`` (a :class:`GANParams`) and build the two networks. The
    discriminator returns one logit per example, ``[batch, 1]``.
    """

    players: ClassVar[tuple[str, ...]] = ("generator", "discriminator")
    plugin_name: ClassVar[str] = "gan"
    """The model's registered name, for messages."""

    params: GANParams

    def __init__(self, params: GANParams, spec: api.DataSpec) -> None:
        super().__init__(params, spec)
        check_conditional(self.plugin_name, params, spec)
        self.latent_dim = params.latent_dim
        self._loss = LOSSES[params.loss]
        self._generator = self.build_generator()
        self._discriminator = self.build_discriminator()

    @abstractmethod
    def build_generator(self) -> keras.Model:
        """The generator: ``z`` (or ``[z, label]``) -> ``[batch, H, W, C]`` images in [-1, 1]."""

    @abstractmethod
    def build_discriminator(self) -> keras.Model:
        """The discriminator: images (or ``[images, label]``) -> ``[batch, 1]`` logits."""

    @property
    def conditional(self) -> bool:
        return self.params.conditional

    @property
    def generator(self) -> keras.Model:
        return self._generator

    @property
    def discriminator(self) -> keras.Model:
        """The discriminator network."""
        return self._discriminator

    def networks(self) -> dict[str, Any]:
        return {"generator": self._generator, "discriminator": self._discriminator}

    def loss(self, player: str, images: Any, labels: Any, z: Any) -> tuple[Any, dict[str, Any]]:
        """The player's loss and what is logged of it (as ``<player>/<key>``, see docs/training.md):
        ``loss`` (with the L1/L2 penalties); for the discriminator also ``real`` and ``fake``, the
        mean of its raw outputs (logits) on the real batch and on the generated one."""
        from keras import ops

        if player not in self.players:
            raise ValueError(f"unknown player '{player}': the players are {', '.join(self.players)}.")
        # Keras refuses a list input mixing arrays and tensors: make everything a tensor.
        images, z, labels = ops.convert_to_tensor(images), ops.convert_to_tensor(z), self._labels(labels)
        fake = self._generator(self._with_label(z, labels), training=True)
        fake_logits = self._discriminator(self._with_label(fake, labels), training=True)
        if player == "generator":
            loss = total(self._loss.generator(fake_logits), self._generator, self.params)
            return loss, {"loss": loss}
        real_logits = self._discriminator(self._with_label(images, labels), training=True)
        loss = total(self._loss.discriminator(real_logits, fake_logits), self._discriminator, self.params)
        return loss, {"loss": loss, "real": ops.mean(real_logits), "fake": ops.mean(fake_logits)}

    def generate(self, z: Any, labels: Any = None) -> Any:
        from keras import ops

        z, labels = ops.convert_to_tensor(z), self._labels(labels)
        return self._generator(self._with_label(z, labels), training=False)

    def _labels(self, labels: Any) -> Any:
        """The labels as an int32 tensor for a conditional model; None otherwise."""
        if not self.conditional:
            return None
        if labels is None:
            raise api.ConfigError(f"the conditional {self.plugin_name} model needs labels, but got none.")
        from keras import ops

        return ops.convert_to_tensor(labels, dtype="int32")

    def _with_label(self, x: Any, labels: Any) -> Any:
        return [x, labels] if self.conditional else x
