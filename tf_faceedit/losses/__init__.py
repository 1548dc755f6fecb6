"""Backend-portable losses (keras.ops only). Every loss returns a per-example vector [N]; reduce it with
`compute_average_loss(per_example, global_batch_size)` exactly once (STYLE rule 8)."""

from tf_faceedit.losses.adversarial import (
    ADVERSARIAL_LOSSES,
    gan_discriminator_loss,
    gan_generator_loss,
    get_adversarial_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    wgan_discriminator_loss,
    wgan_generator_loss,
)
from tf_faceedit.losses.penalties import gradient_penalty, r1_penalty
from tf_faceedit.losses.reconstruction import attribute_bce_loss, l1_loss, l2_loss, masked_l1_loss
from tf_faceedit.losses.reduction import compute_average_loss, per_example_mean, per_example_sum

__all__ = [
    "ADVERSARIAL_LOSSES",
    "attribute_bce_loss",
    "compute_average_loss",
    "gan_discriminator_loss",
    "gan_generator_loss",
    "get_adversarial_loss",
    "gradient_penalty",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "l1_loss",
    "l2_loss",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "masked_l1_loss",
    "per_example_mean",
    "per_example_sum",
    "r1_penalty",
    "wgan_discriminator_loss",
    "wgan_generator_loss",
]
