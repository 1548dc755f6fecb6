import math

import keras
import numpy as np
import pytest
from keras import ops

from tests.helpers import tiny_config
from tf_faceedit import registry
from tf_faceedit.config import ConfigError
from tf_faceedit.configs import resolution
from tf_faceedit.methods import attribute_classifier as ac


def _np(x):
    return ops.convert_to_numpy(x)


def _batch(n=4, size=16, k=3, seed=0):
    rng = np.random.RandomState(seed)
    return {
        "image": ops.convert_to_tensor(rng.uniform(-1, 1, (n, size, size, 3)).astype("float32")),
        "attributes": ops.convert_to_tensor(rng.randint(0, 2, (n, k)).astype("float32")),
    }


def test_defaults_and_registration(synthetic_celeba):
    cfg = ac.ClassifierConfig()
    spec = registry.get("classifier")
    assert spec.config_class is ac.ClassifierConfig and spec.trainer_class is ac.AttributeClassifier
    assert ac.AttributeClassifier.task == "classify"
    assert cfg.data.image_size == 64 and len(cfg.data.attributes) == 40
    header = (synthetic_celeba / "list_attr_celeba.txt").read_text().splitlines()[1].split()
    assert cfg.data.attributes == header  # the CelebA column order
    assert (cfg.train.lr, cfg.train.n_critic, cfg.train.lr_schedule) == (1e-3, 1, "cosine")


@pytest.mark.parametrize(
    "assignment, needle",
    [
        ("train.n_critic=2", "train.n_critic"),
        ("train.lr=0", "train.lr"),
        ("train.lr_schedule=step", "train.lr_schedule"),
        ("model.dropout=1.0", "model.dropout"),
        ("model.blocks_per_stage=-1", "model.blocks_per_stage"),
        ("data.mask.kind=noise", "data.mask.kind"),
    ],
)
def test_validation_errors(assignment, needle):
    with pytest.raises(ConfigError, match=needle):
        tiny_config("classifier", "/x").override(assignment).validate()


def test_presets_load(tmp_path):
    for name in ("classifier_quick", "classifier_celeba64"):
        cfg = resolution.resolve_config("classifier", None, f"configs/{name}.yaml", [], str(tmp_path))
        assert cfg.data.image_size == 64 and len(cfg.data.attributes) == 40


@pytest.mark.parametrize("size, widths", [(16, [8, 8]), (32, [8, 8, 8])])
def test_network_shapes(size, widths):
    cfg = tiny_config("classifier", "/x", **{"data.image_size": size})
    assert ac.stage_widths(cfg) == widths
    model = ac.build_classifier(cfg)
    out = model(_batch(2, size)["image"])
    assert tuple(out["logits"].shape) == (2, 3) and tuple(out["features"].shape) == (2, widths[-1])
    assert tuple(model.get_layer("head_relu").output.shape) == (None, 4, 4, widths[-1])
    assert np.all(_np(out["features"]) >= 0)  # post-ReLU average pooling
    assert model.name == "attribute_classifier"


def test_paper_preset_widths():
    cfg = tiny_config("classifier", "/x", **{"data.image_size": 64, "model.filters": 32, "model.max_filters": 256})
    assert ac.stage_widths(cfg) == [64, 128, 256, 256]


def test_golden_loss_and_accuracy():
    logits = ops.convert_to_tensor([[0.0, 2.0], [-3.0, 1.0]])
    labels = ops.convert_to_tensor([[1.0, 0.0], [0.0, 1.0]])
    softplus = lambda z: math.log1p(math.exp(z))  # noqa: E731 - BCE(y, z) = softplus(z) - y z
    expected = [(math.log(2) + softplus(2.0)) / 2, (softplus(-3.0) + softplus(1.0) - 1.0) / 2]
    np.testing.assert_allclose(_np(ac.classifier_bce_loss(labels, logits)), expected, rtol=1e-6)
    smoothed = [
        (softplus(0.0) - 0.9 * 0.0 + softplus(2.0) - 0.1 * 2.0) / 2,
        (softplus(-3.0) + 0.1 * 3.0 + softplus(1.0) - 0.9 * 1.0) / 2,
    ]
    np.testing.assert_allclose(_np(ac.classifier_bce_loss(labels, logits, 0.2)), smoothed, rtol=1e-6)
    # logit 0 counts as "no": row 0 gets 1 of 2 right (0 -> no, but label 1), row 1 both
    np.testing.assert_allclose(_np(ac.attribute_accuracy(labels, logits)), [0.0, 1.0])


def test_update_changes_the_classifier_with_adamw_cosine():
    trainer = ac.AttributeClassifier(tiny_config("classifier", "/x"))
    optimizers = trainer.make_optimizers()
    trainer.compile(optimizers=optimizers)
    # AdamW = Adam with decoupled weight decay (keras.optimizers.AdamW is exactly that subclass); ours is fused
    assert isinstance(trainer.c_optimizer, keras.optimizers.Adam)
    assert trainer.c_optimizer.weight_decay == pytest.approx(trainer.config.train.weight_decay)
    assert trainer.config.train.weight_decay > 0
    assert isinstance(optimizers["c_optimizer"]._learning_rate, keras.optimizers.schedules.CosineDecay)
    before = [_np(v).copy() for v in trainer.classifier.trainable_variables]
    trainer._run_update(trainer.updates()[0], _batch())
    assert any(not np.array_equal(a, _np(v)) for a, v in zip(before, trainer.classifier.trainable_variables))


@pytest.mark.slow
def test_overfits_one_batch():
    """About 20 s: 150 updates on one fixed batch of 8 images bring the BCE down by 10x."""
    cfg = tiny_config(
        "classifier",
        "/x",
        **{
            "train.lr_schedule": "constant",
            "train.lr": 0.01,
            "train.weight_decay": 0,
            "model.dropout": 0,
            "data.random_flip": False,
        },
    )
    trainer = ac.AttributeClassifier(cfg)
    trainer.compile(optimizers=trainer.make_optimizers())
    batch = _batch(8, 16, 3, seed=1)
    update = trainer.updates()[0]
    first = float(np.mean(_np(trainer.classifier_losses(batch, None)["c_loss"])))
    for _ in range(150):
        trainer._run_update(update, batch)
    out = trainer.classifier(batch["image"], training=True)
    last = float(np.mean(_np(ac.classifier_bce_loss(batch["attributes"], out["logits"]))))
    assert last < first / 10


def test_balanced_bce_weighs_each_class_by_its_inverse_rate():
    import numpy as np

    from tf_faceedit.methods.attribute_classifier import classifier_bce_loss

    labels = np.array([[1.0, 0.0], [0.0, 0.0]], "float32")
    logits = np.array([[0.0, 0.0], [0.0, 2.0]], "float32")
    rates = [0.25, 0.5]
    got = np.asarray(classifier_bce_loss(labels, logits, positive_rates=rates))
    log2 = np.log(2.0)
    # example 0: positive of a 25% attribute (weight 2) + negative of a 50% one (weight 1), both at logit 0
    # example 1: negative of a 25% attribute (weight 2/3) at logit 0 + negative (weight 1) at logit 2
    want = np.array([(2 * log2 + log2) / 2, (2 / 3 * log2 + np.log1p(np.exp(2.0))) / 2])
    np.testing.assert_allclose(got, want, rtol=1e-5)
    plain = np.asarray(classifier_bce_loss(labels, logits))
    assert not np.allclose(plain, got)
