"""ganctl's first-party models, registered through the plugin API like any third party's.

* ``gan``: the classic GAN with fully-connected networks; takes images of any shape.
* ``dcgan``: a deep convolutional GAN that sizes itself to the data (8x8, 28x28, 32x32, ...).
* ``vae``: a variational autoencoder (beta-VAE, KL warm-up, conditional), conv or MLP networks.
* ``tvae``: a variational autoencoder of table rows (the TVAE design; API 1.7 tables).
* ``ctgan``: a GAN of table rows (the CTGAN design: conditional vector, training-by-sampling,
  WGAN-GP critic with PacGAN).
* ``classifier``: a small CNN that labels images; the ``classifier`` feature extractor runs it.

The two GANs are two-player games (``generator`` and ``discriminator``) with a choice of adversarial
loss (``bce``, ``minimax``, ``hinge``, ``least-squares``), optional discriminator dropout,
L1/L2 kernel regularisation, and class-conditioning on labelled data.

Importing this package is cheap: Keras is imported only when a model is built.
"""

from __future__ import annotations

from ganctl import api

from .classifier import Classifier
from .ctgan import CTGAN
from .dcgan import DCGAN
from .gan import GAN
from .losses import LOSSES, LossName
from .tvae import TVAE
from .vae import VAE

GANCTL_API = "1.7"  # the ganctl.api version this plugin needs (docs/plugins.md)

__all__ = ["CTGAN", "Classifier", "DCGAN", "GAN", "LOSSES", "LossName", "TVAE", "VAE", "register_models"]


@api.hookimpl
def register_models(register: api.Register) -> None:
    """Register the first-party models."""
    register("gan", GAN)
    register("dcgan", DCGAN)
    register("vae", VAE)
    register("tvae", TVAE)
    register("ctgan", CTGAN)
    register("classifier", Classifier)
