"""Fader Networks: Manipulating Images by Sliding Attributes (Lample et al., NeurIPS 2017).

An encoder-decoder learns an attribute-invariant latent code; the attributes are given back to the decoder, so at
test time they can be slid continuously ("faders").

Networks (S = data.image_size, a power of two; n = number of attributes; l = model.latent_size, 2 in the paper;
depth L = log2(S / l), so the latent is l x l):
  E(x)        encoder      [N, S, S, 3] in [-1, 1] -> z [N, l, l, C_L]. L convs 4x4 stride 2 with
                           min(encoder_filters * 2^i, max_filters) filters (paper at 256: C16-C32-C64-C128-C256-
                           C512-C512), BatchNorm (not on the first) and LeakyReLU(0.2).
  D(z, a)     decoder      (z, a [N, n]) -> [N, S, S, 3] in [-1, 1]. Before EVERY one of its L transposed convs
                           4x4 stride 2 the attributes are appended as 2n constant maps, the one-hot [1 - a, a] of
                           each attribute. The convs mirror the encoder's widths (C_{L-1}, ..., C_1), BatchNorm +
                           ReLU; the last has 3 filters, no norm, tanh.
  P(z)        latent discriminator: z -> [N, n] logits (one per binary attribute). Conv C(max_filters) 4x4 s2
                           (l x l -> l/2 x l/2; 2x2 -> 1x1 in the paper) + BatchNorm + LeakyReLU(0.2), FC
                           lat_dis_fc + LeakyReLU(0.2), dropout
                           lat_dis_dropout, FC n.
Attributes are {0, 1} in training; at inference any real value works (a slider; beyond [0, 1] exaggerates).

Losses, per example (the trainer reduces them once over the global batch), y the attributes in {0, 1}:
  latent discriminator:  BCE(y_s, P(E(x)))  with optional label smoothing s = loss.label_smoothing:
                         y_s = y * (1 - s) + s / 2 (keras' BinaryCrossentropy `label_smoothing` convention); BCE is
                         summed over the n attributes. Default s = 0, as in the official code, which smooths
                         only the patch discriminator's labels (not built here).
  autoencoder (E and D): mean_pixels (D(E(x), y) - x)^2 + lambda_E(step) * BCE(1 - y, P(E(x)))
                         (E learns to make P predict the flipped attributes; no smoothing here).
  lambda_E(step) = lambda_lat_dis * min(step / lambda_schedule_steps, 1)  (step = 0-based index of the running
                   training step, read in-graph from the trainer's step variable, so a resumed run continues the
                   schedule exactly; lambda_schedule_steps = 0 means constant lambda_lat_dis). Logged as `lambda_e`.
One training step = one latent-discriminator update, then one autoencoder update, on the same batch. As in the
official code (`ae.eval()` in `lat_dis_step`, `lat_dis.eval()` in `autoencoder_step`), the player that is not
updated runs in inference mode: E uses its BatchNorm moving statistics in the discriminator update, and P runs
without dropout and without updating its BatchNorm statistics in the autoencoder update.
Adam 2e-4 (0.5, 0.999) for both players, the global gradient norm of each player clipped to loss.clip_grad_norm
(keras `global_clipnorm`, like torch's `clip_grad_norm` over all parameters; 0 disables). Paper: batch 32, lambda 1e-4
over 500k iterations, horizontal flips.

Networks saved: `autoencoder` ({"image", "attributes"} -> {"image": D(E(x), a), "latent": E(x)}; it contains the
`fader_encoder` and `fader_decoder` models) and `lat_dis`.
"""

import dataclasses
import itertools
import math

import keras
from keras import ops

from tf_faceedit import registry
from tf_faceedit.config import DataConfig, ExperimentConfig, TrainConfig, check, check_range
from tf_faceedit.layers import ConvNormAct, TileAttributes, residual
from tf_faceedit.layers.conditioning import flip_attribute
from tf_faceedit.layers.progressive import is_power_of_two
from tf_faceedit.losses import attribute_bce_loss, l2_loss
from tf_faceedit.training import optimizers
from tf_faceedit.training.gan_trainer import GANTrainer, Update

# model.residual_edit decodes every {0, 1} corner of the attributes to find the input's own: 2^K decodes.
MAX_RESIDUAL_ATTRIBUTES = 4

# Slider values of the sample grid rows (beyond 1 shows the extrapolation the paper demonstrates).
SAMPLE_ALPHAS = (0.0, 0.5, 1.0, 1.5)

# ---------------------------------------------------------------------------------------------------------------
# Config


@dataclasses.dataclass
class FaderModelConfig(residual.ResidualEditOptions):
    """Widths. encoder_filters: first encoder conv (paper 16), doubling per layer up to max_filters (paper 512);
    lat_dis_fc: hidden units of the latent discriminator's FC layer; lat_dis_dropout: its dropout rate.
    residual_edit (inference, beyond the paper; default off = the paper's D(E(x), a)): return x + D(E(x), a) -
    D(E(x), a_src), the input plus the change the slider makes, so the decoder's blur (every pixel of D(E(x), a)
    comes from the small latent code) does not replace the face. a_src, the input's own attributes, is the {0, 1} vector
    (one of the 2^K corners, K <= 4) whose decode reconstructs the input best (L1). residual_gain g scales the
    change: x + g (D(E(x), a) - D(E(x), a_src)) (the decoded change is a blurred one, weaker on a sharp face).
    residual_highpass_sigma (0 = off): remove the change's low-frequency part, a Gaussian blur of that many pixels
    at the model's size, from its chroma (residual_highpass "chroma") or every channel ("all"): the decoder's
    smiling faces are warmer on average, which tints a whole face (`tf_faceedit.layers.residual`).
    latent_size (beyond the paper, which always encodes to 2x2): the latent's side l, a power of two below the image
    size; 4 stops the encoder one layer earlier, four times the code for the decoder to draw a sharper face from
    (and four times the places the latent discriminator must find the attributes in)."""

    encoder_filters: int = 16
    max_filters: int = 512
    lat_dis_fc: int = 512
    lat_dis_dropout: float = 0.3
    latent_size: int = 2

    # fields that change only what inference computes: settable on a trained model (`--option model.FIELD=VALUE`)
    INFERENCE_OPTIONS = residual.ResidualEditOptions.RESIDUAL_OPTIONS

    def validate(self, prefix="model"):
        for name in ("encoder_filters", "max_filters", "lat_dis_fc"):
            check_range(getattr(self, name), f"{prefix}.{name}", 1)
        check_range(self.lat_dis_dropout, f"{prefix}.lat_dis_dropout", 0.0, 1.0)
        check(
            self.latent_size >= 2 and is_power_of_two(self.latent_size),
            f"{prefix}.latent_size",
            f"must be a power of two >= 2, got {self.latent_size}",
        )
        residual.validate_options(self, prefix)
        check(self.lat_dis_dropout < 1.0, f"{prefix}.lat_dis_dropout", f"must be < 1, got {self.lat_dis_dropout}")


@dataclasses.dataclass
class FaderLossConfig:
    """lambda_lat_dis: final weight lambda_E of the adversarial term; lambda_schedule_steps: steps of its linear
    ramp from 0 (0 = constant); label_smoothing: s of the discriminator's targets y(1 - s) + s/2;
    clip_grad_norm: global gradient-norm clip of each optimizer (0 = off)."""

    lambda_lat_dis: float = 1e-4
    lambda_schedule_steps: int = 500000
    label_smoothing: float = 0.0
    clip_grad_norm: float = 5.0

    def validate(self, prefix="loss"):
        check_range(self.lambda_lat_dis, f"{prefix}.lambda_lat_dis", 0.0)
        check_range(self.lambda_schedule_steps, f"{prefix}.lambda_schedule_steps", 0)
        check_range(self.label_smoothing, f"{prefix}.label_smoothing", 0.0, 1.0)
        check_range(self.clip_grad_norm, f"{prefix}.clip_grad_norm", 0.0)


@dataclasses.dataclass
class FaderConfig(ExperimentConfig):
    method: str = "fader"
    data: DataConfig = dataclasses.field(default_factory=lambda: DataConfig(image_size=256, attributes=["Smiling"]))
    model: FaderModelConfig = dataclasses.field(default_factory=FaderModelConfig)
    loss: FaderLossConfig = dataclasses.field(default_factory=FaderLossConfig)
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(batch_size=32, n_critic=1, g_lr=2e-4, d_lr=2e-4, beta_1=0.5, beta_2=0.999)
    )

    def validate(self):
        super().validate()
        check(self.data.image_size >= 8, "data.image_size", f"must be >= 8 for Fader, got {self.data.image_size}")
        check(
            self.model.latent_size < self.data.image_size,
            "model.latent_size",
            f"must be below data.image_size ({self.data.image_size}), got {self.model.latent_size}",
        )
        check(self.data.mask.kind == "none", "data.mask.kind", "must be none for Fader (it uses no masks)")
        check(
            not self.model.residual_edit or len(self.data.attributes) <= MAX_RESIDUAL_ATTRIBUTES,
            "model.residual_edit",
            f"needs at most {MAX_RESIDUAL_ATTRIBUTES} attributes (it decodes all 2^K {{0, 1}} corners), "
            f"got {len(self.data.attributes)}",
        )
        check(
            self.train.n_critic == 1,
            "train.n_critic",
            f"must be 1 for Fader (one discriminator, then one autoencoder update per step), got {self.train.n_critic}",
        )
        return self


# ---------------------------------------------------------------------------------------------------------------
# Networks


@keras.saving.register_keras_serializable(package="tf_faceedit")
class AttributeOneHot(keras.layers.Layer):
    """[N, n] attributes a -> [N, 2n] = [1 - a_1, a_1, 1 - a_2, a_2, ...] (Fader Networks' attribute code).

    Real-valued a is kept as is (a slider): a = 0.5 gives [0.5, 0.5], a = 2 gives [-1, 2].

    Args:
      **kwargs: `keras.layers.Layer` arguments (name, dtype, ...).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def call(self, attributes):
        attributes = ops.cast(attributes, self.compute_dtype)
        pairs = ops.stack([1.0 - attributes, attributes], axis=-1)  # [N, n, 2]
        return ops.reshape(pairs, (-1, 2 * attributes.shape[-1]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * input_shape[-1])


def num_layers(image_size, latent_size=2):
    """Encoder/decoder depth: log2(size / latent_size) stride-2 layers (7 at 256 with the paper's 2x2 latent)."""
    return int(math.log2(image_size)) - int(math.log2(latent_size))


def encoder_widths(config):
    m = config.model
    depth = num_layers(config.data.image_size, m.latent_size)
    return [min(m.encoder_filters * 2**i, m.max_filters) for i in range(depth)]


def latent_shape(config):
    """(l, l, C_L): the shape of one latent code."""
    return (config.model.latent_size, config.model.latent_size, encoder_widths(config)[-1])


def build_encoder(config):
    """E: [N, S, S, 3] -> latent [N, l, l, C_L]."""
    size = config.data.image_size
    image = keras.Input((size, size, 3), name="image")
    x = image
    for i, filters in enumerate(encoder_widths(config)):
        x = ConvNormAct(
            filters,
            4,
            strides=2,
            norm="none" if i == 0 else "batch",
            activation="lrelu",
            negative_slope=0.2,
            name=f"enc_conv{i + 1}",
        )(x)
    return keras.Model(image, x, name="fader_encoder")


def build_decoder(config):
    """D: {"latent": [N, l, l, C_L], "attributes": [N, n]} -> [N, S, S, 3] in [-1, 1]."""
    widths, n = encoder_widths(config), len(config.data.attributes)
    latent = keras.Input(latent_shape(config), name="latent")
    attributes = keras.Input((n,), name="attributes")
    code = AttributeOneHot(name="dec_attr_onehot")(attributes)
    outputs = list(reversed(widths[:-1])) + [3]
    x = latent
    for i, filters in enumerate(outputs):
        last = i == len(outputs) - 1
        x = TileAttributes(name=f"dec_tile{i + 1}")([x, code])
        x = ConvNormAct(
            filters,
            4,
            strides=2,
            transpose=True,
            norm="none" if last else "batch",
            activation="tanh" if last else "relu",
            name=f"dec_conv{i + 1}",
        )(x)
    return keras.Model({"latent": latent, "attributes": attributes}, x, name="fader_decoder")


def build_autoencoder(config):
    """{"image", "attributes"} -> {"image": D(E(x), a), "latent": E(x)}; `.layers` holds the two sub-models."""
    size, n = config.data.image_size, len(config.data.attributes)
    image = keras.Input((size, size, 3), name="image")
    attributes = keras.Input((n,), name="attributes")
    encoder, decoder = build_encoder(config), build_decoder(config)
    latent = encoder(image)
    output = decoder({"latent": latent, "attributes": attributes})
    return keras.Model(
        {"image": image, "attributes": attributes}, {"image": output, "latent": latent}, name="fader_autoencoder"
    )


def build_latent_discriminator(config):
    """P: latent [N, l, l, C_L] -> [N, n] attribute logits."""
    m, n = config.model, len(config.data.attributes)
    latent = keras.Input(latent_shape(config), name="latent")
    x = ConvNormAct(m.max_filters, 4, strides=2, norm="batch", activation="lrelu", negative_slope=0.2, name="dis_conv")(
        latent
    )  # l x l -> l/2 x l/2 (2x2 -> 1x1 in the paper)
    x = keras.layers.Flatten(name="dis_flat")(x)
    x = keras.layers.Dense(m.lat_dis_fc, name="dis_fc1")(x)
    x = keras.layers.LeakyReLU(negative_slope=0.2, name="dis_act")(x)
    x = keras.layers.Dropout(m.lat_dis_dropout, seed=config.train.seed, name="dis_dropout")(x)
    logits = keras.layers.Dense(n, name="dis_fc2")(x)
    return keras.Model(latent, logits, name="fader_lat_dis")


# ---------------------------------------------------------------------------------------------------------------
# Losses (pure functions of logits/images)


def smooth_labels(labels, smoothing):
    """y * (1 - s) + s / 2: {0, 1} -> {s/2, 1 - s/2}."""
    return labels * (1.0 - smoothing) + 0.5 * smoothing


def latent_discriminator_loss(attributes, logits, smoothing):
    """Per-example BCE of the latent discriminator against smoothed true attributes, summed over attributes."""
    return attribute_bce_loss(smooth_labels(ops.cast(attributes, logits.dtype), smoothing), logits)


def latent_adversarial_loss(attributes, logits):
    """Per-example BCE of the encoder's objective: the discriminator should predict the FLIPPED attributes."""
    return attribute_bce_loss(1.0 - ops.cast(attributes, logits.dtype), logits)


def lambda_schedule(step, final, ramp_steps):
    """lambda_E(step) = final * min(step / ramp_steps, 1) (final when ramp_steps is 0); step may be a tensor."""
    step = ops.cast(step, "float32")
    if ramp_steps <= 0:
        return ops.cast(final, "float32") + 0.0 * step
    return final * ops.minimum(step / float(ramp_steps), 1.0)


# ---------------------------------------------------------------------------------------------------------------
# Trainer


class Fader(GANTrainer):
    """Fader Networks trainer: autoencoder vs. latent discriminator, with the lambda_E ramp.

    Args:
        config: `FaderConfig`.
    """

    # Sliders: 1.5 or 2 exaggerates an attribute, -1 inverts it further than 0 (the paper's extrapolations).
    attribute_range = (-1.0, 2.0)

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.autoencoder = build_autoencoder(config)
        self.encoder = self.autoencoder.get_layer("fader_encoder")
        self.decoder = self.autoencoder.get_layer("fader_decoder")
        self.lat_dis = build_latent_discriminator(config)

    @property
    def networks(self):
        return {"autoencoder": self.autoencoder, "lat_dis": self.lat_dis}

    def make_optimizers(self):
        """Adam for the autoencoder ("g_optimizer") and the latent discriminator ("d_optimizer"), both clipped."""
        t, clip = self.config.train, self.config.loss.clip_grad_norm or None
        return {
            "g_optimizer": optimizers.Adam(
                t.g_lr, beta_1=t.beta_1, beta_2=t.beta_2, global_clipnorm=clip, name="ae_optimizer"
            ),
            "d_optimizer": optimizers.Adam(
                t.d_lr, beta_1=t.beta_1, beta_2=t.beta_2, global_clipnorm=clip, name="lat_dis_optimizer"
            ),
        }

    def updates(self):
        return [
            # 1. latent discriminator on E(x) (encoder fixed), 2. autoencoder on the same batch
            Update("lat_dis", "d_optimizer", ["lat_dis"], self.discriminator_losses, "lat_dis_loss"),
            Update("ae", "g_optimizer", ["autoencoder"], self.autoencoder_losses, "ae_loss"),
        ]

    # -- inference API ----------------------------------------------------------------------------------------
    def encode(self, images, training=False):
        """[N, S, S, 3] in [-1, 1] -> latent [N, l, l, C]."""
        return self.encoder(images, training=training)

    def decode(self, latent, attributes, training=False):
        """(latent, attributes [N, n], any real values) -> images [N, S, S, 3] in [-1, 1]."""
        attributes = ops.cast(ops.convert_to_tensor(attributes), "float32")
        return self.decoder({"latent": latent, "attributes": attributes}, training=training)

    def interpolate(self, images, attribute_index, alphas, attributes=None):
        """Slides attribute `attribute_index` over `alphas` (any reals, e.g. np.linspace(1 - 2, 2, 5)).

        The other attributes keep their values in `attributes` ([N, n]; default 0). Returns [len(alphas), N, S, S, 3].
        """
        images = ops.convert_to_tensor(images)
        n_attr = len(self.config.data.attributes)
        if not 0 <= attribute_index < n_attr:
            raise ValueError(f"attribute_index must be in [0, {n_attr}), got {attribute_index}")
        if attributes is None:
            attributes = ops.zeros((ops.shape(images)[0], n_attr))
        attributes = ops.cast(ops.convert_to_tensor(attributes), "float32")
        latent = self.encode(images)
        hot = ops.one_hot(attribute_index, n_attr)[None, :]
        rows = [self.decode(latent, attributes * (1.0 - hot) + float(alpha) * hot) for alpha in alphas]
        return ops.stack(rows, axis=0)

    def swap(self, images, attributes, index=None):
        """Edits a batch to flipped attributes (all of them, or only `index`): D(E(x), 1 - y). For evaluation."""
        attributes = ops.cast(ops.convert_to_tensor(attributes), "float32")
        target = 1.0 - attributes if index is None else flip_attribute(attributes, index)
        return self.decode(self.encode(images), target)

    def source_attributes(self, images, latent):
        """[N, K] {0, 1}: for each image, the attribute corner whose decode D(E(x), c) is nearest to it (mean L1)."""
        n_attr = len(self.config.data.attributes)
        corners = [[float(bit) for bit in bits] for bits in itertools.product((0, 1), repeat=n_attr)]
        base = ops.zeros((ops.shape(images)[0], n_attr))
        errors = [
            ops.mean(
                ops.abs(ops.cast(self.decode(latent, base + ops.convert_to_tensor([c])), "float32") - images), (1, 2, 3)
            )
            for c in corners
        ]
        errors = ops.stack(errors, axis=1)  # [N, 2^K]
        # the nearest corner as a one-hot row (no argmin/take: Keras' TF argmin uses bitwise ops TFLite lacks)
        nearest = ops.cast(errors <= ops.min(errors, axis=1, keepdims=True), "float32")
        nearest = nearest / ops.sum(nearest, axis=1, keepdims=True)  # an exact tie averages its corners
        return ops.matmul(nearest, ops.convert_to_tensor(corners, "float32"))

    def residual(self, images, latent, edited):
        """x + g (edited - D(E(x), a_src)), clipped to [-1, 1] (`model.residual_edit`, g = `model.residual_gain`;
        `tf_faceedit.layers.residual`)."""
        images = ops.cast(images, "float32")
        own = self.decode(latent, self.source_attributes(images, latent))
        return residual.residual_from_config(images, edited, own, self.config.model)

    def lambda_e(self, step=None):
        """lambda_E at `step` (default: the trainer's current step), a float32 scalar tensor."""
        cfg = self.config.loss
        return lambda_schedule(self.step if step is None else step, cfg.lambda_lat_dis, cfg.lambda_schedule_steps)

    # -- losses -----------------------------------------------------------------------------------------------
    def discriminator_losses(self, batch, seed):
        images, attributes = batch["image"], batch["attributes"]
        latent = ops.stop_gradient(self.encoder(images, training=False))  # official: ae.eval()
        logits = self.lat_dis(latent, training=True)
        loss = latent_discriminator_loss(attributes, logits, self.config.loss.label_smoothing)
        correct = ops.cast(ops.equal(ops.cast(logits > 0, "float32"), ops.cast(attributes, "float32")), "float32")
        return {"lat_dis_loss": loss, "lat_dis_acc": ops.mean(correct, axis=-1)}

    def autoencoder_losses(self, batch, seed):
        images, attributes = batch["image"], batch["attributes"]
        out = self.autoencoder({"image": images, "attributes": attributes}, training=True)
        rec = l2_loss(images, out["image"])
        adv = latent_adversarial_loss(attributes, self.lat_dis(out["latent"], training=False))  # lat_dis.eval()
        lam = ops.cast(self.lambda_e(), rec.dtype)
        return {"ae_rec": rec, "ae_adv": adv, "lambda_e": ops.zeros_like(rec) + lam, "ae_loss": rec + lam * adv}

    def sample_rows(self, batch):
        """Rows: input, reconstruction, then per attribute one row per slider value in SAMPLE_ALPHAS."""
        images, attributes = batch["image"], ops.cast(batch["attributes"], "float32")
        latent = self.encode(images)
        rows = [("input", images), ("reconstruction", self.decode(latent, attributes))]
        for i, name in enumerate(self.config.data.attributes):
            grid = self.interpolate(images, i, SAMPLE_ALPHAS, attributes)
            rows += [(f"{name}={alpha:g}", grid[j]) for j, alpha in enumerate(SAMPLE_ALPHAS)]
        return rows

    # -- inference contract (GANTrainer.infer) --------------------------------------------------------------------
    def infer(self, inputs):
        """{"image", "attributes" (any real values: sliders)} -> {"image": D(E(x), a), "latent": E(x)}; with
        `model.residual_edit` the image is x + D(E(x), a) - D(E(x), a_src)."""
        attributes = ops.cast(inputs["attributes"], "float32")
        out = self.autoencoder({"image": inputs["image"], "attributes": attributes}, training=False)
        image = out["image"]
        if self.config.model.residual_edit:
            image = self.residual(inputs["image"], out["latent"], image)
        return {"image": image, "latent": out["latent"]}


registry.register(
    "fader",
    FaderConfig,
    Fader,
    "Fader Networks: sliding attributes (Lample et al., NeurIPS 2017)",
    registry.Capabilities(
        task="edit",
        attribute_controls="slider",
        attribute_range=Fader.attribute_range,
        inference_networks=("autoencoder",),
    ),
)
