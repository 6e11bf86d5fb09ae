"""The adversarial losses, written once with ``keras.ops`` so they run on every backend.

Every loss takes the discriminator's raw *logits* (the networks end in a linear layer, never in
a sigmoid) and returns the batch mean as a scalar:

* ``bce``: the non-saturating GAN loss (Goodfellow et al. 2014, as used in practice).
  D minimises ``-log D(x) - log(1 - D(G(z)))``; G minimises ``-log D(G(z))``.
* ``minimax``: the original saturating game. D as ``bce``; G minimises ``log(1 - D(G(z)))``.
  Kept for comparison: its generator gradient vanishes while the discriminator wins.
* ``hinge``: D minimises ``relu(1 - real) + relu(1 + fake)``; G minimises ``-fake``.
* ``least-squares``: LSGAN with targets 1 (real) and 0 (fake) on the raw output.

With ``D(x) = sigmoid(logit)`` the logarithms are written with softplus, which is exact and
never overflows: ``-log sigmoid(l) = softplus(-l)`` and ``-log(1 - sigmoid(l)) = softplus(l)``.
Keras is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

LossName = Literal["bce", "minimax", "hinge", "least-squares"]
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


LOSSES: dict[str, AdversarialLoss] = {
    "bce": AdversarialLoss(bce_discriminator_loss, bce_generator_loss),
    "minimax": AdversarialLoss(bce_discriminator_loss, minimax_generator_loss),
    "hinge": AdversarialLoss(hinge_discriminator_loss, hinge_generator_loss),
    "least-squares": AdversarialLoss(least_squares_discriminator_loss, least_squares_generator_loss),
}
"""Every loss by its recipe name (the values of :data:`LossName`)."""
