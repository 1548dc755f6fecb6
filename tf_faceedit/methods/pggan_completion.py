"""Face completion with controllable attributes, trained progressively (Chen & Zhong: Chen, Nie, Wu, Healey, "High
Resolution Face Completion with Multiple Controllable Attributes via Fully End-to-End Progressive Generative
Adversarial Networks", arXiv 1801.07632).

Contract (S = data.image_size, R = resolution of the current stage, K attributes):
  I_real [N, R, R, 3] in [-1, 1]; M [N, R, R, 1] in [0, 1], 1 = hole (binary at R = S; at R < S the average-pooled
  binary mask); I_obs = I_real with the hole removed (at R < S the average-pooled full-resolution I_obs);
  A [N, K] in {0, 1}.

Generator G(I_obs, M, A) = G_compl(G_enc(I_obs, M), A), one forward pass, U-shaped, instance norm:
  G_enc:   from_rgb[R] (1x1 conv of concat(I_obs, M)) -> per resolution two 3x3 convs + 2x average pool -> 4x4
  neck:    at the start resolution the tiled attributes are concatenated (TileAttributes), two 3x3 convs
  G_compl: per resolution nearest 2x upsample, concat the encoder feature of that resolution (the output of its
           first conv, through `model.skip_residual_blocks` ResidualBlocks when attributes are used, else copied),
           two 3x3 convs; to_rgb[R] (1x1 conv + tanh)
  inputs {"image": I_obs, "mask": M, "attributes": A}; outputs {"image": I_syn (raw), "composited":
  I_syn * M + I_obs} (I_obs is zero in the hole already; at full size this is I_syn * M + I * (1 - M)).
Discriminator D(I) -> {"src": [N, 1] real/fake logit, "cls": [N, K] attribute logits}: from_rgb[R], per resolution
two 3x3 convs (LeakyReLU, no norm) + 2x average pool, at the start resolution minibatch stddev, 3x3 conv, dense,
and the two heads on the shared trunk.

Progressive growing (Karras et al., ICLR 2018): stage s trains at R = start_resolution * 2^s. Both networks hold
the layers of every resolution from construction; `set_stage(s)` selects the graph. A new stage fades in over
`progressive.fade_images` images, then trains `progressive.stable_images` images at alpha = 1:
  G_enc input:  alpha * enc_block_R(from_rgb_R(x)) + (1 - alpha) * from_rgb_{R/2}(avgpool(x))
  G output:     alpha * to_rgb_R(dec_block_R(h)) + (1 - alpha) * upsample(to_rgb_{R/2}(h_{R/2}))
  D input side: like G_enc.
So at alpha = 0, G_s(x) = upsample2x(G_{s-1}(avgpool2x(x))). alpha is a non-trainable variable of each network,
assigned by the trainer every step from its step counter: alpha = clip((step - phase start) / fade_steps, 0, 1).

Losses, per example (the trainer reduces them once over the global batch). A_obs = A_real with probability 1/2,
else A_real with one random attribute flipped; fakes = composited I_syn (loss.d_fake "composited") or the raw
I_syn (loss.d_fake "raw", the paper's D input):
  D: adv(D_src(I_real), D_src(fakes mixed with the history buffer)) + lambda_attr * BCE(D_cls(I_real), A_real)
     [+ lambda_gp * GP for adversarial "wgan"]
  G: adv(D_src(fakes)) + lambda_attr * BCE(D_cls(I_syn), A_obs)
     + lambda_rec * masked_l1(I_real, I_syn, M, hole_weight)             (hole_weight 0.7 inside, 0.3 outside)
     + lambda_feat * mean((VGG16_relu2_2(I_real) - VGG16_relu2_2(I_syn))^2)
     + lambda_bdy * mean(w * |I_real - I_syn|), w = 1 - |2 mean_filter_k(M) - 1|
Defaults: lambda_rec 500, lambda_feat 10, lambda_bdy 5000 (k = 7), lambda_attr 2, Adam 2e-4 (0.5, 0.99), batch 16.
"""

import dataclasses
import logging
import math

import keras
from keras import ops

from tf_faceedit import registry
from tf_faceedit.config import (
    DataConfig,
    ExperimentConfig,
    MaskConfig,
    TrainConfig,
    check,
    check_choice,
    check_range,
)
from tf_faceedit.layers import (
    NORMALIZATIONS,
    ConvNormAct,
    FadeIn,
    MinibatchStddev,
    ResidualBlock,
    TileAttributes,
    downsample2x,
    upsample2x,
)
from tf_faceedit.layers.conditioning import flip_attribute, flip_one_attribute
from tf_faceedit.losses import (
    attribute_bce_loss,
    boundary_loss,
    get_adversarial_loss,
    gradient_penalty,
    masked_l1_loss,
    perceptual_loss,
    vgg16_feature_extractor,
)
from tf_faceedit.training.gan_trainer import GANTrainer, Phase
from tf_faceedit.training.image_pool import HistoryBuffer

log = logging.getLogger("tf_faceedit")

MIN_FILTERS = 8
SAMPLE_MIN_SIZE = 64  # sample-grid tiles are upsampled (nearest) to at least this many pixels

# ---------------------------------------------------------------------------------------------------------------
# Config


def _is_power_of_two(n):
    return isinstance(n, int) and n >= 1 and n & (n - 1) == 0


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
        check(_is_power_of_two(self.start_resolution), f"{prefix}.start_resolution",
              f"must be a power of two, got {self.start_resolution}")
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
    """Loss weights (see the module docstring). adversarial: "gan" (non-saturating, the paper's form), "lsgan",
    "hinge" or "wgan" (with lambda_gp, ignored otherwise). vgg_weights: "imagenet", a path to a VGG16
    include_top=False .h5/.weights.h5 file, or "random" (tests). history_size: earlier fakes kept for D (0 = off);
    history_fraction: share of D's fake batch drawn from them once the buffer is full. d_fake: what D judges as a
    fake, "composited" (I_syn in the hole, the input elsewhere) or "raw" (I_syn everywhere, the paper's choice).
    reset_optimizers_per_stage: zero both Adam states when a new resolution starts (PGGAN builds fresh optimizers
    per resolution; newly faded-in layers otherwise start with zero moments under a large step count)."""

    adversarial: str = "gan"
    lambda_gp: float = 10.0
    lambda_rec: float = 500.0
    hole_weight: float = 0.7
    lambda_feat: float = 10.0
    vgg_weights: str = "imagenet"
    lambda_bdy: float = 5000.0
    boundary_kernel: int = 7
    lambda_attr: float = 2.0
    history_size: int = 64
    history_fraction: float = 0.5
    d_fake: str = "composited"
    reset_optimizers_per_stage: bool = True

    def validate(self, prefix="loss"):
        check_choice(self.adversarial, f"{prefix}.adversarial", ["gan", "lsgan", "hinge", "wgan"])
        for name in ("lambda_gp", "lambda_rec", "lambda_feat", "lambda_bdy", "lambda_attr"):
            check_range(getattr(self, name), f"{prefix}.{name}", 0.0)
        check_range(self.hole_weight, f"{prefix}.hole_weight", 0.0, 1.0)
        check(self.boundary_kernel >= 3 and self.boundary_kernel % 2 == 1, f"{prefix}.boundary_kernel",
              f"must be an odd int >= 3, got {self.boundary_kernel}")
        check(bool(self.vgg_weights), f"{prefix}.vgg_weights",
              "must be imagenet, random or a path to a VGG16 .h5/.weights.h5 file")
        check_range(self.history_size, f"{prefix}.history_size", 0)
        check_range(self.history_fraction, f"{prefix}.history_fraction", 0.0, 1.0)
        check_choice(self.d_fake, f"{prefix}.d_fake", ["composited", "raw"])


@dataclasses.dataclass
class PGGANCompletionConfig(ExperimentConfig):
    method: str = "pggan_completion"
    data: DataConfig = dataclasses.field(default_factory=lambda: DataConfig(
        attributes=["Male", "Smiling"], image_size=128, mask=MaskConfig(kind="noise")))
    model: PGGANCompletionModelConfig = dataclasses.field(default_factory=PGGANCompletionModelConfig)
    loss: PGGANCompletionLossConfig = dataclasses.field(default_factory=PGGANCompletionLossConfig)
    progressive: ProgressiveConfig = dataclasses.field(default_factory=ProgressiveConfig)
    # steps: the full 4 -> 128 schedule at batch 16 (37,500 + 5 x 75,000)
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(
        steps=412500, n_critic=1, batch_size=16, g_lr=2e-4, d_lr=2e-4, beta_1=0.5, beta_2=0.99))

    def validate(self):
        super().validate()
        self.progressive.validate("progressive")
        size, start = self.data.image_size, self.model.start_resolution
        check(self.data.mask.kind != "none", "data.mask.kind",
              "must be noise or rect for pggan_completion (it completes masked holes), got 'none'")
        check(size >= start, "data.image_size", f"must be >= model.start_resolution ({start}), got {size}")
        batch = self.train.batch_size
        check(self.progressive.stable_images >= batch, "progressive.stable_images",
              f"must be >= train.batch_size ({batch}) so that every stage has a step, got "
              f"{self.progressive.stable_images}")
        check(self.loss.history_size == 0 or self.loss.history_size >= batch, "loss.history_size",
              f"must be 0 (off) or >= train.batch_size ({batch}), got {self.loss.history_size}")
        return self


# ---------------------------------------------------------------------------------------------------------------
# Networks


def stage_resolutions(start_resolution, resolution):
    """[start, 2 * start, ..., resolution]: the side of each stage."""
    sizes, r = [], int(start_resolution)
    while r <= resolution:
        sizes.append(r)
        r *= 2
    if sizes[-1] != resolution:
        raise ValueError(f"resolution {resolution} is not start_resolution {start_resolution} times a power of two")
    return sizes


def filters_at(resolution, fmap_base, fmap_max):
    """PGGAN's width at a resolution: min(fmap_max, 2 * fmap_base / R), at least 8."""
    return max(MIN_FILTERS, min(int(fmap_max), (2 * int(fmap_base)) // int(resolution)))


def _he_std(fan_in, gain=2.0):
    """He et al. (2015) initial std sqrt(gain / fan_in) (gain 2 before a (leaky) ReLU, 1 before a linear output)."""
    return math.sqrt(gain / fan_in)


def _run(layers, x, training):
    for layer in layers:
        x = layer(x, training=training)
    return x


class _ProgressiveNetwork(keras.Model):
    """Shared stage/alpha machinery of the progressive generator and discriminator."""

    def __init__(self, resolution, start_resolution, fmap_base, fmap_max, negative_slope, **kwargs):
        super().__init__(**kwargs)
        self.resolution = int(resolution)
        self.start_resolution = int(start_resolution)
        self.fmap_base = int(fmap_base)
        self.fmap_max = int(fmap_max)
        self.negative_slope = float(negative_slope)
        self.resolutions = stage_resolutions(self.start_resolution, self.resolution)
        self.num_stages = len(self.resolutions)
        self.stage = self.num_stages - 1
        # fade-in weight of the current stage's new layers; assigned by the trainer every step
        self.alpha = self.add_weight(shape=(), initializer="ones", trainable=False, name="alpha",
                                     aggregation="only_first_replica")

    def filters(self, resolution):
        return filters_at(resolution, self.fmap_base, self.fmap_max)

    def _conv(self, filters, kernel_size, fan_in, name, norm="none", activation="lrelu", gain=2.0):
        return ConvNormAct(filters, kernel_size, norm=norm, activation=activation,
                           negative_slope=self.negative_slope,
                           kernel_stddev=_he_std(kernel_size * kernel_size * fan_in, gain), name=name)

    @property
    def current_resolution(self):
        return self.resolutions[self.stage]

    def set_stage(self, stage):
        """Selects the graph of stage `stage` (python int, 0 = start resolution); alpha is left as it is."""
        stage = int(stage)
        if not 0 <= stage < self.num_stages:
            raise ValueError(f"{self.name}: stage must be in [0, {self.num_stages - 1}] "
                             f"(resolutions {self.resolutions}), got {stage}")
        self.stage = stage
        self.predict_function = None  # a stage has its own graph

    def _check_size(self, image):
        size = image.shape[1]
        if size is not None and size != self.current_resolution:
            raise ValueError(f"{self.name} is at stage {self.stage} ({self.current_resolution}x"
                             f"{self.current_resolution}) but got {size}x{image.shape[2]} images; call "
                             f"set_stage() or average-pool the input to the stage resolution")

    def _build_all_stages(self, make_inputs, stage):
        """One eager forward pass per stage on a batch of 1 creates every variable (optimizers are built on all)."""
        for s, r in enumerate(self.resolutions):
            self.stage = s
            self.call(make_inputs(r), training=False)
        self.built = True
        self.set_stage(self.num_stages - 1 if stage is None else stage)

    def _used(self):
        raise NotImplementedError

    @property
    def active_trainable_variables(self):
        """Trainable variables of the layers the current stage uses (both fade-in paths included)."""
        variables = []
        for layer in self._used():
            variables.extend(layer.trainable_variables)
        return variables

    def _base_config(self):
        return {"name": self.name, "trainable": self.trainable, "resolution": self.resolution,
                "start_resolution": self.start_resolution, "fmap_base": self.fmap_base, "fmap_max": self.fmap_max,
                "negative_slope": self.negative_slope, "stage": self.stage}


@keras.saving.register_keras_serializable(package="tf_faceedit")
class PGGANCompletionGenerator(_ProgressiveNetwork):
    """U-shaped progressive completion generator G(I_obs, M, A) of Chen & Zhong (arXiv 1801.07632).

    call({"image": I_obs [N,R,R,3], "mask": M [N,R,R,1], "attributes": A [N,K]}) ->
      {"image": I_syn [N,R,R,3] (tanh), "composited": I_syn * M + I_obs}, R = current stage's resolution.
    "image" must already have the hole removed (`complete()` does that). Layers of every resolution are created and
    built at construction; `set_stage(s)` selects the graph; the non-trainable `alpha` fades the newest resolution
    in (see the module docstring).

    Args:
      resolution: final side (a power-of-two multiple of start_resolution).
      start_resolution: side of stage 0.
      num_attributes: K.
      fmap_base, fmap_max: widths, see `filters_at`.
      norm: normalization of every 3x3 conv ("instance" in the paper).
      skip_residual_blocks: ResidualBlocks on each skip when attributes are used (0: plain copy).
      use_attributes: False gives the attribute-free inpainting generator (copy-and-concatenate skips).
      negative_slope: LeakyReLU slope.
      stage: initial stage (default: the last).
      **kwargs: `keras.Model` arguments (name, ...).
    """

    def __init__(self, resolution=128, start_resolution=4, num_attributes=2, fmap_base=8192, fmap_max=512,
                 norm="instance", skip_residual_blocks=1, use_attributes=True, negative_slope=0.2, stage=None,
                 **kwargs):
        kwargs.setdefault("name", "pggan_completion_generator")
        super().__init__(resolution, start_resolution, fmap_base, fmap_max, negative_slope, **kwargs)
        self.num_attributes = int(num_attributes)
        self.norm = norm
        self.skip_residual_blocks = int(skip_residual_blocks)
        self.use_attributes = bool(use_attributes) and self.num_attributes > 0
        self.residual_skips = self.use_attributes and self.skip_residual_blocks > 0
        f, rs, start = self.filters, self.resolutions, self.start_resolution
        k = self.num_attributes if self.use_attributes else 0

        self.from_rgb = [self._conv(f(r), 1, 4, f"from_rgb_{r}") for r in rs]
        # encoder block at r (> start): conv1 [r, f(r)] (the skip of r), conv2 -> [r, f(r/2)], pooled to r/2
        self.encoder_blocks = [[self._conv(f(r), 3, f(r), f"enc_{r}_conv1", norm),
                                self._conv(f(r // 2), 3, f(r), f"enc_{r}_conv2", norm)] for r in rs[1:]]
        self.tile = TileAttributes(name="tile_attributes")
        self.bottleneck = [self._conv(f(start), 3, f(start) + k, f"neck_{start}_conv1", norm),
                           self._conv(f(start), 3, f(start), f"neck_{start}_conv2", norm)]
        self.skip_blocks = [[ResidualBlock(f(r), 3, norm=norm, activation="lrelu", negative_slope=self.negative_slope,
                                           kernel_stddev=_he_std(9 * f(r)), name=f"skip_{r}_res{i + 1}")
                             for i in range(self.skip_residual_blocks)] if self.residual_skips else []
                            for r in rs[1:]]
        # decoder block at r: concat(upsampled [r, f(r/2)], skip [r, f(r)]) -> [r, f(r)]
        self.decoder_blocks = [[self._conv(f(r), 3, f(r // 2) + f(r), f"dec_{r}_conv1", norm),
                                self._conv(f(r), 3, f(r), f"dec_{r}_conv2", norm)] for r in rs[1:]]
        self.to_rgb = [self._conv(3, 1, f(r), f"to_rgb_{r}", activation="tanh", gain=1.0) for r in rs]
        self.encoder_fade = FadeIn(name="encoder_fade")
        self.decoder_fade = FadeIn(name="decoder_fade")

        def make_inputs(r):
            return {"image": ops.zeros((1, r, r, 3)), "mask": ops.zeros((1, r, r, 1)),
                    "attributes": ops.zeros((1, self.num_attributes))}

        self._build_all_stages(make_inputs, stage)

    def call(self, inputs, training=None):
        image, mask = inputs["image"], inputs["mask"]
        self._check_size(image)
        s = self.stage
        alpha = ops.convert_to_tensor(self.alpha)
        x = ops.concatenate([image, ops.cast(mask, image.dtype)], axis=-1)
        # 1. encoder G_enc, from the stage resolution down to the start resolution
        h, skips = self.from_rgb[s](x, training=training), {}
        for t in range(s, 0, -1):
            conv1, conv2 = self.encoder_blocks[t - 1]
            skips[t] = conv1(h, training=training)
            h = downsample2x(conv2(skips[t], training=training))
            if t == s:  # fade-in of the new input layers
                h = self.encoder_fade([h, self.from_rgb[s - 1](downsample2x(x), training=training), alpha])
        # 2. bottleneck with the attributes
        if self.use_attributes:
            h = self.tile([h, inputs["attributes"]])
        h = _run(self.bottleneck, h, training)
        # 3. decoder G_compl, back up to the stage resolution
        previous = h
        for t in range(1, s + 1):
            previous = h
            skip = _run(self.skip_blocks[t - 1], skips[t], training)
            h = _run(self.decoder_blocks[t - 1], ops.concatenate([upsample2x(h), skip], axis=-1), training)
        raw = self.to_rgb[s](h, training=training)
        if s > 0:  # fade-in of the new output layers
            raw = self.decoder_fade([raw, upsample2x(self.to_rgb[s - 1](previous, training=training)), alpha])
        # I_obs already has the hole removed (avgpool(I * (1 - M)) below the final stage), so the composite adds it
        # unattenuated: raw * m + I_obs (= raw * M + I * (1 - M) for a binary M at full size). Multiplying I_obs by
        # (1 - m) again would darken the context wherever the pooled mask is fractional: a seam D sees and G cannot
        # remove.
        return {"image": raw, "composited": raw * ops.cast(mask, raw.dtype) + ops.cast(image, raw.dtype)}

    def _used(self):
        s = self.stage
        layers = [self.from_rgb[s], self.to_rgb[s], *self.bottleneck]
        if s > 0:
            layers += [self.from_rgb[s - 1], self.to_rgb[s - 1]]
        for t in range(s):
            layers += self.encoder_blocks[t] + self.skip_blocks[t] + self.decoder_blocks[t]
        return layers

    def get_config(self):
        return {**self._base_config(), "num_attributes": self.num_attributes, "norm": self.norm,
                "skip_residual_blocks": self.skip_residual_blocks, "use_attributes": self.use_attributes}


@keras.saving.register_keras_serializable(package="tf_faceedit")
class PGGANCompletionDiscriminator(_ProgressiveNetwork):
    """Progressive discriminator with a shared trunk F and two heads (Chen & Zhong, arXiv 1801.07632).

    call(image [N,R,R,3]) -> {"src": [N, 1] real/fake logit, "cls": [N, K] attribute logits}. Per resolution two
    3x3 convs (LeakyReLU, no normalization) and a 2x average pool; at the start resolution a minibatch-stddev
    channel, a 3x3 conv, flatten, dense f(start), then the heads. Stages and alpha as in the generator.

    Args:
      resolution, start_resolution, fmap_base, fmap_max, negative_slope, stage: as `PGGANCompletionGenerator`.
      num_attributes: K >= 1.
      minibatch_stddev: add the minibatch-stddev channel; mbstd_group_size: its group size.
      **kwargs: `keras.Model` arguments.
    """

    def __init__(self, resolution=128, start_resolution=4, num_attributes=2, fmap_base=8192, fmap_max=512,
                 minibatch_stddev=True, mbstd_group_size=4, negative_slope=0.2, stage=None, **kwargs):
        kwargs.setdefault("name", "pggan_completion_discriminator")
        super().__init__(resolution, start_resolution, fmap_base, fmap_max, negative_slope, **kwargs)
        if int(num_attributes) < 1:
            raise ValueError(f"the discriminator needs num_attributes >= 1, got {num_attributes}")
        self.num_attributes = int(num_attributes)
        self.minibatch_stddev = bool(minibatch_stddev)
        self.mbstd_group_size = int(mbstd_group_size)
        f, rs, start = self.filters, self.resolutions, self.start_resolution
        flat = start * start * f(start)

        self.from_rgb = [self._conv(f(r), 1, 3, f"d_from_rgb_{r}") for r in rs]
        self.blocks = [[self._conv(f(r), 3, f(r), f"d_{r}_conv1"), self._conv(f(r // 2), 3, f(r), f"d_{r}_conv2")]
                       for r in rs[1:]]
        self.fade = FadeIn(name="d_fade")
        self.mbstd = MinibatchStddev(self.mbstd_group_size, name="d_mbstd") if self.minibatch_stddev else None
        self.final_conv = self._conv(f(start), 3, f(start) + int(self.minibatch_stddev), f"d_{start}_conv")
        self.flatten = keras.layers.Flatten(name="d_flatten")
        self.dense = keras.layers.Dense(f(start), kernel_initializer=keras.initializers.RandomNormal(
            0.0, _he_std(flat)), name="d_dense")
        self.act = keras.layers.LeakyReLU(negative_slope=self.negative_slope, name="d_dense_act")
        head_init = keras.initializers.RandomNormal(0.0, _he_std(f(start), 1.0))
        self.src = keras.layers.Dense(1, kernel_initializer=head_init, name="d_src")
        self.cls = keras.layers.Dense(self.num_attributes, kernel_initializer=head_init, name="d_cls")
        self._build_all_stages(lambda r: ops.zeros((1, r, r, 3)), stage)

    def call(self, inputs, training=None):
        image = inputs
        self._check_size(image)
        s = self.stage
        h = self.from_rgb[s](image, training=training)
        for t in range(s, 0, -1):
            h = downsample2x(_run(self.blocks[t - 1], h, training))
            if t == s:
                old = self.from_rgb[s - 1](downsample2x(image), training=training)
                h = self.fade([h, old, ops.convert_to_tensor(self.alpha)])
        if self.mbstd is not None:
            h = self.mbstd(h)
        h = self.act(self.dense(self.flatten(self.final_conv(h, training=training))))
        return {"src": self.src(h), "cls": self.cls(h)}

    def _used(self):
        s = self.stage
        layers = [self.from_rgb[s], self.final_conv, self.dense, self.src, self.cls]
        if s > 0:
            layers.append(self.from_rgb[s - 1])
        for t in range(s):
            layers += self.blocks[t]
        return layers

    def get_config(self):
        return {**self._base_config(), "num_attributes": self.num_attributes,
                "minibatch_stddev": self.minibatch_stddev, "mbstd_group_size": self.mbstd_group_size}


def build_generator(config, stage=None):
    m = config.model
    return PGGANCompletionGenerator(
        config.data.image_size, m.start_resolution, len(config.data.attributes), m.fmap_base, m.fmap_max, m.norm,
        m.skip_residual_blocks, m.use_attributes, m.negative_slope, stage=stage)


def build_discriminator(config, stage=None):
    m = config.model
    return PGGANCompletionDiscriminator(
        config.data.image_size, m.start_resolution, len(config.data.attributes), m.fmap_base, m.fmap_max,
        m.minibatch_stddev, m.mbstd_group_size, m.negative_slope, stage=stage)


def observe(image, mask, factor=1):
    """The generator's inputs from a full image: (I_real, M, I_obs) average-pooled by `factor`.

    I_obs = avgpool(image * (1 - mask)) (the hole is removed at full resolution, then pooled), so where the pooled
    mask is 0, I_obs equals the pooled image exactly.
    """
    image = ops.convert_to_tensor(image)
    mask = ops.cast(mask, image.dtype)
    return downsample2x(image, factor), downsample2x(mask, factor), downsample2x(image * (1.0 - mask), factor)


def complete(generator, image, mask, attributes, training=False):
    """Completes the hole of `image` with the generator at its current stage.

    Args:
      generator: a `PGGANCompletionGenerator` (any stage; `set_stage` picks one).
      image: [N, S, S, 3] in [-1, 1]; S = the stage resolution R or a power-of-two multiple of it (then image and
        mask are average-pooled to R, as in training). Pixels inside the hole are ignored.
      mask: [N, S, S, 1], 1 = hole.
      attributes: [N, K] in {0, 1}, the attributes the completion should have.

    Returns:
      (raw, composited), both [N, R, R, 3]: the generator's output, and the output inside the hole with the input
      elsewhere (where the (pooled) mask is 0 it equals the (pooled) input exactly).
    """
    size, r = ops.convert_to_tensor(image).shape[1], generator.current_resolution
    if size is None or size % r or not _is_power_of_two(size // r):
        raise ValueError(f"complete: the generator is at {r}x{r}; images must be {r}x{r} or a power-of-two "
                         f"multiple of it, got {size}x{ops.convert_to_tensor(image).shape[2]}")
    _, mask, observed = observe(image, mask, size // r)
    out = generator({"image": observed, "mask": mask, "attributes": attributes}, training=training)
    return out["image"], out["composited"]


# ---------------------------------------------------------------------------------------------------------------
# Trainer


class PGGANCompletion(GANTrainer):
    """Progressive face-completion trainer: one phase per resolution, D then G each step.

    Args:
        config: `PGGANCompletionConfig`.
    """

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.generator = build_generator(config, stage=0)
        self.discriminator = build_discriminator(config, stage=0)
        self.g_adv, self.d_adv = get_adversarial_loss(config.loss.adversarial)
        if config.loss.lambda_feat > 0:
            self.feature_extractor = vgg16_feature_extractor(config.loss.vgg_weights)
        else:
            self.feature_extractor = None
            log.info("loss.lambda_feat=0: training without the VGG16 feature loss (no VGG16 is built)")
        self.history_buffer = None
        self.set_phase(self.phases()[0])
        schedule = self.schedule()
        if config.train.steps < schedule[-1].end_step:
            last = self.phase_at(config.train.steps - 1)
            log.warning("train.steps=%d ends in stage %s; the full schedule up to %dx%d takes %d steps",
                        config.train.steps, last.name, config.data.image_size, config.data.image_size,
                        schedule[-1].end_step)

    # -- progressive schedule -------------------------------------------------------------------------------------
    def schedule(self):
        """The full schedule, one Phase per resolution (independent of train.steps)."""
        cfg, batch = self.config, self.config.train.batch_size
        fade, stable = cfg.progressive.fade_images // batch, cfg.progressive.stable_images // batch
        phases, start = [], 0
        for stage, r in enumerate(stage_resolutions(cfg.model.start_resolution, cfg.data.image_size)):
            fade_steps = fade if stage > 0 else 0
            phases.append(Phase(f"{r}x{r}", start, start + fade_steps + stable,
                                {"stage": stage, "fade_steps": fade_steps, "resolution": r}))
            start = phases[-1].end_step
        return phases

    def phases(self):
        """The schedule cut (or extended) at train.steps: steps past the schedule stay in the last stage, alpha 1."""
        steps = self.config.train.steps
        phases = [phase for phase in self.schedule() if phase.start_step < steps]
        phases[-1] = dataclasses.replace(phases[-1], end_step=steps)
        return phases

    def alpha_at(self, step, phase=None):
        """Fade-in weight clip((step - phase start) / fade_steps, 0, 1) of global `step` (int or tensor) in `phase`
        (default: the current one), a float32 scalar tensor; 1 for a phase without fade-in."""
        phase = phase or self.phase
        fade = phase.info["fade_steps"]
        if fade == 0:
            return ops.convert_to_tensor(1.0, "float32")
        step = ops.cast(ops.convert_to_tensor(step), "float32")
        return ops.clip((step - float(phase.start_step)) / float(fade), 0.0, 1.0)

    def set_phase(self, phase):
        super().set_phase(phase)
        for network in self.networks.values():
            network.set_stage(phase.info["stage"])
        r, loss = phase.info["resolution"], self.config.loss
        if loss.history_size > 0:  # a new, empty buffer at the stage resolution (restored from a checkpoint after)
            self.history_buffer = HistoryBuffer(loss.history_size, (r, r, 3), loss.history_fraction)
        alpha = self.alpha_at(ops.convert_to_numpy(self.step), phase)
        for network in self.networks.values():
            network.alpha.assign(alpha)

    def start_phase(self, phase):
        if self.config.loss.reset_optimizers_per_stage:
            log.info("stage %s: optimizer states reset (loss.reset_optimizers_per_stage)", phase.name)
            self.reset_optimizers()

    def phase_state(self):
        return {"phase": self.phase.name, "stage": self.phase.info["stage"],
                "resolution": self.phase.info["resolution"],
                "alpha": float(ops.convert_to_numpy(self.generator.alpha))}

    def state_variables(self):
        return super().state_variables() + (self.history_buffer.variables if self.history_buffer is not None else [])

    # -- batches --------------------------------------------------------------------------------------------------
    def at_stage_resolution(self, batch):
        """The batch's images and masks average-pooled to the current stage: {"image", "mask", "observed"}."""
        factor = self.config.data.image_size // self.generator.current_resolution
        real, mask, observed = observe(batch["image"], batch["mask"], factor)
        return {"image": real, "mask": mask, "observed": observed}

    def prepare_batch(self, batch, seed):
        # 1. images and masks at the stage resolution; 2. A_obs: A_real or one attribute flipped, 1/2 each;
        # 3. this step's fade-in weight into both networks
        attributes = batch["attributes"]
        keep = keras.random.uniform((ops.shape(attributes)[0],), seed=seed) < 0.5
        target = ops.where(keep[:, None], attributes, flip_one_attribute(attributes, seed))
        alpha = self.alpha_at(self.step)
        for network in self.networks.values():
            network.alpha.assign(alpha)
        return {**self.at_stage_resolution(batch), "attributes": attributes, "target_attributes": target}

    # -- losses ---------------------------------------------------------------------------------------------------
    def _generate(self, batch, training):
        return self.generator({"image": batch["observed"], "mask": batch["mask"],
                               "attributes": batch["target_attributes"]}, training=training)

    def _d_fake_key(self):
        return "composited" if self.config.loss.d_fake == "composited" else "image"

    def discriminator_losses(self, batch, seed):
        cfg = self.config.loss
        real = batch["image"]
        fake = ops.stop_gradient(self._generate(batch, training=True)[self._d_fake_key()])
        if self.history_buffer is not None:
            fake = self.history_buffer.query(fake, seed)
        real_out = self.discriminator(real, training=True)
        fake_out = self.discriminator(fake, training=True)
        losses = {"d_adv": self.d_adv(real_out["src"], fake_out["src"]),
                  "d_attr": attribute_bce_loss(batch["attributes"], real_out["cls"])}
        total = losses["d_adv"] + cfg.lambda_attr * losses["d_attr"]
        if cfg.adversarial == "wgan" and cfg.lambda_gp > 0:
            losses["d_gp"] = gradient_penalty(lambda x: self.discriminator(x, training=True)["src"], real, fake,
                                              seed=seed)
            total = total + cfg.lambda_gp * losses["d_gp"]
        losses["d_loss"] = total
        return losses

    def generator_losses(self, batch, seed):
        cfg = self.config.loss
        real, mask = batch["image"], batch["mask"]
        out = self._generate(batch, training=True)
        raw = out["image"]
        losses = {
            "g_adv": self.g_adv(self.discriminator(out[self._d_fake_key()], training=True)["src"]),
            "g_attr": attribute_bce_loss(batch["target_attributes"], self.discriminator(raw, training=True)["cls"]),
            "g_rec": masked_l1_loss(real, raw, mask, cfg.hole_weight),
            "g_bdy": boundary_loss(real, raw, mask, cfg.boundary_kernel),
        }
        total = (losses["g_adv"] + cfg.lambda_attr * losses["g_attr"] + cfg.lambda_rec * losses["g_rec"]
                 + cfg.lambda_bdy * losses["g_bdy"])
        if self.feature_extractor is not None:
            losses["g_feat"] = perceptual_loss(self.feature_extractor, real, raw)
            total = total + cfg.lambda_feat * losses["g_feat"]
        losses["g_loss"] = total
        return losses

    # -- inference and samples ------------------------------------------------------------------------------------
    def complete(self, image, mask, attributes):
        """(raw, composited) at the current stage; see the module-level `complete`."""
        return complete(self.generator, image, mask, attributes)

    def sample_rows(self, batch):
        """Rows: masked input (hole white), completion with the real attributes, one row per attribute with that
        attribute flipped, ground truth; tiles upsampled (nearest) to at least 64 px."""
        pooled = self.at_stage_resolution(batch)
        attributes = batch["attributes"]
        factor = max(1, SAMPLE_MIN_SIZE // self.generator.current_resolution)

        def completion(attrs):
            return complete(self.generator, batch["image"], batch["mask"], attrs)[1]

        rows = [("masked input", pooled["observed"] + pooled["mask"]), ("completion", completion(attributes))]
        for i, name in enumerate(self.config.data.attributes):
            rows.append((f"{name} flipped", completion(flip_attribute(attributes, i))))
        rows.append(("ground truth", pooled["image"]))
        return [(label, upsample2x(images, factor)) for label, images in rows]

    # -- inference contract (GANTrainer.infer, task "complete") ---------------------------------------------------
    task = "complete"

    def infer(self, inputs):
        """{"image" [N,S,S,3], "mask" [N,S,S,1], "attributes"} -> {"completed", "raw"} at the current stage's
        resolution R (the stage of the restored checkpoint; S when training finished), via `complete()`."""
        raw, completed = self.complete(inputs["image"], inputs["mask"], ops.cast(inputs["attributes"], "float32"))
        return {"completed": completed, "raw": raw}


registry.register("pggan_completion", PGGANCompletionConfig, PGGANCompletion,
                  "Progressive face completion with controllable attributes (Chen & Zhong, arXiv 1801.07632)")
