"""Typed configuration of pggan_completion: networks, progressive schedule, losses, and the experiment (paper
defaults; see the package docstring and docs/methods/pggan_completion.md)."""

import dataclasses

from tf_faceedit.config import (
    DataConfig,
    ExperimentConfig,
    MaskConfig,
    TrainConfig,
    check,
    check_choice,
    check_range,
)
from tf_faceedit.layers import NORMALIZATIONS
from tf_faceedit.layers.progressive import is_power_of_two


@dataclasses.dataclass
class PGGANCompletionModelConfig:
    """Networks.

    start_resolution: side of the first stage (PGGAN: 4); fmap_base, fmap_max: filters at resolution R are
      min(fmap_max, 2 * fmap_base / R), at least 8 (PGGAN's nf: 512 up to 32x32, then 256, 128, 64, 32, 16 at 1024);
    norm: generator normalization (the discriminator has none); skip_residual_blocks: ResidualBlocks on each skip
      connection when attributes are used; use_attributes: condition G on attributes (false: pure inpainting with
      copy-and-concatenate skips); minibatch_stddev / mbstd_group_size: D's minibatch-stddev channel;
    negative_slope: LeakyReLU slope of both networks.
    """

    start_resolution: int = 4
    fmap_base: int = 8192
    fmap_max: int = 512
    norm: str = "instance"
    skip_residual_blocks: int = 1
    use_attributes: bool = True
    minibatch_stddev: bool = True
    mbstd_group_size: int = 4
    negative_slope: float = 0.2

    def validate(self, prefix="model"):
        check_range(self.start_resolution, f"{prefix}.start_resolution", 4)
        check(
            is_power_of_two(self.start_resolution),
            f"{prefix}.start_resolution",
            f"must be a power of two, got {self.start_resolution}",
        )
        check_range(self.fmap_base, f"{prefix}.fmap_base", 1)
        check_range(self.fmap_max, f"{prefix}.fmap_max", 1)
        check_choice(self.norm, f"{prefix}.norm", list(NORMALIZATIONS))
        check_range(self.skip_residual_blocks, f"{prefix}.skip_residual_blocks", 0)
        check_range(self.mbstd_group_size, f"{prefix}.mbstd_group_size", 1)
        check_range(self.negative_slope, f"{prefix}.negative_slope", 0.0, 1.0)


@dataclasses.dataclass
class ProgressiveConfig:
    """Stage lengths in images (converted to steps as images // train.batch_size). Stage 0 (the start resolution)
    has only its stable part; every later stage fades in for `fade_images`, then trains `stable_images`."""

    fade_images: int = 600000
    stable_images: int = 600000

    def validate(self, prefix="progressive"):
        check_range(self.fade_images, f"{prefix}.fade_images", 0)
        check_range(self.stable_images, f"{prefix}.stable_images", 1)


@dataclasses.dataclass
class PGGANCompletionLossConfig:
    """Loss weights and choices (see the package docstring and docs/methods/pggan_completion.md).

    adversarial: "gan" (non-saturating, the paper's form), "lsgan", "hinge" or "wgan" (with lambda_gp, ignored
      otherwise).
    lambda_rec, hole_weight: the reconstruction L1 (hole_weight inside the hole, 1 - hole_weight outside). Like
      every image term here it is a per-element MEAN (divided by H * W * C), so a weight means the same at every
      stage resolution; the re-implementation's per-example sums equal these means times H * W * C.
    lambda_feat, vgg_weights, feature_min_resolution: the VGG16 relu2_2 feature loss, on features divided by 12.75
      (SRGAN's scale for Caffe-range VGG features, so the mean squared difference is of order 1), only at stages
      of at least `feature_min_resolution` (relu2_2 of a 4x4 or 8x8 image is border effects). vgg_weights:
      "imagenet", a path to a VGG16 include_top=False .h5/.weights.h5 file, or "random" (tests).
    lambda_dfm: feature matching on the discriminator's own intermediate features (pix2pixHD), mean |D_l(real) -
      D_l(I_syn)| over its conv layers: a feature loss that needs no download (0 = off). A deviation.
    lambda_bdy, boundary_kernel, boundary_min_resolution: the boundary L1, only at stages of at least
      `boundary_min_resolution` (below 16x16 a 7x7 window spans the whole image and the term is a global L1).
    lambda_attr: attribute loss; d_attr_fakes: D's attribute head also learns on G's fakes with the attributes G
      was asked for (the synthesized term of the paper's L_attr); false: real images only.
    rec_on_flipped: "full" (the paper: L_rec pulls I_syn towards I_real in the hole even when an attribute was
      flipped) or "context" (rows with a flipped attribute get the reconstruction and feature losses outside the
      hole only, so nothing teaches G to ignore the requested attribute; a deviation).
    history_size: earlier fakes kept for D (0 = off); history_fraction: share of D's fake batch drawn from them
      once the buffer is full.
    d_fake: what D judges as a fake, "raw" (I_syn everywhere, the paper's choice) or "composited" (I_syn in the
      hole, the input elsewhere).
    fade_reals: blend the reals D sees (and the loss targets) as PGGAN does during a fade-in, lerp(up(down(x)), x,
      alpha), so that D cannot tell a fading-in G by blockiness alone.
    reset_optimizers_per_stage: zero both Adam states when a new resolution starts (PGGAN builds fresh optimizers
      per resolution; newly faded-in layers otherwise start with zero moments under a large step count)."""

    adversarial: str = "gan"
    lambda_gp: float = 10.0
    lambda_rec: float = 500.0
    hole_weight: float = 0.7
    lambda_feat: float = 10.0
    vgg_weights: str = "imagenet"
    feature_min_resolution: int = 32
    lambda_dfm: float = 0.0
    lambda_bdy: float = 5000.0
    boundary_kernel: int = 7
    boundary_min_resolution: int = 16
    lambda_attr: float = 2.0
    d_attr_fakes: bool = True
    rec_on_flipped: str = "full"
    history_size: int = 64
    history_fraction: float = 0.5
    d_fake: str = "raw"
    fade_reals: bool = True
    reset_optimizers_per_stage: bool = True

    def validate(self, prefix="loss"):
        check_choice(self.adversarial, f"{prefix}.adversarial", ["gan", "lsgan", "hinge", "wgan"])
        for name in ("lambda_gp", "lambda_rec", "lambda_feat", "lambda_dfm", "lambda_bdy", "lambda_attr"):
            check_range(getattr(self, name), f"{prefix}.{name}", 0.0)
        check_range(self.hole_weight, f"{prefix}.hole_weight", 0.0, 1.0)
        check(
            self.boundary_kernel >= 3 and self.boundary_kernel % 2 == 1,
            f"{prefix}.boundary_kernel",
            f"must be an odd int >= 3, got {self.boundary_kernel}",
        )
        check(
            bool(self.vgg_weights),
            f"{prefix}.vgg_weights",
            "must be imagenet, random or a path to a VGG16 .h5/.weights.h5 file",
        )
        check_range(self.history_size, f"{prefix}.history_size", 0)
        check_range(self.history_fraction, f"{prefix}.history_fraction", 0.0, 1.0)
        check_choice(self.d_fake, f"{prefix}.d_fake", ["raw", "composited"])
        check_choice(self.rec_on_flipped, f"{prefix}.rec_on_flipped", ["full", "context"])
        check_range(self.feature_min_resolution, f"{prefix}.feature_min_resolution", 1)
        check_range(self.boundary_min_resolution, f"{prefix}.boundary_min_resolution", 1)


@dataclasses.dataclass
class PGGANCompletionConfig(ExperimentConfig):
    method: str = "pggan_completion"
    data: DataConfig = dataclasses.field(
        default_factory=lambda: DataConfig(
            attributes=["Male", "Smiling"], image_size=128, mask=MaskConfig(kind="noise")
        )
    )
    model: PGGANCompletionModelConfig = dataclasses.field(default_factory=PGGANCompletionModelConfig)
    loss: PGGANCompletionLossConfig = dataclasses.field(default_factory=PGGANCompletionLossConfig)
    progressive: ProgressiveConfig = dataclasses.field(default_factory=ProgressiveConfig)
    # steps: the full 4 -> 128 schedule at batch 16 (37,500 + 5 x 75,000)
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(
            steps=412500, n_critic=1, batch_size=16, g_lr=2e-4, d_lr=2e-4, beta_1=0.5, beta_2=0.99
        )
    )

    def validate(self):
        super().validate()
        self.progressive.validate("progressive")
        size, start = self.data.image_size, self.model.start_resolution
        check(
            self.data.mask.kind != "none",
            "data.mask.kind",
            "must be noise or rect for pggan_completion (it completes masked holes), got 'none'",
        )
        check(size >= start, "data.image_size", f"must be >= model.start_resolution ({start}), got {size}")
        batch = self.train.batch_size
        check(
            self.progressive.stable_images >= batch,
            "progressive.stable_images",
            f"must be >= train.batch_size ({batch}) so that every stage has a step, got "
            f"{self.progressive.stable_images}",
        )
        check(
            self.loss.history_size == 0 or self.loss.history_size >= batch,
            "loss.history_size",
            f"must be 0 (off) or >= train.batch_size ({batch}), got {self.loss.history_size}",
        )
        return self
