"""AttentionGAN: unpaired image-to-image translation with attention-guided generators (Tang, Liu, Xu, Torr, Sebe,
"AttentionGAN: Unpaired Image-to-Image Translation using Attention-Guided Generative Adversarial Networks",
IEEE TNNLS 2021 / arXiv 1911.11897), schemes I and II.

Data (`UnpairedDataConfig`): batches {"image_a": x [N, S, S, 3], "image_b": y [N, S, S, 3]} in [-1, 1], x from domain
X (`domain_attribute == domain_a_value`), y from domain Y, unpaired.

Generators G: X -> Y ("generator_ab") and F: Y -> X ("generator_ba"), functional keras.Models, input image
[N, S, S, 3], outputs {"image": [N, S, S, 3] in [-1, 1], "attention": [N, S, S, n] in [0, 1], "content":
[N, S, S, 3m] in [-1, 1]}. Backbone: the CycleGAN ResNet generator (c7s1-f, two 3x3 stride-2 downs to 4f,
`num_residual_blocks` residual blocks, two 3x3 stride-2 ups, instance norm, reflection padding).
  scheme I  (n = 1, m = 1): one network, two heads on the last feature map:
      C = tanh(conv7(h)) [3 ch], A = sigmoid(conv7(h)) [1 ch],     G(x) = C * A + x * (1 - A)
  scheme II (n = model.num_masks, m = n - 1): shared encoder G_E, content decoder G_C and attention decoder G_A:
      C_1..C_{n-1} = tanh(conv7(G_C(G_E(x)))) [3(n-1) ch],
      A_1..A_n = softmax over the n channels of conv1(G_A(G_E(x))), A_n = A_b the background mask (last),
      G(x) = sum_f C_f * A_f + x * A_b
  The cycle applies the other generator in the same form: F(G(x)) = sum_f C'_f * A'_f + G(x) * A'_b.
  The foreground attention of a translation is A (scheme I) or 1 - A_b (scheme II).

Discriminators D_X ("discriminator_a"), D_Y ("discriminator_b"): 70x70 PatchGAN (C64 k4 s2 no norm - C128 - C256
k4 s2 IN - C512 k4 s1 IN - 1-channel k4 s1 map; LeakyReLU 0.2; "same" padding), input [N, S, S, 3], or 4 channels
With `model.attention_discriminator` the paper's attention-guided discriminators D_XA, D_YA
("discriminator_a_att", "discriminator_b_att", same PatchGAN on 4 channels: concat(image, foreground attention))
are ADDED to the vanilla ones: the paper's objective sums L_GAN(G, D_Y) + L_AGAN(G, D_YA) (and likewise for F); the
official code has neither. Our reading of what D_YA sees: a fake with the attention of its own translation, a real
image of the target domain with the attention mask of the current batch's translation into that domain.

Losses, per example (the trainer reduces them once over the global batch); x, y the batch, G(x) = fake y:
  G: lambda_adv * (adv_G(D_Y(G(x))) + adv_G(D_X(F(y))) [+ the same for D_YA, D_XA])
     + lambda_cycle * (|F(G(x)) - x|_1 + |G(F(y)) - y|_1)
     + lambda_identity * lambda_cycle * (|G(y) - y|_1 + |F(x) - x|_1)
     + lambda_tv * (TV(A_G(x)) + TV(A_F(y)))                      (all n attention masks; TV summed per example)
     + lambda_pixel * (|G(x) - x|_1 + |F(y) - y|_1)
  D: adv_D(D_Y(y), D_Y(pool_Y(G(x)))) + adv_D(D_X(x), D_X(pool_X(F(y)))) [+ the same for D_YA, D_XA]
|.|_1 is the mean absolute error per example; adv is LSGAN by default (0.5 (D - 1)^2 for G, 0.5 (D_real - 1)^2 +
0.5 D_fake^2 for D), with lambda_adv = 2 by default so that G's adversarial weight equals the official code's
MSE(D, 1). The pools (CycleGAN's image pool, 50 images) swap: once full, each new fake is, with probability 0.5,
exchanged for a stored one (returned to D, its slot taking the new fake), else passed through and not stored (with
the attention channel when D is attention-guided; the vanilla D sees the pooled image channels). One training step =
one update of both
generators, then one of both discriminators, on one batch. Adam 2e-4 (0.5, 0.999); the learning rate is constant
for the first `train.lr_decay_start` fraction of `train.steps`, then decays linearly to 0.

Inference (`infer`): {"image", "attributes": [N, 1]} -> per example G when the target value is
1 - domain_a_value, else F; returns "image", "attention" [N, S, S, n], "content" [N, S, S, 3m].
"""

import dataclasses

import keras
from keras import ops

from tf_faceedit import registry
from tf_faceedit.config import ExperimentConfig, TrainConfig, check, check_choice, check_range
from tf_faceedit.data import unpaired
from tf_faceedit.data.unpaired import UnpairedDataConfig
from tf_faceedit.images import foreground_attention
from tf_faceedit.layers import AttentionBlend, ConvNormAct, DownBlock, MultiMaskBlend, ResidualBlock, UpBlock
from tf_faceedit.losses import get_adversarial_loss, l1_loss, total_variation_loss
from tf_faceedit.training import optimizers
from tf_faceedit.training.gan_trainer import GANTrainer, Update
from tf_faceedit.training.image_pool import HistoryBuffer
from tf_faceedit.training.lr_schedules import ConstantThenLinearDecay

# ---------------------------------------------------------------------------------------------------------------
# Config


@dataclasses.dataclass
class AttentionGANModelConfig:
    """Networks.

    scheme: 1 (one network, content + one sigmoid attention mask) or 2 (shared encoder, content and attention
      decoders, n softmax masks); num_masks: n of scheme II (n - 1 foreground + 1 background; paper 10), ignored
      by scheme I; g_filters: first generator conv (CycleGAN 64); num_residual_blocks: 9 at 256^2, 6 at 128^2;
    d_filters: first PatchGAN conv (64); d_layers: stride-2 convs of the PatchGAN (3 = 70x70 receptive field);
    norm: normalization of both networks' hidden layers; upsample: "transpose" (CycleGAN) or "resize";
    attention_discriminator: add the paper's attention-guided discriminators, which also see the foreground
      attention mask, to the vanilla ones (the official code has none).
    """

    scheme: int = 2
    num_masks: int = 10
    g_filters: int = 64
    num_residual_blocks: int = 9
    d_filters: int = 64
    d_layers: int = 3
    norm: str = "instance"
    upsample: str = "transpose"
    attention_discriminator: bool = False

    def validate(self, prefix="model"):
        check_choice(self.scheme, f"{prefix}.scheme", [1, 2])
        check_range(self.num_masks, f"{prefix}.num_masks", 2)
        for name in ("g_filters", "d_filters", "d_layers"):
            check_range(getattr(self, name), f"{prefix}.{name}", 1)
        check_range(self.num_residual_blocks, f"{prefix}.num_residual_blocks", 0)
        check_choice(self.norm, f"{prefix}.norm", ["instance", "batch", "none"])
        check_choice(self.upsample, f"{prefix}.upsample", ["transpose", "resize"])

    def num_attention(self):
        """Attention masks per translation: 1 (scheme I) or num_masks (scheme II)."""
        return 1 if self.scheme == 1 else self.num_masks

    def num_content(self):
        """Content masks per translation: 1 (scheme I) or num_masks - 1 (scheme II)."""
        return 1 if self.scheme == 1 else self.num_masks - 1


@dataclasses.dataclass
class AttentionGANLossConfig:
    """Loss weights (see the module docstring).

    lambda_adv: weight of the generators' adversarial term (our LSGAN generator loss is 0.5 (D - 1)^2, Mao et al.;
      the official code's MSE has no 0.5: the default lambda_adv = 2 matches it); lambda_identity: the identity weight
      RELATIVE to lambda_cycle (lambda_id = lambda_identity * lambda_cycle; the
      official code's --lambda_identity 0.5); lambda_tv: total variation of the attention masks (summed per
      example, hence tiny); lambda_pixel: |G(x) - x|_1 + |F(y) - y|_1 (paper; not in the official code);
    pool_size: fakes kept per domain for D (0 = off); pool_probability: chance that a stored fake replaces a new
      one once the pool is full.
    """

    adversarial: str = "lsgan"
    lambda_adv: float = 2.0
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    lambda_tv: float = 1e-6
    lambda_pixel: float = 1.0
    pool_size: int = 50
    pool_probability: float = 0.5

    def validate(self, prefix="loss"):
        check_choice(self.adversarial, f"{prefix}.adversarial", ["gan", "lsgan", "hinge"])
        for name in ("lambda_adv", "lambda_cycle", "lambda_identity", "lambda_tv", "lambda_pixel"):
            check_range(getattr(self, name), f"{prefix}.{name}", 0.0)
        check_range(self.pool_size, f"{prefix}.pool_size", 0)
        check_range(self.pool_probability, f"{prefix}.pool_probability", 0.0, 1.0)


@dataclasses.dataclass
class AttentionGANTrainConfig(TrainConfig):
    """`TrainConfig` plus lr_decay_start: fraction of `steps` after which both learning rates decay linearly to 0
    at `steps` (CycleGAN/AttentionGAN: 0.5; 1.0 = constant)."""

    lr_decay_start: float = 0.5

    def validate(self, prefix="train"):
        super().validate(prefix)
        check(self.n_critic == 1, f"{prefix}.n_critic", f"must be 1 for AttentionGAN, got {self.n_critic}")
        check_range(self.lr_decay_start, f"{prefix}.lr_decay_start", 0.0, 1.0)


@dataclasses.dataclass
class AttentionGANConfig(ExperimentConfig):
    method: str = "attentiongan"
    data: UnpairedDataConfig = dataclasses.field(default_factory=lambda: UnpairedDataConfig(image_size=256))
    model: AttentionGANModelConfig = dataclasses.field(default_factory=AttentionGANModelConfig)
    loss: AttentionGANLossConfig = dataclasses.field(default_factory=AttentionGANLossConfig)
    train: AttentionGANTrainConfig = dataclasses.field(default_factory=lambda: AttentionGANTrainConfig(batch_size=1))

    def validate(self):
        super().validate()
        size = self.data.image_size
        check(size >= 16, "data.image_size", f"must be >= 16 for AttentionGAN, got {size}")
        check(
            size >= 2 ** (self.model.d_layers + 1),
            "model.d_layers",
            f"is too deep for data.image_size={size} (the PatchGAN map would be smaller than 2x2)",
        )
        check(
            self.loss.pool_size == 0 or self.loss.pool_size >= self.train.batch_size,
            "loss.pool_size",
            f"must be 0 (off) or >= train.batch_size ({self.train.batch_size}), got {self.loss.pool_size}",
        )
        return self


# ---------------------------------------------------------------------------------------------------------------
# Networks


def _encoder(x, m, name):
    """c7s1-f, d2f, d4f (3x3 stride 2), residual blocks at 4f; instance norm, ReLU, reflection padding."""
    f = m.g_filters
    x = ConvNormAct(f, 7, norm=m.norm, activation="relu", padding="reflect", name=f"{name}_conv_in")(x)
    for i, mult in enumerate((2, 4)):
        x = DownBlock(f * mult, 3, norm=m.norm, activation="relu", name=f"{name}_down{i + 1}")(x)
    for i in range(m.num_residual_blocks):
        x = ResidualBlock(f * 4, 3, norm=m.norm, activation="relu", padding="reflect", name=f"{name}_res{i + 1}")(x)
    return x


def _decoder(x, m, name):
    """u2f, uf (3x3 stride-2 transposed convs, or nearest x2 + conv)."""
    for i, mult in enumerate((2, 1)):
        x = UpBlock(m.g_filters * mult, 3, norm=m.norm, activation="relu", mode=m.upsample, name=f"{name}_up{i + 1}")(x)
    return x


def build_generator(config, name="generator"):
    """One AttentionGAN generator (scheme from `config.model.scheme`; see the module docstring)."""
    size, m = config.data.image_size, config.model
    image = keras.Input((size, size, 3), name="image")
    if m.scheme == 1:
        h = _decoder(_encoder(image, m, "enc"), m, "dec")
        content = ConvNormAct(3, 7, norm="none", activation="tanh", padding="reflect", name="content_out")(h)
        attention = ConvNormAct(1, 7, norm="none", activation="sigmoid", padding="reflect", name="attention_out")(h)
        output = AttentionBlend(name="blend", dtype="float32")([content, image, attention])
    else:
        n = m.num_masks
        shared = _encoder(image, m, "enc")
        content = ConvNormAct(3 * (n - 1), 7, norm="none", activation="tanh", padding="reflect", name="content_out")(
            _decoder(shared, m, "content")
        )
        logits = ConvNormAct(n, 1, norm="none", activation=None, name="attention_logits")(
            _decoder(shared, m, "attention")
        )
        attention = keras.layers.Softmax(axis=-1, name="attention_out", dtype="float32")(logits)
        output = MultiMaskBlend(name="blend", dtype="float32")([content, image, attention])
    return keras.Model(image, {"image": output, "attention": attention, "content": content}, name=name)


def build_discriminator(config, name="discriminator", channels=3):
    """PatchGAN: [N, S, S, channels] (3, or 4 = image + attention) -> [N, S / 2^d_layers, S / 2^d_layers, 1] map."""
    size, m = config.data.image_size, config.model
    image = keras.Input((size, size, channels), name="image")
    x = ConvNormAct(m.d_filters, 4, strides=2, norm="none", activation="lrelu", name="d_conv1")(image)
    for i in range(1, m.d_layers):
        x = ConvNormAct(
            m.d_filters * min(2**i, 8), 4, strides=2, norm=m.norm, activation="lrelu", name=f"d_conv{i + 1}"
        )(x)
    x = ConvNormAct(
        m.d_filters * min(2**m.d_layers, 8),
        4,
        strides=1,
        norm=m.norm,
        activation="lrelu",
        name=f"d_conv{m.d_layers + 1}",
    )(x)
    logits = ConvNormAct(1, 4, strides=1, norm="none", activation=None, name="d_out")(x)
    return keras.Model(image, logits, name=name)


# ---------------------------------------------------------------------------------------------------------------
# Trainer


class AttentionGAN(GANTrainer):
    """AttentionGAN trainer: generators G (X -> Y) and F (Y -> X), PatchGAN discriminators D_X and D_Y.

    Args:
        config: `AttentionGANConfig`.
    """

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.generator_ab = build_generator(config, "generator_ab")
        self.generator_ba = build_generator(config, "generator_ba")
        self.discriminator_a = build_discriminator(config, "discriminator_a")
        self.discriminator_b = build_discriminator(config, "discriminator_b")
        self.discriminator_a_att = self.discriminator_b_att = None
        if config.model.attention_discriminator:  # attention-guided D_XA, D_YA, added to D_X, D_Y
            self.discriminator_a_att = build_discriminator(config, "discriminator_a_att", channels=4)
            self.discriminator_b_att = build_discriminator(config, "discriminator_b_att", channels=4)
        self.g_adv, self.d_adv = get_adversarial_loss(config.loss.adversarial)
        size, loss = config.data.image_size, config.loss
        channels = 4 if config.model.attention_discriminator else 3
        self.pool_a = self.pool_b = None  # earlier fakes of X (F(y)) and of Y (G(x)) for D_X and D_Y
        if loss.pool_size > 0:
            self.pool_a = HistoryBuffer(loss.pool_size, (size, size, channels), loss.pool_probability, "bernoulli")
            self.pool_b = HistoryBuffer(loss.pool_size, (size, size, channels), loss.pool_probability, "bernoulli")

    @property
    def networks(self):
        networks = {
            "generator_ab": self.generator_ab,
            "generator_ba": self.generator_ba,
            "discriminator_a": self.discriminator_a,
            "discriminator_b": self.discriminator_b,
        }
        if self.discriminator_a_att is not None:
            networks.update(discriminator_a_att=self.discriminator_a_att, discriminator_b_att=self.discriminator_b_att)
        return networks

    def updates(self):
        # CycleGAN's order: both generators, then both discriminators (on fakes of the updated generators)
        return [
            Update("g", "g_optimizer", ["generator_ab", "generator_ba"], self.generator_losses, "g_loss"),
            Update(
                "d",
                "d_optimizer",
                [n for n in self.networks if n.startswith("discriminator")],
                self.discriminator_losses,
                "d_loss",
            ),
        ]

    def make_optimizers(self):
        t = self.config.train
        decay_start = int(t.lr_decay_start * t.steps)

        def rate(base):
            return base if decay_start >= t.steps else ConstantThenLinearDecay(base, decay_start, t.steps)

        return {
            "g_optimizer": optimizers.Adam(rate(t.g_lr), beta_1=t.beta_1, beta_2=t.beta_2, name="g_optimizer"),
            "d_optimizer": optimizers.Adam(rate(t.d_lr), beta_1=t.beta_1, beta_2=t.beta_2, name="d_optimizer"),
        }

    def state_variables(self):
        pools = [v for pool in (self.pool_a, self.pool_b) if pool is not None for v in pool.variables]
        return super().state_variables() + pools

    # -- data ---------------------------------------------------------------------------------------------------
    @staticmethod
    def load_records(data_config, split):
        return unpaired.load_unpaired_records(data_config, split)

    @staticmethod
    def make_dataset(data_config, split, **kwargs):
        return unpaired.build_unpaired_dataset(data_config, split, **kwargs)

    # -- helpers ------------------------------------------------------------------------------------------------
    def _d_input(self, image, attention):
        """What the pools store: the image, or concat(image, foreground attention) when attention-guided."""
        if not self.config.model.attention_discriminator:
            return image
        return ops.concatenate([image, ops.cast(attention, image.dtype)], axis=-1)

    def _judge(self, domain, inputs):
        """{"": D(image channels)} plus {"_att": D_att(image + attention)} when attention-guided; domain "a"/"b"."""
        out = {"": getattr(self, f"discriminator_{domain}")(inputs[..., :3], training=True)}
        if self.discriminator_a_att is not None:
            out["_att"] = getattr(self, f"discriminator_{domain}_att")(inputs, training=True)
        return out

    def _foreground(self, out):
        return foreground_attention(out["attention"])  # A (scheme I, one mask) or 1 - A_b (scheme II)

    # -- losses -------------------------------------------------------------------------------------------------
    def generator_losses(self, batch, seed):
        cfg = self.config.loss
        x, y = batch["image_a"], batch["image_b"]
        # 1. translations and their discriminator scores
        gx = self.generator_ab(x, training=True)
        fy = self.generator_ba(y, training=True)
        d_b = self._judge("b", self._d_input(gx["image"], self._foreground(gx)))
        d_a = self._judge("a", self._d_input(fy["image"], self._foreground(fy)))
        losses = {"g_adv": self.g_adv(d_b[""]) + self.g_adv(d_a[""])}
        if "_att" in d_b:
            losses["g_adv_att"] = self.g_adv(d_b["_att"]) + self.g_adv(d_a["_att"])
            losses["g_adv"] = losses["g_adv"] + losses["g_adv_att"]
        # 2. cycle: F(G(x)) ~ x, G(F(y)) ~ y
        losses["g_cycle"] = l1_loss(x, self.generator_ba(gx["image"], training=True)["image"]) + l1_loss(
            y, self.generator_ab(fy["image"], training=True)["image"]
        )
        total = cfg.lambda_adv * losses["g_adv"] + cfg.lambda_cycle * losses["g_cycle"]
        # 3. identity: G(y) ~ y, F(x) ~ x
        if cfg.lambda_identity > 0:
            losses["g_identity"] = l1_loss(y, self.generator_ab(y, training=True)["image"]) + l1_loss(
                x, self.generator_ba(x, training=True)["image"]
            )
            total = total + cfg.lambda_identity * cfg.lambda_cycle * losses["g_identity"]
        # 4. total variation of the attention masks, pixel loss between input and translation
        losses["g_tv"] = total_variation_loss(gx["attention"]) + total_variation_loss(fy["attention"])
        losses["g_pixel"] = l1_loss(x, gx["image"]) + l1_loss(y, fy["image"])
        losses["g_loss"] = total + cfg.lambda_tv * losses["g_tv"] + cfg.lambda_pixel * losses["g_pixel"]
        return losses

    def discriminator_losses(self, batch, seed):
        x, y = batch["image_a"], batch["image_b"]
        # 1. the current fakes (no gradient to the generators) and the attention shown with them
        gx = self.generator_ab(x, training=True)
        fy = self.generator_ba(y, training=True)
        att_b = ops.stop_gradient(self._foreground(gx))
        att_a = ops.stop_gradient(self._foreground(fy))
        fake_b = ops.stop_gradient(self._d_input(gx["image"], att_b))
        fake_a = ops.stop_gradient(self._d_input(fy["image"], att_a))
        # 2. mix with earlier fakes
        if self.pool_b is not None:
            fake_b = self.pool_b.query(fake_b, seed)
            fake_a = self.pool_a.query(fake_a, seed)
        # 3. reals of each domain, with the attention of this batch's translation into that domain
        real_b = self._d_input(y, att_b)
        real_a = self._d_input(x, att_a)
        losses = {}
        for domain, real, fake in (("b", real_b, fake_b), ("a", real_a, fake_a)):
            real_out, fake_out = self._judge(domain, real), self._judge(domain, fake)
            for suffix in real_out:
                losses[f"d_{domain}{suffix}"] = self.d_adv(real_out[suffix], fake_out[suffix])
        losses["d_loss"] = sum(losses.values())
        return losses

    # -- inference ----------------------------------------------------------------------------------------------
    def translate(self, images, to_b, training=False):
        """G(images) when `to_b` else F(images): the generator's dict {"image", "attention", "content"}."""
        return (self.generator_ab if to_b else self.generator_ba)(images, training=training)

    def infer(self, inputs):
        image = ops.convert_to_tensor(inputs["image"])
        target = ops.cast(ops.convert_to_tensor(inputs["attributes"]), image.dtype)[:, 0]
        to_b = ops.abs(target - (1 - self.config.data.domain_a_value)) < 0.5
        select = ops.reshape(to_b, (-1, 1, 1, 1))
        gx, fy = self.generator_ab(image, training=False), self.generator_ba(image, training=False)
        return {key: ops.where(select, gx[key], fy[key]) for key in ("image", "attention", "content")}

    def sample_rows(self, batch):
        """Per direction: input | attention masks (background last) | content masks | output."""
        attr, a = self.config.data.domain_attribute, self.config.data.domain_a_value
        rows = []
        for images, to_b, label in (
            (batch["image_a"], True, f"{attr} {a}->{1 - a}"),
            (batch["image_b"], False, f"{attr} {1 - a}->{a}"),
        ):
            out = self.translate(images, to_b)
            rows.append((f"{label} input", images))
            attention, content = out["attention"], out["content"]
            n = attention.shape[-1]
            for i in range(n):
                name = "attention" if n == 1 else ("att bg" if i == n - 1 else f"att {i + 1}")
                rows.append((f"{label} {name}", attention[..., i : i + 1] * 2.0 - 1.0))
            for i in range(content.shape[-1] // 3):
                name = "content" if n == 1 else f"content {i + 1}"
                rows.append((f"{label} {name}", content[..., 3 * i : 3 * i + 3]))
            rows.append((f"{label} output", out["image"]))
        return rows


registry.register(
    "attentiongan",
    AttentionGANConfig,
    AttentionGAN,
    "Attention-guided unpaired translation, schemes I and II (Tang et al., AttentionGAN)",
    registry.Capabilities(
        task="edit",
        attention_masks=True,
        content_masks=True,
        usage_note="AttentionGAN translates between two domains: checked = the other domain of the attribute.",
        inference_networks=("generator_ab", "generator_ba"),
    ),
)
