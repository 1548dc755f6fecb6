"""The networks of pggan_completion (keras.layers / keras.ops only): the U-shaped progressive completion generator,
the two-headed progressive discriminator, their builders from a config, and `observe` / `complete`, the
inference path from a full image (contract in the package docstring). The stage machinery is
`tf_faceedit.layers.progressive.ProgressiveNetwork`."""

import keras
from keras import ops

from tf_faceedit.layers import (
    FadeIn,
    MinibatchStddev,
    ResidualBlock,
    TileAttributes,
    downsample2x,
    upsample2x,
)
from tf_faceedit.layers.progressive import ProgressiveNetwork, he_std, is_power_of_two, run_layers


@keras.saving.register_keras_serializable(package="tf_faceedit")
class PGGANCompletionGenerator(ProgressiveNetwork):
    """U-shaped progressive completion generator G(I_obs, M, A) of Chen & Zhong (arXiv 1801.07632).

    call({"image": I_obs [N,R,R,3], "mask": M [N,R,R,1], "attributes": A [N,K]}) ->
      {"image": I_syn [N,R,R,3] (tanh), "composited": I_syn * M + I_obs}, R = current stage's resolution.
    "image" must already have the hole removed (`complete()` does that). Layers of every resolution are created and
    built at construction; `set_stage(s)` selects the graph; the non-trainable `alpha` fades the newest resolution
    in (see the package docstring).

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

    def __init__(
        self,
        resolution=128,
        start_resolution=4,
        num_attributes=2,
        fmap_base=8192,
        fmap_max=512,
        norm="instance",
        skip_residual_blocks=1,
        use_attributes=True,
        negative_slope=0.2,
        stage=None,
        **kwargs,
    ):
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
        self.encoder_blocks = [
            [self._conv(f(r), 3, f(r), f"enc_{r}_conv1", norm), self._conv(f(r // 2), 3, f(r), f"enc_{r}_conv2", norm)]
            for r in rs[1:]
        ]
        self.tile = TileAttributes(name="tile_attributes")
        self.bottleneck = [
            self._conv(f(start), 3, f(start) + k, f"neck_{start}_conv1", norm),
            self._conv(f(start), 3, f(start), f"neck_{start}_conv2", norm),
        ]
        self.skip_blocks = [
            [
                ResidualBlock(
                    f(r),
                    3,
                    norm=norm,
                    activation="lrelu",
                    negative_slope=self.negative_slope,
                    kernel_stddev=he_std(9 * f(r)),
                    name=f"skip_{r}_res{i + 1}",
                )
                for i in range(self.skip_residual_blocks)
            ]
            if self.residual_skips
            else []
            for r in rs[1:]
        ]
        # decoder block at r: concat(upsampled [r, f(r/2)], skip [r, f(r)]) -> [r, f(r)]
        self.decoder_blocks = [
            [
                self._conv(f(r), 3, f(r // 2) + f(r), f"dec_{r}_conv1", norm),
                self._conv(f(r), 3, f(r), f"dec_{r}_conv2", norm),
            ]
            for r in rs[1:]
        ]
        self.to_rgb = [self._conv(3, 1, f(r), f"to_rgb_{r}", activation="tanh", gain=1.0) for r in rs]
        self.encoder_fade = FadeIn(name="encoder_fade")
        self.decoder_fade = FadeIn(name="decoder_fade")

        def make_inputs(r):
            return {
                "image": ops.zeros((1, r, r, 3)),
                "mask": ops.zeros((1, r, r, 1)),
                "attributes": ops.zeros((1, self.num_attributes)),
            }

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
        h = run_layers(self.bottleneck, h, training)
        # 3. decoder G_compl, back up to the stage resolution
        previous = h
        for t in range(1, s + 1):
            previous = h
            skip = run_layers(self.skip_blocks[t - 1], skips[t], training)
            h = run_layers(self.decoder_blocks[t - 1], ops.concatenate([upsample2x(h), skip], axis=-1), training)
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
        return {
            **self._base_config(),
            "num_attributes": self.num_attributes,
            "norm": self.norm,
            "skip_residual_blocks": self.skip_residual_blocks,
            "use_attributes": self.use_attributes,
        }


@keras.saving.register_keras_serializable(package="tf_faceedit")
class PGGANCompletionDiscriminator(ProgressiveNetwork):
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

    def __init__(
        self,
        resolution=128,
        start_resolution=4,
        num_attributes=2,
        fmap_base=8192,
        fmap_max=512,
        minibatch_stddev=True,
        mbstd_group_size=4,
        negative_slope=0.2,
        stage=None,
        **kwargs,
    ):
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
        self.blocks = [
            [self._conv(f(r), 3, f(r), f"d_{r}_conv1"), self._conv(f(r // 2), 3, f(r), f"d_{r}_conv2")] for r in rs[1:]
        ]
        self.fade = FadeIn(name="d_fade")
        self.mbstd = MinibatchStddev(self.mbstd_group_size, name="d_mbstd") if self.minibatch_stddev else None
        self.final_conv = self._conv(f(start), 3, f(start) + int(self.minibatch_stddev), f"d_{start}_conv")
        self.flatten = keras.layers.Flatten(name="d_flatten")
        self.dense = keras.layers.Dense(
            f(start), kernel_initializer=keras.initializers.RandomNormal(0.0, he_std(flat)), name="d_dense"
        )
        self.act = keras.layers.LeakyReLU(negative_slope=self.negative_slope, name="d_dense_act")
        head_init = keras.initializers.RandomNormal(0.0, he_std(f(start), 1.0))
        self.src = keras.layers.Dense(1, kernel_initializer=head_init, name="d_src")
        self.cls = keras.layers.Dense(self.num_attributes, kernel_initializer=head_init, name="d_cls")
        self._build_all_stages(lambda r: ops.zeros((1, r, r, 3)), stage)

    def call(self, inputs, training=None, return_features=False):
        """{"src", "cls"}; with return_features=True also "features": the trunk's feature maps (after every
        resolution block, then the final conv), for feature matching."""
        image = inputs
        self._check_size(image)
        s = self.stage
        h = self.from_rgb[s](image, training=training)
        features = []
        for t in range(s, 0, -1):
            h = downsample2x(run_layers(self.blocks[t - 1], h, training))
            if t == s:
                old = self.from_rgb[s - 1](downsample2x(image), training=training)
                h = self.fade([h, old, ops.convert_to_tensor(self.alpha)])
            features.append(h)
        if self.mbstd is not None:
            h = self.mbstd(h)
        h = self.final_conv(h, training=training)
        features.append(h)
        h = self.act(self.dense(self.flatten(h)))
        out = {"src": self.src(h), "cls": self.cls(h)}
        if return_features:
            out["features"] = features
        return out

    def _used(self):
        s = self.stage
        layers = [self.from_rgb[s], self.final_conv, self.dense, self.src, self.cls]
        if s > 0:
            layers.append(self.from_rgb[s - 1])
        for t in range(s):
            layers += self.blocks[t]
        return layers

    def get_config(self):
        return {
            **self._base_config(),
            "num_attributes": self.num_attributes,
            "minibatch_stddev": self.minibatch_stddev,
            "mbstd_group_size": self.mbstd_group_size,
        }


def build_generator(config, stage=None):
    m = config.model
    return PGGANCompletionGenerator(
        config.data.image_size,
        m.start_resolution,
        len(config.data.attributes),
        m.fmap_base,
        m.fmap_max,
        m.norm,
        m.skip_residual_blocks,
        m.use_attributes,
        m.negative_slope,
        stage=stage,
    )


def build_discriminator(config, stage=None):
    m = config.model
    return PGGANCompletionDiscriminator(
        config.data.image_size,
        m.start_resolution,
        len(config.data.attributes),
        m.fmap_base,
        m.fmap_max,
        m.minibatch_stddev,
        m.mbstd_group_size,
        m.negative_slope,
        stage=stage,
    )


def observe(image, mask, factor=1):
    """The generator's inputs from a full image: (I_real, M, I_obs) average-pooled by `factor`.

    I_obs = avgpool(image * (1 - mask)) (the hole is removed at full resolution, then pooled), so where the pooled
    mask is 0, I_obs equals the pooled image exactly.
    """
    image = ops.convert_to_tensor(image)
    mask = ops.cast(mask, image.dtype)
    return downsample2x(image, factor), downsample2x(mask, factor), downsample2x(image * (1.0 - mask), factor)


def fade_real(image, alpha):
    """PGGAN's real-image fade-in: lerp(up2x(down2x(image)), image, alpha), [N, R, R, C].

    During the fade-in of stage R the generator's output is (1 - alpha) parts the upsampled R/2 output, so the reals
    D compares it with (and the loss targets) are blended the same way; at alpha = 1 the image is returned as is.
    """
    image = ops.convert_to_tensor(image)
    alpha = ops.cast(alpha, image.dtype)
    blocky = upsample2x(downsample2x(image))
    return blocky + alpha * (image - blocky)


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
    if size is None or size % r or not is_power_of_two(size // r):
        raise ValueError(
            f"complete: the generator is at {r}x{r}; images must be {r}x{r} or a power-of-two "
            f"multiple of it, got {size}x{ops.convert_to_tensor(image).shape[2]}"
        )
    _, mask, observed = observe(image, mask, size // r)
    out = generator({"image": observed, "mask": mask, "attributes": attributes}, training=training)
    return out["image"], out["composited"]
