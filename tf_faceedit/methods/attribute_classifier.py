"""Attribute classifier: a ResNet-style CNN trained from scratch to predict the binary CelebA attributes.

It is the judge of the evaluation (does an edit change the target attribute, and only it?) and its penultimate
features give FID*/KID* ("classifier features", not comparable to published Inception FID); see
`tf_faceedit/eval/classifier.py` and docs/evaluation.md.

Network `attribute_classifier` (functional keras.Model; S = data.image_size, a power of two >= 8; K attributes):
  image [N, S, S, 3] in [-1, 1] (RGB)
    -> stem: ConvNormAct(filters, 3x3), BatchNorm, ReLU                          [N, S, S, f]
    -> log2(S) - 2 stages, stage i: DownBlock(min(f * 2^(i+1), max_filters), 3x3 stride 2, BatchNorm, ReLU) then
       `blocks_per_stage` ResidualBlocks (x + conv-BN-ReLU-conv-BN(x), He et al. 2016)   ... [N, 4, 4, F]
    -> ReLU, global average pooling                                          "features" [N, F] (penultimate)
    -> dropout, Dense(K)                                                     "logits"   [N, K]
  outputs {"logits": [N, K] raw logits, "features": [N, F]}; probabilities are sigmoid(logits).

Loss per example (the trainer reduces it once over the global batch): binary cross-entropy with logits AVERAGED over
the K attributes (`attribute_bce_loss / K`, so the learning rate does not depend on K), label smoothing
y * (1 - s) + s / 2 with s = loss.label_smoothing. Logged: "c_loss" and "c_acc" (per-example fraction of the K
attributes predicted right at threshold 0.5).

One training step = one update of the classifier on `train.batch_size` images (AdamW, `train.lr`,
`train.weight_decay`, cosine decay to 0 over `train.steps` when train.lr_schedule=cosine). Data: the shared CelebA
pipeline (random horizontal flips on the train split).
"""

import dataclasses
import math

import keras
from keras import ops

from tf_faceedit import registry
from tf_faceedit.config import DataConfig, ExperimentConfig, TrainConfig, check, check_choice, check_range
from tf_faceedit.data.synthetic import ATTRIBUTE_NAMES
from tf_faceedit.layers import ConvNormAct, DownBlock, ResidualBlock
from tf_faceedit.losses import attribute_bce_loss
from tf_faceedit.training import optimizers
from tf_faceedit.training.gan_trainer import GANTrainer, Update

# The 40 CelebA attributes in the order of list_attr_celeba.txt.
CELEBA_ATTRIBUTES = list(ATTRIBUTE_NAMES)

# ---------------------------------------------------------------------------------------------------------------
# Config


@dataclasses.dataclass
class ClassifierModelConfig:
    """Widths. filters: stem width (stage i has min(filters * 2^(i+1), max_filters)); blocks_per_stage: residual
    blocks after each stride-2 downsampling; dropout: rate before the logit layer."""

    filters: int = 32
    max_filters: int = 256
    blocks_per_stage: int = 2
    dropout: float = 0.2

    def validate(self, prefix="model"):
        check_range(self.filters, f"{prefix}.filters", 1)
        check_range(self.max_filters, f"{prefix}.max_filters", 1)
        check_range(self.blocks_per_stage, f"{prefix}.blocks_per_stage", 0)
        check_range(self.dropout, f"{prefix}.dropout", 0.0, 1.0)
        check(self.dropout < 1.0, f"{prefix}.dropout", f"must be < 1, got {self.dropout}")


@dataclasses.dataclass
class ClassifierLossConfig:
    """label_smoothing: s in targets y * (1 - s) + s / 2 (0 = hard labels).
    balance_classes: weight each attribute's positives by 0.5 / p and negatives by 0.5 / (1 - p), p = its positive
      rate in the train split (clipped to [0.01, 0.99]), so the loss targets balanced accuracy; rare attributes
      (Eyeglasses 6%, Blond_Hair 15%) are otherwise judged by a classifier biased towards "absent"."""

    label_smoothing: float = 0.0
    balance_classes: bool = False

    def validate(self, prefix="loss"):
        check_range(self.label_smoothing, f"{prefix}.label_smoothing", 0.0, 1.0)
        check(self.label_smoothing < 1.0, f"{prefix}.label_smoothing", f"must be < 1, got {self.label_smoothing}")


@dataclasses.dataclass
class ClassifierTrainConfig(TrainConfig):
    """`TrainConfig` plus the classifier's optimizer: AdamW with learning rate `lr`, decoupled `weight_decay`, and
    `lr_schedule` "constant" or "cosine" (decays to 0 at `train.steps`). g_lr/d_lr are not used."""

    lr: float = 1e-3
    weight_decay: float = 1e-4
    lr_schedule: str = "cosine"

    def validate(self, prefix="train"):
        super().validate(prefix)
        check_range(self.lr, f"{prefix}.lr", 0.0, low_inclusive=False)
        check_range(self.weight_decay, f"{prefix}.weight_decay", 0.0)
        check_choice(self.lr_schedule, f"{prefix}.lr_schedule", ["constant", "cosine"])
        check(self.n_critic == 1, f"{prefix}.n_critic", f"must be 1 for the classifier, got {self.n_critic}")


@dataclasses.dataclass
class ClassifierConfig(ExperimentConfig):
    method: str = "classifier"
    data: DataConfig = dataclasses.field(
        default_factory=lambda: DataConfig(image_size=64, attributes=list(CELEBA_ATTRIBUTES))
    )
    model: ClassifierModelConfig = dataclasses.field(default_factory=ClassifierModelConfig)
    loss: ClassifierLossConfig = dataclasses.field(default_factory=ClassifierLossConfig)
    train: ClassifierTrainConfig = dataclasses.field(
        default_factory=lambda: ClassifierTrainConfig(steps=20000, batch_size=64, beta_1=0.9, beta_2=0.999)
    )

    def validate(self):
        super().validate()
        check(
            self.data.image_size >= 8, "data.image_size", f"must be >= 8 for the classifier, got {self.data.image_size}"
        )
        check(self.data.mask.kind == "none", "data.mask.kind", "must be none for the classifier (it uses no masks)")
        return self


# ---------------------------------------------------------------------------------------------------------------
# Network


def stage_widths(config):
    """Widths of the log2(S) - 2 stages (the last feature map is 4x4)."""
    m = config.model
    stages = max(int(math.log2(config.data.image_size)) - 2, 1)
    return [min(m.filters * 2 ** (i + 1), m.max_filters) for i in range(stages)]


def build_classifier(config):
    """The classifier as a functional keras.Model: image [N,S,S,3] in [-1,1] -> {"logits": [N,K], "features": [N,F]}."""
    size, k, m = config.data.image_size, len(config.data.attributes), config.model
    common = dict(norm="batch", activation="relu", kernel_stddev=0.05)
    image = keras.Input((size, size, 3), name="image")
    x = ConvNormAct(m.filters, 3, name="stem", **common)(image)
    for i, width in enumerate(stage_widths(config)):
        x = DownBlock(width, 3, name=f"stage{i + 1}_down", **common)(x)
        for j in range(m.blocks_per_stage):
            x = ResidualBlock(width, 3, name=f"stage{i + 1}_res{j + 1}", **common)(x)
    x = keras.layers.ReLU(name="head_relu")(x)
    features = keras.layers.GlobalAveragePooling2D(name="features")(x)
    hidden = keras.layers.Dropout(m.dropout, seed=config.train.seed, name="dropout")(features)
    logits = keras.layers.Dense(k, name="logits")(hidden)
    return keras.Model(image, {"logits": logits, "features": features}, name="attribute_classifier")


# ---------------------------------------------------------------------------------------------------------------
# Losses (pure functions of logits)


def classifier_bce_loss(labels, logits, label_smoothing=0.0, positive_rates=None):
    """Per-example BCE with logits averaged over the K attributes [N]; labels [N, K] in {0, 1}.

    positive_rates: optional [K] positive rates p; each term is then weighted by 0.5 / p (label 1) or 0.5 / (1 - p)
      (label 0), so that both classes of every attribute weigh the same in expectation.
    """
    labels = ops.cast(labels, logits.dtype)
    targets = labels * (1.0 - label_smoothing) + 0.5 * label_smoothing if label_smoothing else labels
    if positive_rates is None:
        return attribute_bce_loss(targets, logits) / float(logits.shape[-1])
    rates = ops.clip(ops.convert_to_tensor(positive_rates, logits.dtype), 0.01, 0.99)
    weights = labels * (0.5 / rates) + (1.0 - labels) * (0.5 / (1.0 - rates))
    terms = ops.softplus(logits) - targets * logits
    return ops.mean(weights * terms, axis=-1)


def attribute_accuracy(labels, logits):
    """Per-example fraction of attributes predicted right (logit > 0 <=> label 1) [N]."""
    predicted = ops.cast(logits > 0, "float32")
    return ops.mean(ops.cast(ops.equal(predicted, ops.cast(labels, "float32")), "float32"), axis=-1)


# ---------------------------------------------------------------------------------------------------------------
# Trainer


class AttributeClassifier(GANTrainer):
    """Trains the attribute classifier with the shared trainer (one player, "c").

    Args:
        config: `ClassifierConfig`.
    """

    task = "classify"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.classifier = build_classifier(config)

    @property
    def networks(self):
        return {"classifier": self.classifier}

    def updates(self):
        return [Update("c", "c_optimizer", ["classifier"], self.classifier_losses, "c_loss")]

    def make_optimizers(self):
        t = self.config.train
        lr = t.lr
        if t.lr_schedule == "cosine":
            lr = keras.optimizers.schedules.CosineDecay(t.lr, decay_steps=t.steps)
        return {
            "c_optimizer": optimizers.Adam(  # AdamW: keras.optimizers.AdamW is this Adam with weight_decay
                lr, weight_decay=t.weight_decay, beta_1=t.beta_1, beta_2=t.beta_2, name="c_optimizer"
            )
        }

    def positive_rates(self):
        """[K] positive rate of each attribute in the train split (read once; used by loss.balance_classes)."""
        if getattr(self, "_positive_rates", None) is None:
            records = self.load_records(self.config.data, "train")
            self._positive_rates = [float(v) for v in records.attributes.mean(axis=0)]
        return self._positive_rates

    def classifier_losses(self, batch, seed):
        out = self.classifier(batch["image"], training=True)
        labels = batch["attributes"]
        rates = self.positive_rates() if self.config.loss.balance_classes else None
        return {
            "c_loss": classifier_bce_loss(labels, out["logits"], self.config.loss.label_smoothing, rates),
            "c_acc": attribute_accuracy(labels, out["logits"]),
        }

    def infer(self, inputs):
        """inputs: {"image": float32 [N, S, S, 3] in [-1, 1]} -> {"logits": [N, K], "probabilities": [N, K] in [0, 1]}
        (column order = config.data.attributes)."""
        logits = self.classifier(inputs["image"], training=False)["logits"]
        return {"logits": logits, "probabilities": ops.sigmoid(logits)}

    def sample_rows(self, batch):
        """Rows: the input images (predictions are logged as scalars, not drawn)."""
        return [("input", batch["image"])]


registry.register(
    "classifier",
    ClassifierConfig,
    AttributeClassifier,
    "ResNet-style attribute classifier for evaluation (40 CelebA attributes)",
    registry.Capabilities(task="classify", inference_networks=("classifier",)),
)
