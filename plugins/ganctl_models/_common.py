"""What the first-party GANs share (private to this package): the common parameters and the
two-player adversarial training logic (the building blocks of their networks are in _blocks.py).

A model subclasses :class:`AdversarialModel` and only says how to build its two networks.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ganctl import api

from ._blocks import check_conditional
from .augment import AugmentParams, augment_layer
from .losses import LOSSES, SMOOTHABLE, AdversarialLoss, LossName, smoothed_bce_discriminator_loss

if TYPE_CHECKING:
    import keras

class R1Params(api.Params):
    """The R1 penalty (Mescheder et al. 2018): ``model.r1: {gamma: 10, every: 1}``."""

    gamma: float = api.Field(10.0, ge=0, description="Weight gamma of gamma/2 * mean(|grad D(x_real)|^2).")
    every: int = api.Field(
        1,
        ge=1,
        description=(
            "Apply it on every k-th discriminator update only, scaled by k (lazy regularisation; "
            "1: every update)."
        ),
    )


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
    conditioning: Literal["concat", "projection"] = api.Field(
        "concat",
        description=(
            "How a conditional discriminator takes the class: 'concat' (the class joins the input: "
            "an extra image channel in dcgan, extra features in gan) or 'projection' (Miyato and "
            "Koyama 2018: the logit gains the inner product of a class embedding with the last "
            "hidden features; the usual pairing with spectral_norm). Only with conditional: true."
        ),
    )
    spectral_norm: bool = api.Field(
        False,
        description=(
            "Spectral normalisation (Miyato et al. 2018) of every Dense/Conv layer of the "
            "discriminator that the image passes through: each kernel is divided by its largest "
            "singular value, estimated by one power iteration per training call. A conditional "
            "dcgan's label plane (the class's projection to an image channel) is left as it is: "
            "normalised, it drowned the class in the image and the generator lost its classes."
        ),
    )
    gradient_penalty: float = api.Field(
        0.0,
        ge=0,
        description=(
            "Weight of WGAN-GP's gradient penalty, weight * mean((|grad D(x)| - 1)^2) on random "
            "interpolates x between real and generated images (10 is usual; 0: off). Pair it with "
            "`loss: wasserstein`. The discriminator must not use BatchNormalization."
        ),
    )
    r1: R1Params | None = api.Field(
        None,
        description=(
            "R1 penalty gamma/2 * mean(|grad D(x)|^2) on real images, e.g. {gamma: 10, every: 1} "
            "(off when absent). With every: k > 1 it is applied lazily, on every k-th discriminator "
            "update and scaled by k (StyleGAN2). The discriminator must not use BatchNormalization."
        ),
    )
    d_steps: int = api.Field(
        1,
        ge=1,
        le=100,
        description="Discriminator (critic) updates per generator update: 5 is usual with WGAN-GP.",
    )
    label_smoothing: float = api.Field(
        0.0,
        ge=0,
        lt=0.5,
        description=(
            "One-sided label smoothing: the discriminator's targets for real images become "
            "1 - label_smoothing (0.1 is usual; 0: off). Only with `loss: bce` or `minimax`."
        ),
    )
    augment: AugmentParams | None = api.Field(
        None,
        description=(
            "DiffAugment (Zhao et al. 2020): augment every image the discriminator sees, real and "
            "generated, differentiably, e.g. {policy: [color, translation, cutout], p: 1.0}; with "
            "adaptive: {target: 0.6, speed: 20000} p is adjusted during training (ADA, Karras et "
            "al. 2020). Off when absent. Only the discriminator changes: exports are unaffected."
        ),
    )
    feature_matching: float = api.Field(
        0.0,
        ge=0,
        description=(
            "Feature matching (Salimans et al. 2016): add weight * |mean f(real) - mean f(fake)|^2 "
            "to the generator's loss, f the discriminator's last hidden layer (true: weight 1; "
            "0 or false: off)."
        ),
    )

    @api.model_validator(mode="after")
    def _projection_needs_classes(self) -> GANParams:
        if self.conditioning == "projection" and not self.conditional:
            raise ValueError(
                "conditioning is 'projection', but the model is not conditional, so there is no class to "
                "project. Set `conditional: true` (on labelled data), or remove `conditioning`."
            )
        return self

    @api.model_validator(mode="after")
    def _smoothing_needs_a_cross_entropy(self) -> GANParams:
        if self.label_smoothing > 0 and self.loss not in SMOOTHABLE:
            raise ValueError(
                f"label_smoothing is {self.label_smoothing}, but loss '{self.loss}' has no "
                "cross-entropy targets to smooth (one-sided smoothing changes the real target 1 of "
                f"{' and '.join(SMOOTHABLE)}). Set `label_smoothing: 0`, or use `loss: bce`."
            )
        return self


def _layers(network: Any) -> list[Any]:
    """Every layer of ``network``, nested models' layers included."""
    out = []
    for layer in network.layers:
        out.append(layer)
        if hasattr(layer, "layers"):
            out.extend(_layers(layer))
    return out


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
        if params.label_smoothing > 0:
            self._loss = AdversarialLoss(smoothed_bce_discriminator_loss(params.label_smoothing), self._loss.generator)
        self._augment = augment_layer(params.augment)
        self._generator = self.build_generator()
        self._discriminator = self.build_discriminator()
        self._penalty_seeds = self._check_penalties()
        self._check_augment()
        self._features = self._feature_network() if params.feature_matching > 0 else None

    @abstractmethod
    def build_generator(self) -> keras.Model:
        """The generator: ``z`` (or ``[z, label]``) -> ``[batch, H, W, C]`` images in [-1, 1]."""

    @abstractmethod
    def build_discriminator(self) -> keras.Model:
        """The discriminator: images (or ``[images, label]``) -> ``[batch, 1]`` logits."""

    def augmented(self, images: keras.KerasTensor) -> keras.KerasTensor:
        """``images`` through the augmentation layer when ``augment`` is on (build_discriminator
        calls it on its image input, before anything else): augmented at training calls only."""
        return images if self._augment is None else self._augment(images)

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

    def schedule(self) -> dict[str, int]:
        """One generator update, then ``d_steps`` discriminator updates, per step."""
        return {"generator": 1, "discriminator": self.params.d_steps}

    def seed_generators(self) -> list[Any]:
        """The gradient penalty's interpolation seeds and the lazy R1's update counter (when on)."""
        return list(self._penalty_seeds.values())

    def _check_penalties(self) -> dict[str, Any]:
        """Refuse input-gradient penalties on a discriminator with BatchNormalization; make the
        seed generators they need: ``gp`` draws the interpolation weights, ``r1_count`` counts
        discriminator updates for a lazy R1 (its state advances by one per update and is saved
        in every checkpoint, so a resumed run applies R1 on the same updates)."""
        import keras

        p = self.params
        keys = [key for key, on in (("gradient_penalty", p.gradient_penalty > 0), ("r1", p.r1 is not None)) if on]
        if not keys:
            return {}
        normalised = [layer.name for layer in _layers(self._discriminator)
                      if isinstance(layer, keras.layers.BatchNormalization)]
        if normalised:
            raise api.ConfigError(
                f"model.{' and model.'.join(keys)} {'penalise' if len(keys) > 1 else 'penalises'} the "
                "discriminator's gradient per example, but "
                f"its BatchNormalization layer(s) ({', '.join(normalised)}) mix the examples of a batch, "
                f"so the penalty is meaningless. Remove `model.{keys[0]}`, or build the {self.plugin_name} "
                "discriminator without BatchNormalization (no normalisation, or LayerNormalization)."
            )
        seeds: dict[str, Any] = {}
        if p.gradient_penalty > 0:
            seeds["gp"] = keras.random.SeedGenerator(name="gradient_penalty_seed")
        if p.r1 is not None and p.r1.every > 1:
            seeds["r1_count"] = keras.random.SeedGenerator(0, name="r1_update_counter")
        return seeds

    def _check_augment(self) -> None:
        """Refuse ``augment`` on a discriminator built without :meth:`augmented`."""
        if self._augment is not None and not any(layer is self._augment for layer in _layers(self._discriminator)):
            raise api.ConfigError(
                f"model.augment is set, but the {self.plugin_name} discriminator does not pass its images "
                "through the augmentation layer, so nothing would be augmented. Remove `model.augment`, or "
                "build the discriminator with `self.augmented(images)` as its first layer."
            )

    def _feature_network(self) -> keras.Model:
        """The discriminator with a second output: the input of its logit layer (``d_logit``, or
        its spectral-norm wrapper), the features of feature matching. It shares the
        discriminator's layers and weights."""
        import keras

        d = self._discriminator
        logit = next(layer for layer in d.layers if layer.name in ("d_logit", "d_logit_sn"))
        return keras.Model(d.inputs, [d.outputs[0], logit.input], name="discriminator_features")

    def _feature_matching(self, images: Any, fake: Any, labels: Any) -> tuple[Any, Any]:
        """The fake images' logits and ``weight * |mean f(real) - mean f(fake)|^2`` (the means over the
        batch; the real features are constants)."""
        from keras import ops

        assert self._features is not None
        fake_logits, fake_features = self._features(self._with_label(fake, labels), training=True)
        _, real_features = self._features(self._with_label(images, labels), training=True)
        real_mean = ops.mean(ops.cast(ops.stop_gradient(real_features), "float32"), axis=0)
        fake_mean = ops.mean(ops.cast(fake_features, "float32"), axis=0)
        return fake_logits, self.params.feature_matching * ops.sum(ops.square(real_mean - fake_mean))

    def _input_gradient_norms2(self, images: Any, labels: Any) -> Any:
        """``|grad_x D(x)|^2`` per example, ``[batch]`` (the label passes through unchanged)."""
        from keras import ops

        gradient = api.input_gradient(
            lambda x: self._discriminator(self._with_label(x, labels), training=True), images
        )
        gradient = ops.cast(gradient, "float32")
        return ops.sum(ops.square(gradient), axis=tuple(range(1, len(gradient.shape))))

    def _gradient_penalty(self, images: Any, fake: Any, labels: Any) -> Any:
        """WGAN-GP: ``weight * mean((|grad D(x)| - 1)^2)``, ``x = eps * real + (1 - eps) * fake``
        with ``eps ~ U[0, 1)`` per example."""
        import keras
        from keras import ops

        fake = ops.cast(ops.stop_gradient(fake), images.dtype)
        eps = keras.random.uniform((ops.shape(images)[0], 1, 1, 1), dtype=images.dtype, seed=self._penalty_seeds["gp"])
        mixed = eps * images + (1.0 - eps) * fake
        norms = ops.sqrt(self._input_gradient_norms2(mixed, labels) + 1e-12)
        return self.params.gradient_penalty * ops.mean(ops.square(norms - 1.0))

    def _r1_penalty(self, images: Any, labels: Any) -> Any:
        """R1: ``gamma / 2 * mean(|grad D(x_real)|^2)``; when lazy, ``every`` times that on every
        ``every``-th discriminator update (counted from 0) and 0 on the others."""
        from keras import ops

        r1 = self.params.r1
        assert r1 is not None
        penalty = 0.5 * r1.gamma * ops.mean(self._input_gradient_norms2(images, labels))
        if r1.every == 1:
            return penalty
        count = ops.cast(self._penalty_seeds["r1_count"].next()[1], "int32")
        due = ops.cast(ops.equal(ops.mod(count, r1.every), 0), "float32")
        return penalty * (float(r1.every) * due)

    def loss(self, player: str, images: Any, labels: Any, z: Any) -> tuple[Any, dict[str, Any]]:
        """The player's loss and what is logged of it (as ``<player>/<key>``, see docs/training.md):
        ``loss`` (with the L1/L2 penalties); for the generator with ``feature_matching`` also
        ``feature_matching``, as added to its loss; for the discriminator also ``real`` and
        ``fake``, the mean of its raw outputs (logits) on the real batch and on the generated one,
        the penalties that are on, as added to its loss: ``gp`` (``gradient_penalty``) and ``r1``,
        and with adaptive augmentation ``augment_p`` (p after this update) and ``rt``."""
        from keras import ops

        if player not in self.players:
            raise ValueError(f"unknown player '{player}': the players are {', '.join(self.players)}.")
        # Keras refuses a list input mixing arrays and tensors: make everything a tensor.
        images, z, labels = ops.convert_to_tensor(images), ops.convert_to_tensor(z), self._labels(labels)
        fake = self._generator(self._with_label(z, labels), training=True)
        if player == "generator":
            if self._features is None:
                fake_logits = self._discriminator(self._with_label(fake, labels), training=True)
                loss = total(self._loss.generator(fake_logits), self._generator, self.params)
                return loss, {"loss": loss}
            fake_logits, matching = self._feature_matching(images, fake, labels)
            loss = total(self._loss.generator(fake_logits) + matching, self._generator, self.params)
            return loss, {"loss": loss, "feature_matching": matching}
        fake_logits = self._discriminator(self._with_label(fake, labels), training=True)
        real_logits = self._discriminator(self._with_label(images, labels), training=True)
        loss = self._loss.discriminator(real_logits, fake_logits)
        penalties = {}
        if self.params.gradient_penalty > 0:
            penalties["gp"] = self._gradient_penalty(images, fake, labels)
        if self.params.r1 is not None:
            penalties["r1"] = self._r1_penalty(images, labels)
        for penalty in penalties.values():
            loss = loss + penalty
        loss = total(loss, self._discriminator, self.params)
        logs = {"loss": loss, "real": ops.mean(real_logits), "fake": ops.mean(fake_logits), **penalties}
        adaptive = self.params.augment.adaptive if self.params.augment is not None else None
        if adaptive is not None:  # last: every discriminator call of this update used the same p
            logs["rt"], logs["augment_p"] = self._augment.adjust(  # type: ignore[union-attr]
                ops.stop_gradient(real_logits), adaptive.target, adaptive.speed)
        return loss, logs

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
