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
from tf_faceedit.losses.boundary import boundary_loss, boundary_weights
from tf_faceedit.losses.penalties import gradient_penalty, r1_penalty
from tf_faceedit.losses.perceptual import perceptual_loss, vgg16_feature_extractor
from tf_faceedit.losses.reconstruction import attribute_bce_loss, l1_loss, l2_loss, masked_l1_loss
from tf_faceedit.losses.reduction import compute_average_loss, per_example_mean, per_example_sum
from tf_faceedit.losses.total_variation import total_variation_loss

__all__ = [
    "ADVERSARIAL_LOSSES",
    "attribute_bce_loss",
    "boundary_loss",
    "boundary_weights",
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
    "perceptual_loss",
    "r1_penalty",
    "total_variation_loss",
    "vgg16_feature_extractor",
    "wgan_discriminator_loss",
    "wgan_generator_loss",
]
