"""IcGAN: Invertible Conditional GANs for image editing (Perarnau et al., NIPS 2016 Workshop on Adversarial Training).

A conditional GAN G(z, y) plus two encoders that invert it, so a real face can be edited:
  z = E_z(x)  [N, z_dim]        y = E_y(x)  [N, K] logits        x_edit = G(z, y_new)  [N, S, S, 3] in [-1, 1]
Images are [-1, 1], attributes {0, 1} (float), z ~ N(0, I).

Networks (S = data.image_size, a power of two >= 16; widths for S = 64 and the paper's defaults):
  G({"z", "attributes"}) -> image: z ++ y projected from 1x1 to 4x4 x g_filters (4x4 transposed conv), then 4x4
    stride-2 transposed convs halving the width (256-128-64) with BN + ReLU, the last to 3 channels + tanh.
  D({"image", "attributes"}) -> [N, 1] logit: conv 4x4 s2 d_filters + LeakyReLU(0.2) (no BN), y tiled spatially and
    concatenated, convs 4x4 s2 doubling the width (128-256-512) + BN + LeakyReLU down to 4x4, then a 4x4 valid conv
    to one logit.
  E_z(image) -> [N, z_dim], E_y(image) -> [N, K] logits ("IND" configuration: independent encoders): conv 5x5 s2
    encoder_filters x (1, 2, 4, 8) + BN + ReLU, flatten, FC (ez_fc / ey_fc) + BN + ReLU, FC (no activation).

Training runs in phases (one command; `train.phase` picks "all" | "cgan" | "encoders"):
  1. "cgan", steps [0, cgan_steps): per step one D update then one G update (non-saturating GAN loss), with
     y' = the batch's real labels as G's condition. D also sees real images with wrong labels (one random
     attribute flipped per example) as fake (GAN-CLS, Reed et al. 2016; the reference IcGAN code does too):
       L_D = softplus(-D(x, y)) + 0.5 * [softplus(D(G(z, y), y)) + softplus(D(x, y_wrong))]
       L_G = softplus(-D(G(z, y), y))
  2. "encoders", steps [cgan_steps, cgan_steps + encoder_steps): G and D frozen (called with training=False, so
     not even their BN statistics move). One update of both encoders per step:
       L_Ez = mean_j (z_j - E_z(G(z, y'))_j)^2     z ~ N(0, I), y' = the batch's labels rolled by one example
       L_Ey = sum_k BCE(y_k, sigmoid(E_y(x)_k))    on the real batch (the paper uses an L2 loss on E_y's output;
                                                    BCE on logits is the better-posed loss for binary labels)
The phase of a run is decided by the global step, so resuming continues in the right phase; every phase ends with
a checkpoint whose state.json names the phase.

Editing: `encode(x) -> (z, y_logits)`, `edit(x, y_new) = G(E_z(x), y_new)`,
`reconstruct(x) = G(E_z(x), sigmoid(E_y(x)) > 0.5)`.
"""

import dataclasses
import math

import keras
from keras import ops

from tf_faceedit import registry
from tf_faceedit.backend import native
from tf_faceedit.config import DataConfig, ExperimentConfig, TrainConfig, check, check_choice, check_range
from tf_faceedit.errors import TrainingError
from tf_faceedit.layers import ConvNormAct, TileAttributes, residual
from tf_faceedit.layers.conditioning import flip_attribute, flip_one_attribute
from tf_faceedit.losses import attribute_bce_loss, get_adversarial_loss, l2_loss
from tf_faceedit.training import optimizers
from tf_faceedit.training.gan_trainer import GANTrainer, Phase, Update

PHASES = ("all", "cgan", "encoders")

# ---------------------------------------------------------------------------------------------------------------
# Config


@dataclasses.dataclass
class IcGANModelConfig(residual.ResidualEditOptions):
    """Network widths (paper values at 64x64).

    z_dim: latent size; g_filters: G's 4x4 projection width (halved at each upsampling: 512-256-128-64);
    d_filters: D's first conv (doubled at each downsampling: 64-128-256-512); encoder_filters: the encoders' first
    conv (32-64-128-256); ez_fc / ey_fc: the hidden fully connected width of E_z / E_y.
    residual_edit (inference, beyond the paper; default off = the paper's G(E_z(x), y')): return
    x + G(E_z(x), y') - G(E_z(x), y_src) with y_src = E_y(x) > 0.5, the input plus the change the new attributes
    make, so the face is not replaced by G's reconstruction of it (which keeps pose and colours, not the person).
    residual_gain g scales that change: x + g (G(E_z(x), y') - G(E_z(x), y_src)); residual_highpass_sigma and
    residual_highpass remove the change's low-frequency part as Fader's do (`tf_faceedit.layers.residual`).
    refine_steps (inference, beyond the paper; 0 = off): before the edit, refine E_z(x) per image by that many Adam
    steps (learning rate refine_lr) on the mean absolute error |G(z, y_src) - x|: the well-known inversion step, so
    that G's reconstruction (and with it the edit) is nearer the face. Costs refine_steps forward and backward
    passes of G per edit; the TFLite export cannot carry it (gradients), the SavedModel export can.
    """

    z_dim: int = 100
    g_filters: int = 512
    d_filters: int = 64
    encoder_filters: int = 32
    ez_fc: int = 4096
    ey_fc: int = 512
    refine_steps: int = 0
    refine_lr: float = 0.05

    # fields that change only what inference computes: settable on a trained model (`--option model.FIELD=VALUE`)
    INFERENCE_OPTIONS = residual.ResidualEditOptions.RESIDUAL_OPTIONS + ("refine_steps", "refine_lr")

    def validate(self, prefix="model"):
        for name in ("z_dim", "g_filters", "d_filters", "encoder_filters", "ez_fc", "ey_fc"):
            check_range(getattr(self, name), f"{prefix}.{name}", 1)
        residual.validate_options(self, prefix)
        check_range(self.refine_steps, f"{prefix}.refine_steps", 0)
        check_range(self.refine_lr, f"{prefix}.refine_lr", 0.0, low_inclusive=False)


@dataclasses.dataclass
class IcGANLossConfig:
    """adversarial: the cGAN loss (paper: "gan", non-saturating); lambda_wrong: weight of the real-image /
    wrong-label term in D's fake half (0.5 = mean of the two fake terms; 0 turns it off)."""

    adversarial: str = "gan"
    lambda_wrong: float = 0.5

    def validate(self, prefix="loss"):
        check_choice(self.adversarial, f"{prefix}.adversarial", ["gan", "lsgan", "hinge"])
        check_range(self.lambda_wrong, f"{prefix}.lambda_wrong", 0.0, 1.0)


@dataclasses.dataclass
class IcGANTrainConfig(TrainConfig):
    """`TrainConfig` plus IcGAN's training phases (`--set train.phase=cgan`).

    phase: "all" (cGAN then encoders, one command), "cgan" (stop after the cGAN phase), "encoders" (only the
      encoder phase; the model_dir must hold a cGAN trained to step >= cgan_steps).
    cgan_steps: steps of the cGAN phase [0, cgan_steps); encoder_steps: steps of the encoder phase
      [cgan_steps, cgan_steps + encoder_steps). `train.steps` is where training stops: at most
      cgan_steps + encoder_steps (the presets set it equal); lower it to stop early, raise it to go on.
    e_lr: Adam learning rate of the encoders (betas from `train`).
    """

    phase: str = "all"
    cgan_steps: int = 40000
    encoder_steps: int = 20000
    e_lr: float = 2e-4

    def validate(self, prefix="train"):
        super().validate(prefix)
        check_choice(self.phase, f"{prefix}.phase", list(PHASES))
        check_range(self.cgan_steps, f"{prefix}.cgan_steps", 1)
        check_range(self.encoder_steps, f"{prefix}.encoder_steps", 1)
        check_range(self.e_lr, f"{prefix}.e_lr", 0.0, low_inclusive=False)


@dataclasses.dataclass
class IcGANConfig(ExperimentConfig):
    method: str = "icgan"
    data: DataConfig = dataclasses.field(
        default_factory=lambda: DataConfig(image_size=64, attributes=["Eyeglasses", "Smiling", "Male", "Blond_Hair"])
    )
    model: IcGANModelConfig = dataclasses.field(default_factory=IcGANModelConfig)
    loss: IcGANLossConfig = dataclasses.field(default_factory=IcGANLossConfig)
    train: IcGANTrainConfig = dataclasses.field(default_factory=lambda: IcGANTrainConfig(steps=60000, batch_size=64))

    def validate(self):
        super().validate()
        size = self.data.image_size
        check(
            size >= 16 and size & (size - 1) == 0,
            "data.image_size",
            f"must be a power of two >= 16 for IcGAN, got {size}",
        )
        check(self.data.mask.kind == "none", "data.mask.kind", "must be none for IcGAN (it uses no masks)")
        total = self.train.cgan_steps + self.train.encoder_steps
        check(
            self.train.steps <= total,
            "train.steps",
            f"must be <= train.cgan_steps + train.encoder_steps = {total}, got {self.train.steps}",
        )
        if self.train.phase == "encoders":
            check(
                self.train.steps > self.train.cgan_steps,
                "train.steps",
                f"must be > train.cgan_steps ({self.train.cgan_steps}) with train.phase=encoders, "
                f"got {self.train.steps}",
            )
        return self


# ---------------------------------------------------------------------------------------------------------------
# Networks


def _num_doublings(size):
    return int(math.log2(size)) - 2  # 4x4 -> size


def _dense(units, name):
    return keras.layers.Dense(units, kernel_initializer=keras.initializers.RandomNormal(stddev=0.02), name=name)


def build_generator(config):
    """G({"z": [N, z_dim], "attributes": [N, K]}) -> [N, S, S, 3] in [-1, 1] (functional keras.Model)."""
    m, size, k = config.model, config.data.image_size, len(config.data.attributes)
    z = keras.Input((m.z_dim,), name="z")
    attributes = keras.Input((k,), name="attributes")
    x = keras.layers.Concatenate(name="g_concat")([z, attributes])
    x = keras.layers.Reshape((1, 1, m.z_dim + k), name="g_reshape")(x)
    x = ConvNormAct(m.g_filters, 4, norm="batch", activation="relu", transpose=True, padding="valid", name="g_project")(
        x
    )  # 1x1 -> 4x4
    n = _num_doublings(size)
    for i in range(1, n):
        x = ConvNormAct(
            max(m.g_filters // 2**i, 1), 4, strides=2, norm="batch", activation="relu", transpose=True, name=f"g_up{i}"
        )(x)
    image = ConvNormAct(3, 4, strides=2, norm="none", activation="tanh", transpose=True, name="g_out")(x)
    return keras.Model({"z": z, "attributes": attributes}, image, name="icgan_generator")


def build_discriminator(config):
    """D({"image": [N, S, S, 3], "attributes": [N, K]}) -> [N, 1] real/fake logit (functional keras.Model)."""
    m, size, k = config.model, config.data.image_size, len(config.data.attributes)
    image = keras.Input((size, size, 3), name="image")
    attributes = keras.Input((k,), name="attributes")
    x = ConvNormAct(m.d_filters, 4, strides=2, norm="none", activation="lrelu", name="d_conv1")(image)
    x = TileAttributes(name="d_tile")([x, attributes])
    for i in range(1, _num_doublings(size)):  # size/2 -> 4
        x = ConvNormAct(m.d_filters * 2**i, 4, strides=2, norm="batch", activation="lrelu", name=f"d_conv{i + 1}")(x)
    x = ConvNormAct(1, 4, norm="none", activation=None, padding="valid", name="d_out")(x)  # 4x4 -> 1x1
    logit = keras.layers.Reshape((1,), name="d_logit")(x)
    return keras.Model({"image": image, "attributes": attributes}, logit, name="icgan_discriminator")


def build_encoder(config, kind):
    """E_z (kind "z": [N, S, S, 3] -> [N, z_dim]) or E_y (kind "y": -> [N, K] logits), IND configuration."""
    m, size = config.model, config.data.image_size
    outputs, hidden = (m.z_dim, m.ez_fc) if kind == "z" else (len(config.data.attributes), m.ey_fc)
    prefix = f"e{kind}"
    image = keras.Input((size, size, 3), name="image")
    x = image
    for i in range(4):
        x = ConvNormAct(
            m.encoder_filters * 2**i, 5, strides=2, norm="batch", activation="relu", name=f"{prefix}_conv{i + 1}"
        )(x)
    x = keras.layers.Flatten(name=f"{prefix}_flatten")(x)
    x = _dense(hidden, f"{prefix}_fc")(x)
    x = keras.layers.BatchNormalization(name=f"{prefix}_fc_bn")(x)
    x = keras.layers.ReLU(name=f"{prefix}_fc_relu")(x)
    out = _dense(outputs, f"{prefix}_out")(x)
    return keras.Model(image, out, name=f"icgan_encoder_{kind}")


# ---------------------------------------------------------------------------------------------------------------
# Trainer


class IcGAN(GANTrainer):
    """IcGAN trainer: a cGAN phase (D then G each step), then an encoder phase (E_z and E_y, G and D frozen).

    Args:
        config: `IcGANConfig`.
    """

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.generator = build_generator(config)
        self.discriminator = build_discriminator(config)
        self.encoder_z = build_encoder(config, "z")
        self.encoder_y = build_encoder(config, "y")
        self.g_adv, self.d_adv = get_adversarial_loss(config.loss.adversarial)
        self.set_phase(self.phases()[0])

    @property
    def networks(self):
        return {
            "generator": self.generator,
            "discriminator": self.discriminator,
            "encoder_z": self.encoder_z,
            "encoder_y": self.encoder_y,
        }

    # -- phases -------------------------------------------------------------------------------------------------
    def schedule_phases(self):
        """Both phases of the schedule, whatever `train.phase` says."""
        s = self.config.train
        return [Phase("cgan", 0, s.cgan_steps), Phase("encoders", s.cgan_steps, s.cgan_steps + s.encoder_steps)]

    def phases(self):
        """The phases this run trains: those picked by `train.phase`, cut at `train.steps`."""
        cgan, encoders = self.schedule_phases()
        picked = {"all": [cgan, encoders], "cgan": [cgan], "encoders": [encoders]}[self.config.train.phase]
        steps = self.config.train.steps
        phases = [dataclasses.replace(p, end_step=min(p.end_step, steps)) for p in picked if p.start_step < steps]
        return phases or [dataclasses.replace(picked[0], end_step=max(steps, picked[0].start_step))]

    def _phase_updates(self, name):
        if name == "cgan":
            return [
                Update("d", "d_optimizer", ["discriminator"], self.discriminator_losses, "d_loss"),
                Update("g", "g_optimizer", ["generator"], self.generator_losses, "g_loss"),
            ]
        return [Update("e", "e_optimizer", ["encoder_z", "encoder_y"], self.encoder_losses, "e_loss")]

    def updates(self):
        return self._phase_updates(self.phase.name)

    def all_updates(self):
        return self._phase_updates("cgan") + self._phase_updates("encoders")

    def make_optimizers(self):
        t = self.config.train
        return {
            **super().make_optimizers(),
            "e_optimizer": optimizers.Adam(
                self.config.train.e_lr, beta_1=t.beta_1, beta_2=t.beta_2, name="e_optimizer"
            ),
        }

    def make_train_function(self, force=False):
        # the encoder phase inverts a trained generator: refuse to start it on an untrained one
        step = int(ops.convert_to_numpy(self.step))
        if self.phase.name == "encoders" and step < self.config.train.cgan_steps:
            raise TrainingError(
                f"--set train.phase=encoders needs a cGAN trained to step >= train.cgan_steps "
                f"({self.config.train.cgan_steps}) in --model_dir, but the run is at step {step}; train the cGAN "
                "first (train.phase=cgan or all)"
            )
        return super().make_train_function(force)

    # -- batch and losses ---------------------------------------------------------------------------------------
    def prepare_batch(self, batch, seed):
        attributes = batch["attributes"]
        n = ops.shape(attributes)[0]
        return {
            **batch,
            "z": keras.random.normal((n, self.config.model.z_dim), seed=seed),
            "wrong_attributes": flip_one_attribute(attributes, seed),
            "shuffled_attributes": ops.roll(attributes, 1, axis=0),
        }

    def generate(self, z, attributes, training=False):
        """G(z, y): [N, z_dim], [N, K] -> [N, S, S, 3] in [-1, 1]."""
        z = ops.convert_to_tensor(z, "float32")
        return self.generator({"z": z, "attributes": ops.cast(attributes, z.dtype)}, training=training)

    def discriminate(self, images, attributes, training=False):
        images = ops.convert_to_tensor(images, "float32")
        return self.discriminator(
            {"image": images, "attributes": ops.cast(attributes, images.dtype)}, training=training
        )

    def discriminator_losses(self, batch, seed):
        real, y = batch["image"], batch["attributes"]
        fake = ops.stop_gradient(self.generate(batch["z"], y, training=True))
        real_logits = self.discriminate(real, y, training=True)
        fake_logits = self.discriminate(fake, y, training=True)
        losses = {"d_adv": self.d_adv(real_logits, fake_logits)}
        w = self.config.loss.lambda_wrong
        if w > 0:
            wrong_logits = self.discriminate(real, batch["wrong_attributes"], training=True)
            losses["d_wrong"] = self.d_adv(real_logits, wrong_logits)
            losses["d_loss"] = (1.0 - w) * losses["d_adv"] + w * losses["d_wrong"]
        else:
            losses["d_loss"] = losses["d_adv"]
        return losses

    def generator_losses(self, batch, seed):
        y = batch["attributes"]
        fake = self.generate(batch["z"], y, training=True)
        g_adv = self.g_adv(self.discriminate(fake, y, training=True))
        return {"g_adv": g_adv, "g_loss": g_adv}

    def encoder_losses(self, batch, seed):
        # 1. E_z on generated pairs (x' = G(z, y'), z) with G frozen (inference mode: BN statistics untouched)
        z = batch["z"]
        fake = ops.stop_gradient(self.generate(z, batch["shuffled_attributes"], training=False))
        e_z = ez_loss(z, self.encoder_z(fake, training=True))
        # 2. E_y on real pairs (x, y)
        e_y = attribute_bce_loss(batch["attributes"], self.encoder_y(batch["image"], training=True))
        return {"e_z": e_z, "e_y": e_y, "e_loss": e_z + e_y}

    # -- editing API --------------------------------------------------------------------------------------------
    def encode(self, images):
        """[N, S, S, 3] in [-1, 1] -> (z [N, z_dim], attribute logits [N, K])."""
        return self.encoder_z(images, training=False), self.encoder_y(images, training=False)

    def predict_attributes(self, images):
        """E_y's binary attribute prediction {0, 1}, [N, K] float32."""
        return ops.cast(self.encoder_y(images, training=False) > 0.0, "float32")

    def edit(self, images, attributes):
        """G(E_z(x), y_new): the faces `images` with attributes `attributes` ([N, K], {0, 1} or in between)."""
        return self.generate(self.encoder_z(images, training=False), attributes)

    def reconstruct(self, images):
        """G(E_z(x), sigmoid(E_y(x)) > 0.5)."""
        return self.edit(images, self.predict_attributes(images))

    def sample_rows(self, batch):
        """cGAN phase: G(z, y) for a fixed z with the batch's labels, then each attribute flipped.
        Encoder phase: input, reconstruction, then one row per attribute flipped (from E_y's prediction)."""
        images, attributes = batch["image"], batch["attributes"]
        names = self.config.data.attributes
        if self.phase.name == "cgan":
            z = keras.random.normal((ops.shape(images)[0], self.config.model.z_dim), seed=1234)
            rows = [("G(z, y)", self.generate(z, attributes))]
            rows += [
                (f"{name} flipped", self.generate(z, flip_attribute(attributes, i))) for i, name in enumerate(names)
            ]
            return rows
        predicted = self.predict_attributes(images)
        rows = [("input", images), ("reconstruction", self.edit(images, predicted))]
        rows += [(f"{name} flipped", self.edit(images, flip_attribute(predicted, i))) for i, name in enumerate(names)]
        return rows

    # -- inference contract (GANTrainer.infer) --------------------------------------------------------------------
    def refine_latent(self, images, z, attributes, steps=None, lr=None):
        """z after `steps` Adam steps (rate `lr`; default `model.refine_steps`, `model.refine_lr`) on each image's
        mean |G(z, attributes) - x|, starting from `z` (E_z(x)). Each image's z moves on its own loss only."""
        steps = self.config.model.refine_steps if steps is None else int(steps)
        lr = self.config.model.refine_lr if lr is None else float(lr)
        images = ops.cast(images, "float32")
        attributes = ops.cast(attributes, "float32")
        z = ops.cast(z, "float32")
        m, v = ops.zeros_like(z), ops.zeros_like(z)
        beta_1, beta_2 = 0.9, 0.999
        for t in range(1, steps + 1):
            grad = native.input_gradient(
                lambda zz: ops.mean(ops.abs(ops.cast(self.generate(zz, attributes), "float32") - images), (1, 2, 3)),
                z,
            )
            m = beta_1 * m + (1.0 - beta_1) * grad
            v = beta_2 * v + (1.0 - beta_2) * grad * grad
            z = z - lr * (m / (1.0 - beta_1**t)) / (ops.sqrt(v / (1.0 - beta_2**t)) + 1e-8)
        return z

    def infer(self, inputs):
        """{"image", "attributes" (target)} -> {"image": G(E_z(x), y), "latent": E_z(x)}; with
        `model.residual_edit` the image is x + g (G(z, y) - G(z, E_y(x) > 0.5)); with `model.refine_steps`, z is
        E_z(x) refined to reconstruct x first (`refine_latent`)."""
        images = inputs["image"]
        z = self.encoder_z(images, training=False)
        cfg = self.config.model
        if cfg.refine_steps or cfg.residual_edit:
            source = self.predict_attributes(images)
        if cfg.refine_steps:
            z = self.refine_latent(images, z, source)
        image = self.generate(z, inputs["attributes"])
        if cfg.residual_edit:
            image = residual.residual_from_config(images, image, self.generate(z, source), cfg)
        return {"image": image, "latent": z}


def ez_loss(z, z_pred):
    """E_z's latent reconstruction loss: mean over the z dimensions of (z - E_z(x'))^2, per example [N]."""
    return l2_loss(z, z_pred)


registry.register(
    "icgan",
    IcGANConfig,
    IcGAN,
    "Invertible conditional GAN: cGAN + encoders for attribute editing (Perarnau et al., 2016)",
    # E_y predicts the attributes; E_z and E_y invert a photo for G
    registry.Capabilities(
        task="edit", predicts_attributes=True, inference_networks=("generator", "encoder_z", "encoder_y")
    ),
)
