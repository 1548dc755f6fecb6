"""SaGAN: Generative Adversarial Network with Spatial Attention for Face Attribute Editing (Zhang et al., ECCV 2018).

Generator G(I, c) = attribute manipulation network (AMN) + spatial attention network (SAN):
  I_a = AMN(I, c)             [N, S, S, 3] in [-1, 1]   (image + K tiled attribute maps -> tanh)
  b   = SAN(I)                [N, S, S, 1] in [0, 1]    (image only for K = 1, as in the paper)
  I_hat = I_a * b + I * (1 - b)
The generator is a functional `keras.Model` with inputs {"image", "attributes"} and outputs
{"image": I_hat, "attention": b, "edited": I_a}.

Discriminator D(I) -> {"src": [N, M, M, 1] WGAN critic map, "cls": [N, K] attribute logits}: `model.d_layers` convs
k4 s2 (32..1024 filters, LeakyReLU, no norm); by default (0) log2(S) - 1 of them, so the last map is M = 2 (6 at
128^2, fewer at smaller sizes); the cls head's kernel covers the whole last map. The reference implementation keeps
its 6 convs at every size (at 64^2 its last map is 1x1, with a 1x1 cls kernel): `model.d_layers=6` gives that critic.

Losses (per example; the trainer reduces them once over the global batch), with c the source attributes and
c_t the target (one randomly chosen attribute flipped per sample; K = 1: always flipped):
  D: -D_src(I) + D_src(G(I, c_t)) + lambda_gp * GP + lambda_cls * BCE(D_cls(I), c)
  G: -D_src(G(I, c_t)) + lambda_cls * BCE(D_cls(G(I, c_t)), c_t)
     + lambda_rec_cycle * |I - G(G(I, c_t), c)|_1 + lambda_rec_id * |I - G(I, c)|_1
Paper settings: lambda_gp 10, lambda_cls 1, lambda_rec_cycle 20, lambda_rec_id 100, Adam 2e-4 (0.5, 0.999),
batch 16, 3 critic updates per generator update, weights N(0, 0.02). One training step here = n_critic critic
updates on n_critic different batches of 16, then one generator update on the first of them.

Beyond the paper: K >= 1 attributes in one model. With K > 1 the SAN also sees the target attribute maps (it must
know which attribute is edited to place the mask); `model.san_conditioning` overrides this.
"""

import dataclasses
import math
import types

import keras
from keras import ops

from tf_faceedit import registry
from tf_faceedit.config import ExperimentConfig, TrainConfig, check, check_choice, check_range
from tf_faceedit.layers import AttentionBlend, ConvNormAct, DownBlock, ResidualBlock, TileAttributes, UpBlock
from tf_faceedit.layers.conditioning import flip_attribute, flip_one_attribute
from tf_faceedit.losses import attribute_bce_loss, get_adversarial_loss, gradient_penalty, l1_loss
from tf_faceedit.training.gan_trainer import GANTrainer

# ---------------------------------------------------------------------------------------------------------------
# Config


@dataclasses.dataclass
class SaGANModelConfig:
    """Network widths. g_filters: first AMN/SAN conv (paper 32); d_filters: first critic conv (paper 32).
    d_negative_slope: the critic's LeakyReLU slope (0.2, as in the reference implementation; 0.01 before 0.2.0);
    d_head_bias: biased src/cls head convs (as in the reference; bias-free before 0.2.0).
    d_layers: stride-2 convs of the critic; 0 (default): log2(image_size) - 1, so the last map is 2x2; the reference
    implementation's critic has 6 at every size (`model.d_layers=6` at 64^2: a 1x1 last map, the reference's
    parameter count; `benchmarks/compare_peers.py` sets it)."""

    g_filters: int = 32
    num_residual_blocks: int = 4
    d_filters: int = 32
    d_max_filters: int = 1024
    d_negative_slope: float = 0.2
    d_head_bias: bool = True
    d_layers: int = 0
    norm: str = "instance"
    upsample: str = "transpose"
    san_conditioning: str = "auto"

    def validate(self, prefix="model"):
        for name in ("g_filters", "d_filters", "d_max_filters"):
            check_range(getattr(self, name), f"{prefix}.{name}", 1)
        check_range(self.num_residual_blocks, f"{prefix}.num_residual_blocks", 0)
        check_range(self.d_layers, f"{prefix}.d_layers", 0)
        check_range(self.d_negative_slope, f"{prefix}.d_negative_slope", 0.0, 1.0)
        check_choice(self.norm, f"{prefix}.norm", ["instance", "batch", "none"])
        check_choice(self.upsample, f"{prefix}.upsample", ["transpose", "resize"])
        check_choice(self.san_conditioning, f"{prefix}.san_conditioning", ["auto", "none", "target"])


@dataclasses.dataclass
class SaGANLossConfig:
    adversarial: str = "wgan"
    lambda_gp: float = 10.0
    lambda_cls: float = 1.0
    lambda_rec_cycle: float = 20.0
    lambda_rec_id: float = 100.0

    def validate(self, prefix="loss"):
        check_choice(self.adversarial, f"{prefix}.adversarial", ["gan", "lsgan", "hinge", "wgan"])
        for name in ("lambda_gp", "lambda_cls", "lambda_rec_cycle", "lambda_rec_id"):
            check_range(getattr(self, name), f"{prefix}.{name}", 0.0)


@dataclasses.dataclass
class SaGANConfig(ExperimentConfig):
    method: str = "sagan"
    model: SaGANModelConfig = dataclasses.field(default_factory=SaGANModelConfig)
    loss: SaGANLossConfig = dataclasses.field(default_factory=SaGANLossConfig)
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(n_critic=3, batch_size=16))

    def validate(self):
        super().validate()
        check(self.data.image_size >= 16, "data.image_size", f"must be >= 16 for SaGAN, got {self.data.image_size}")
        check(self.data.mask.kind == "none", "data.mask.kind", "must be none for SaGAN (it uses no masks)")
        size, layers = self.data.image_size, self.model.d_layers
        check(
            layers == 0 or size % 2**layers == 0,
            "model.d_layers",
            f"must leave a last critic map of at least 1x1 (image_size {size} divisible by 2^d_layers), got {layers}",
        )
        return self


# ---------------------------------------------------------------------------------------------------------------
# Networks


def _backbone(x, model_cfg, name):
    """Conv(f,k7) - 3 x Down(k4 s2) - residual blocks at 8f - 3 x Up(k4 s2), each conv followed by norm + ReLU."""
    f, norm = model_cfg.g_filters, model_cfg.norm
    x = ConvNormAct(f, 7, norm=norm, activation="relu", name=f"{name}_conv_in")(x)
    for i, mult in enumerate((2, 4, 8)):
        x = DownBlock(f * mult, 4, norm=norm, activation="relu", name=f"{name}_down{i + 1}")(x)
    for i in range(model_cfg.num_residual_blocks):
        x = ResidualBlock(f * 8, 3, norm=norm, activation="relu", name=f"{name}_res{i + 1}")(x)
    for i, mult in enumerate((4, 2, 1)):
        x = UpBlock(f * mult, 4, norm=norm, activation="relu", mode=model_cfg.upsample, name=f"{name}_up{i + 1}")(x)
    return x


def san_uses_attributes(config):
    mode = config.model.san_conditioning
    if mode == "auto":
        return len(config.data.attributes) > 1
    return mode == "target"


def build_generator(config):
    """The SaGAN generator as a functional keras.Model (see the module docstring for inputs and outputs)."""
    size, k = config.data.image_size, len(config.data.attributes)
    image = keras.Input((size, size, 3), name="image")
    attributes = keras.Input((k,), name="attributes")
    conditioned = TileAttributes(name="amn_tile")([image, attributes])
    edited = ConvNormAct(3, 7, norm="none", activation="tanh", name="amn_out")(
        _backbone(conditioned, config.model, "amn")
    )
    san_input = TileAttributes(name="san_tile")([image, attributes]) if san_uses_attributes(config) else image
    attention = ConvNormAct(1, 7, norm="none", activation="sigmoid", name="san_out")(
        _backbone(san_input, config.model, "san")
    )
    output = AttentionBlend(name="blend", dtype="float32")([edited, image, attention])  # float32 under mixed precision
    return keras.Model(
        {"image": image, "attributes": attributes},
        {"image": output, "attention": attention, "edited": edited},
        name="sagan_generator",
    )


def discriminator_layers(config):
    """The critic's number of stride-2 convs: `model.d_layers`, or log2(image_size) - 1 (a 2x2 last map) for 0."""
    return config.model.d_layers or int(math.log2(config.data.image_size)) - 1


def build_discriminator(config):
    """Critic with a real/fake map head ("src", [N,M,M,1], M = 2 by default) and an attribute-logit head ("cls",
    [N,K]) whose kernel covers the last map."""
    size, k, m = config.data.image_size, len(config.data.attributes), config.model
    image = keras.Input((size, size, 3), name="image")
    x = image
    for i in range(discriminator_layers(config)):
        filters = min(m.d_filters * 2**i, m.d_max_filters)
        x = ConvNormAct(
            filters,
            4,
            strides=2,
            norm="none",
            activation="lrelu",
            negative_slope=m.d_negative_slope,
            name=f"d_conv{i + 1}",
        )(x)
    src = ConvNormAct(1, 3, norm="none", activation=None, use_bias=m.d_head_bias, name="d_src")(x)
    last = int(x.shape[1])  # 2 with the default depth
    cls = ConvNormAct(k, last, norm="none", activation=None, padding="valid", use_bias=m.d_head_bias, name="d_cls")(x)
    cls = keras.layers.Reshape((k,), name="d_cls_flat")(cls)
    return keras.Model(image, {"src": src, "cls": cls}, name="sagan_discriminator")


def _generator_halves(generator):
    """The AMN ({"image", "attributes"} -> I_a), the SAN (image -> b) and the blend layer of a generator built by
    `build_generator` with an image-only SAN, as views sharing its layers and weights."""
    edited, attention = generator.get_layer("amn_out").output, generator.get_layer("san_out").output
    return types.SimpleNamespace(
        amn=keras.Model(generator.input, edited, name="sagan_amn"),
        san=keras.Model(generator.input["image"], attention, name="sagan_san"),
        blend=generator.get_layer("blend"),
    )


# ---------------------------------------------------------------------------------------------------------------
# Trainer


class SaGAN(GANTrainer):
    """SaGAN trainer: WGAN-GP critic with an attribute head; generator with spatial attention.

    Args:
        config: `SaGANConfig`.
    """

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.generator = build_generator(config)
        self.discriminator = build_discriminator(config)
        self.g_adv, self.d_adv = get_adversarial_loss(config.loss.adversarial)
        # The generator's two halves as models over its own layers (no new weights), for the generator update
        # when the SAN reads the image only: then G(I, c_t) and G(I, c) share one SAN(I) pass. A plain holder,
        # so Keras does not track the views as extra networks.
        self._halves = None if san_uses_attributes(config) else _generator_halves(self.generator)

    def prepare_batch(self, batch, seed):
        return {**batch, "target_attributes": flip_one_attribute(batch["attributes"], seed)}

    def edit(self, images, attributes, training=False):
        """Returns the generator's dict {"image", "attention", "edited"} for target `attributes`."""
        return self.generator({"image": images, "attributes": attributes}, training=training)

    def discriminator_losses(self, batch, seed):
        cfg = self.config.loss
        real, c_src, c_tgt = batch["image"], batch["attributes"], batch["target_attributes"]
        fake = ops.stop_gradient(self.edit(real, c_tgt, training=True)["image"])
        real_out = self.discriminator(real, training=True)
        fake_out = self.discriminator(fake, training=True)
        losses = {
            "d_adv": self.d_adv(real_out["src"], fake_out["src"]),
            "d_cls": attribute_bce_loss(c_src, real_out["cls"]),
        }
        total = losses["d_adv"] + cfg.lambda_cls * losses["d_cls"]
        if cfg.lambda_gp > 0:
            losses["d_gp"] = gradient_penalty(
                lambda x: self.discriminator(x, training=True)["src"], real, fake, seed=seed
            )
            total = total + cfg.lambda_gp * losses["d_gp"]
        losses["d_loss"] = total
        return losses

    def generator_losses(self, batch, seed):
        cfg = self.config.loss
        real, c_src, c_tgt = batch["image"], batch["attributes"], batch["target_attributes"]
        fake, identity = self.edit_both(real, c_tgt, c_src, training=True)
        fake_out = self.discriminator(fake, training=True)
        losses = {
            "g_adv": self.g_adv(fake_out["src"]),
            "g_cls": attribute_bce_loss(c_tgt, fake_out["cls"]),
            "g_rec_cycle": l1_loss(real, self.edit(fake, c_src, training=True)["image"]),
            "g_rec_id": l1_loss(real, identity),
        }
        losses["g_loss"] = (
            losses["g_adv"]
            + cfg.lambda_cls * losses["g_cls"]
            + cfg.lambda_rec_cycle * losses["g_rec_cycle"]
            + cfg.lambda_rec_id * losses["g_rec_id"]
        )
        return losses

    def edit_both(self, images, target_attributes, source_attributes, training=False):
        """(G(I, c_t)["image"], G(I, c)["image"]), equal to two `edit` calls; with an image-only SAN its pass on
        `images` runs once for both (5 of the generator update's 6 network passes, same values and gradients)."""
        if self._halves is None:
            return tuple(self.edit(images, c, training)["image"] for c in (target_attributes, source_attributes))
        amn, san, blend = self._halves.amn, self._halves.san, self._halves.blend
        attention = san(images, training=training)
        return tuple(
            blend([amn({"image": images, "attributes": c}, training=training), images, attention])
            for c in (target_attributes, source_attributes)
        )

    def sample_rows(self, batch):
        """Rows: input, then for each attribute the edit with that attribute flipped and its attention mask."""
        images, attributes = batch["image"], batch["attributes"]
        rows = [("input", images)]
        for i, name in enumerate(self.config.data.attributes):
            out = self.edit(images, flip_attribute(attributes, i))
            rows.append((f"{name} flipped", out["image"]))
            rows.append((f"{name} attention", out["attention"] * 2.0 - 1.0))
        return rows

    # -- inference contract (GANTrainer.infer) --------------------------------------------------------------------
    def infer(self, inputs):
        """{"image", "attributes" (target values)} -> the generator's {"image", "attention"}."""
        out = self.edit(inputs["image"], ops.cast(inputs["attributes"], "float32"))
        return {"image": out["image"], "attention": out["attention"]}

    def predict_attributes(self, images):
        """The critic's attribute head: sigmoid(D_cls(x)) > 0.5, float32 [N, K] in {0, 1}."""
        return ops.cast(self.discriminator(images, training=False)["cls"] > 0.0, "float32")


registry.register(
    "sagan",
    SaGANConfig,
    SaGAN,
    "Spatial-attention GAN for attribute editing (Zhang et al., ECCV 2018)",
    # the critic's classification head predicts the attributes a caller leaves out: inference needs both networks
    registry.Capabilities(
        task="edit",
        predicts_attributes=True,
        attention_masks=True,
        inference_networks=("generator", "discriminator"),
    ),
)
