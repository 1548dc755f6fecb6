"""Adversarial losses: `{gan, lsgan, hinge, wgan}_{generator, discriminator}_loss`.

Inputs are raw discriminator outputs (logits, no sigmoid) of shape [N], [N, 1] or a PatchGAN map [N, h, w, 1];
every loss is averaged over the non-batch axes and returned PER EXAMPLE, shape [N]. The trainer reduces it with
`reduction.compute_average_loss`. Generator losses take the logits of generated images; discriminator losses take
the logits of real and of generated images (same batch size). Half-precision logits are computed in float32.

  gan:   non-saturating GAN (Goodfellow et al., 2014):      G: softplus(-f)         D: softplus(-r) + softplus(f)
  lsgan: least squares (Mao et al., ICCV 2017; a=0,b=c=1):   G: 0.5 (f - 1)^2        D: 0.5 (r - 1)^2 + 0.5 f^2
  hinge: (Lim & Ye 2017; Miyato et al., 2018):                G: -f                   D: relu(1 - r) + relu(1 + f)
  wgan:  Wasserstein (Arjovsky et al., 2017):                 G: -f                   D: f - r
(r, f: per-example means of the real / fake logits' loss terms.) softplus(x) = log(1 + e^x) is evaluated in its
overflow-free form, so the gan losses are finite for any finite logit.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from tf_faceedit.backend.tensor_types import Tensor
from tf_faceedit.losses.reduction import as_float_tensor, per_example_mean


def _logits(x: Tensor) -> Tensor:
    return as_float_tensor(x)


def gan_generator_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating generator loss -log sigmoid(D(G(z))) = softplus(-logits), per example [N]."""
    return per_example_mean(keras.ops.softplus(-_logits(fake_logits)))


def gan_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """-log sigmoid(D(x)) - log(1 - sigmoid(D(G(z)))) = softplus(-real) + softplus(fake), per example [N]."""
    return per_example_mean(keras.ops.softplus(-_logits(real_logits))) + per_example_mean(
        keras.ops.softplus(_logits(fake_logits))
    )


def lsgan_generator_loss(fake_logits: Tensor) -> Tensor:
    """0.5 * (D(G(z)) - 1)^2, per example [N] (Mao et al., "Least Squares GANs", ICCV 2017, c = 1)."""
    return 0.5 * per_example_mean(keras.ops.square(_logits(fake_logits) - 1.0))


def lsgan_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """0.5 * (D(x) - 1)^2 + 0.5 * D(G(z))^2, per example [N] (Mao et al. 2017, b = 1, a = 0)."""
    return 0.5 * per_example_mean(keras.ops.square(_logits(real_logits) - 1.0)) + 0.5 * per_example_mean(
        keras.ops.square(_logits(fake_logits))
    )


def hinge_generator_loss(fake_logits: Tensor) -> Tensor:
    """-D(G(z)), per example [N] (Miyato et al., "Spectral Normalization for GANs", ICLR 2018)."""
    return -per_example_mean(_logits(fake_logits))


def hinge_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """relu(1 - D(x)) + relu(1 + D(G(z))), per example [N] (Lim & Ye, "Geometric GAN", 2017)."""
    return per_example_mean(keras.ops.relu(1.0 - _logits(real_logits))) + per_example_mean(
        keras.ops.relu(1.0 + _logits(fake_logits))
    )


def wgan_generator_loss(fake_logits: Tensor) -> Tensor:
    """-D(G(z)), per example [N] (Arjovsky et al., "Wasserstein GAN", 2017)."""
    return -per_example_mean(_logits(fake_logits))


def wgan_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """D(G(z)) - D(x), per example [N]; add `penalties.gradient_penalty` for WGAN-GP (Gulrajani et al., 2017)."""
    return per_example_mean(_logits(fake_logits)) - per_example_mean(_logits(real_logits))


ADVERSARIAL_LOSSES = {
    "gan": (gan_generator_loss, gan_discriminator_loss),
    "lsgan": (lsgan_generator_loss, lsgan_discriminator_loss),
    "hinge": (hinge_generator_loss, hinge_discriminator_loss),
    "wgan": (wgan_generator_loss, wgan_discriminator_loss),
}


def get_adversarial_loss(
    name: str,
) -> tuple[Callable[[Tensor], Tensor], Callable[[Tensor, Tensor], Tensor]]:
    """Returns (generator_loss_fn, discriminator_loss_fn) for `name` in gan, lsgan, hinge, wgan.

    Raises:
      ValueError: unknown name (the message lists the known names).
    """
    key = str(name).lower()
    if key not in ADVERSARIAL_LOSSES:
        raise ValueError(f"Unknown adversarial loss {name!r}; expected one of: {', '.join(ADVERSARIAL_LOSSES)}")
    return ADVERSARIAL_LOSSES[key]
