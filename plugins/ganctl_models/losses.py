"""The adversarial losses, written once with ``keras.ops`` so they run on every backend.

Every loss takes the discriminator's raw *logits* (the networks end in a linear layer, never in
a sigmoid) and returns the batch mean as a scalar:

* ``bce``: the non-saturating GAN loss (Goodfellow et al. 2014, as used in practice).
  D minimises ``-log D(x) - log(1 - D(G(z)))``; G minimises ``-log D(G(z))``.
* ``minimax``: the original saturating game. D as ``bce``; G minimises ``log(1 - D(G(z)))``.
  Kept for comparison: its generator gradient vanishes while the discriminator wins.
* ``hinge``: D minimises ``relu(1 - real) + relu(1 + fake)``; G minimises ``-fake``.
* ``least-squares``: LSGAN with targets 1 (real) and 0 (fake) on the raw output.
* ``wasserstein``: WGAN (Arjovsky et al. 2017): the discriminator is a critic with raw scores.
  D minimises ``mean(fake) - mean(real)``; G minimises ``-mean(fake)``. Pair it with a gradient
  penalty (``gradient_penalty``, WGAN-GP) to keep the critic Lipschitz.

With ``D(x) = sigmoid(logit)`` the logarithms are written with softplus, which is exact and
never overflows: ``-log sigmoid(l) = softplus(-l)`` and ``-log(1 - sigmoid(l)) = softplus(l)``.
Keras is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

LossName = Literal["bce", "minimax", "hinge", "least-squares", "wasserstein"]
"""The names a recipe may give as ``model.loss``."""


class AdversarialLoss(NamedTuple):
    """One adversarial objective: the discriminator's and the generator's loss functions."""

    discriminator: Callable[[Any, Any], Any]
    """``discriminator(real_logits, fake_logits)`` -> scalar mean loss."""
    generator: Callable[[Any], Any]
    """``generator(fake_logits)`` -> scalar mean loss."""


def _float32(*tensors: Any) -> list[Any]:
    """The tensors as float32 (logits may come out of a mixed-precision network)."""
    from keras import ops

    return [ops.cast(tensor, "float32") for tensor in tensors]


# --- bce (non-saturating) and minimax ---------------------------------------------------------


def bce_discriminator_loss(real_logits: Any, fake_logits: Any) -> Any:
    """``mean(softplus(-real)) + mean(softplus(fake))``: binary cross-entropy, real=1, fake=0."""
    from keras import ops

    real, fake = _float32(real_logits, fake_logits)
    return ops.mean(ops.softplus(-real)) + ops.mean(ops.softplus(fake))


def smoothed_bce_discriminator_loss(smoothing: float) -> Callable[[Any, Any], Any]:
    """The ``bce`` discriminator loss with one-sided label smoothing: real targets ``1 - smoothing``.

    ``mean((1 - s) * softplus(-real) + s * softplus(real)) + mean(softplus(fake))``; fake targets
    stay 0 (Salimans et al. 2016). ``smoothing = 0`` is :func:`bce_discriminator_loss`.
    """

    def loss(real_logits: Any, fake_logits: Any) -> Any:
        from keras import ops

        real, fake = _float32(real_logits, fake_logits)
        real_term = (1.0 - smoothing) * ops.softplus(-real) + smoothing * ops.softplus(real)
        return ops.mean(real_term) + ops.mean(ops.softplus(fake))

    return loss


def bce_generator_loss(fake_logits: Any) -> Any:
    """``mean(softplus(-fake))``, i.e. ``-log D(G(z))``: the non-saturating generator loss."""
    from keras import ops

    (fake,) = _float32(fake_logits)
    return ops.mean(ops.softplus(-fake))


def minimax_generator_loss(fake_logits: Any) -> Any:
    """``mean(-softplus(fake))``, i.e. ``log(1 - D(G(z)))``: the original, saturating loss."""
    from keras import ops

    (fake,) = _float32(fake_logits)
    return -ops.mean(ops.softplus(fake))


# --- hinge ------------------------------------------------------------------------------------


def hinge_discriminator_loss(real_logits: Any, fake_logits: Any) -> Any:
    """``mean(relu(1 - real)) + mean(relu(1 + fake))``."""
    from keras import ops

    real, fake = _float32(real_logits, fake_logits)
    return ops.mean(ops.relu(1.0 - real)) + ops.mean(ops.relu(1.0 + fake))


def hinge_generator_loss(fake_logits: Any) -> Any:
    """``mean(-fake)``."""
    from keras import ops

    (fake,) = _float32(fake_logits)
    return -ops.mean(fake)


# --- least squares ----------------------------------------------------------------------------


def least_squares_discriminator_loss(real_logits: Any, fake_logits: Any) -> Any:
    """``0.5 * mean((real - 1)^2) + 0.5 * mean(fake^2)``: LSGAN with targets 1 and 0."""
    from keras import ops

    real, fake = _float32(real_logits, fake_logits)
    return 0.5 * (ops.mean(ops.square(real - 1.0)) + ops.mean(ops.square(fake)))


def least_squares_generator_loss(fake_logits: Any) -> Any:
    """``0.5 * mean((fake - 1)^2)``."""
    from keras import ops

    (fake,) = _float32(fake_logits)
    return 0.5 * ops.mean(ops.square(fake - 1.0))


# --- wasserstein ------------------------------------------------------------------------------


def wasserstein_discriminator_loss(real_logits: Any, fake_logits: Any) -> Any:
    """``mean(fake) - mean(real)``: the critic's negated estimate of the Wasserstein-1 distance."""
    from keras import ops

    real, fake = _float32(real_logits, fake_logits)
    return ops.mean(fake) - ops.mean(real)


def wasserstein_generator_loss(fake_logits: Any) -> Any:
    """``-mean(fake)``."""
    from keras import ops

    (fake,) = _float32(fake_logits)
    return -ops.mean(fake)


SMOOTHABLE = ("bce", "minimax")
"""The losses whose discriminator takes one-sided label smoothing (a cross-entropy with targets)."""

LOSSES: dict[str, AdversarialLoss] = {
    "bce": AdversarialLoss(bce_discriminator_loss, bce_generator_loss),
    "minimax": AdversarialLoss(bce_discriminator_loss, minimax_generator_loss),
    "hinge": AdversarialLoss(hinge_discriminator_loss, hinge_generator_loss),
    "least-squares": AdversarialLoss(least_squares_discriminator_loss, least_squares_generator_loss),
    "wasserstein": AdversarialLoss(wasserstein_discriminator_loss, wasserstein_generator_loss),
}
"""Every loss by its recipe name (the values of :data:`LossName`)."""
