import json

import keras
import numpy as np
import pytest
from keras import ops

from tests.helpers import tiny_config
from tf_faceedit import registry
from tf_faceedit.config import ConfigError
from tf_faceedit.methods import attention_gan as agan
from tf_faceedit.training import driver
from tf_faceedit.training.lr_schedules import ConstantThenLinearDecay


def _np(x):
    return ops.convert_to_numpy(x)


def _batch(n=2, size=32, seed=0):
    rng = np.random.RandomState(seed)
    return {
        key: ops.convert_to_tensor(rng.uniform(-1, 1, (n, size, size, 3)).astype("float32"))
        for key in ("image_a", "image_b")
    }


def test_paper_defaults_and_registration():
    cfg = agan.AttentionGANConfig()
    assert registry.get("attentiongan").config_class is agan.AttentionGANConfig
    m, loss, t = cfg.model, cfg.loss, cfg.train
    assert (m.scheme, m.num_masks, m.g_filters, m.num_residual_blocks, m.d_filters, m.d_layers) == (2, 10, 64, 9, 64, 3)
    assert (
        loss.adversarial,
        loss.lambda_adv,
        loss.lambda_cycle,
        loss.lambda_identity,
        loss.lambda_tv,
        loss.lambda_pixel,
    ) == ("lsgan", 2.0, 10.0, 0.5, 1e-6, 1.0)  # 2 * 0.5 (D - 1)^2 = official MSE
    assert (loss.pool_size, loss.pool_probability) == (50, 0.5)
    assert (t.batch_size, t.g_lr, t.d_lr, t.beta_1, t.lr_decay_start) == (1, 2e-4, 2e-4, 0.5, 0.5)
    assert cfg.data.attributes == [cfg.data.domain_attribute]


@pytest.mark.parametrize(
    "assignment, needle",
    [
        ("model.scheme=3", "model.scheme"),
        ("model.num_masks=1", "model.num_masks"),
        ("loss.pool_size=1", r"loss.pool_size must be 0 \(off\) or >= train.batch_size"),
        ("train.n_critic=2", "train.n_critic must be 1"),
        ("model.d_layers=5", "model.d_layers"),
        ("loss.adversarial=wgan", "loss.adversarial"),
    ],
)
def test_validation_errors(assignment, needle):
    with pytest.raises(ConfigError, match=needle):
        tiny_config("attentiongan", "/x").override(assignment).validate()


@pytest.mark.parametrize("scheme, n_att, n_content", [(1, 1, 3), (2, 3, 6)])
def test_generator_shapes_and_blend(scheme, n_att, n_content):
    cfg = tiny_config("attentiongan", "/x", **{"model.scheme": scheme})
    g = agan.build_generator(cfg)
    x = keras.random.uniform((2, 32, 32, 3), -1, 1, seed=1)
    out = {k: _np(v) for k, v in g(x).items()}
    assert out["image"].shape == (2, 32, 32, 3)
    assert out["attention"].shape == (2, 32, 32, n_att)
    assert out["content"].shape == (2, 32, 32, n_content)
    assert out["attention"].min() >= 0 and out["attention"].max() <= 1 and np.abs(out["content"]).max() <= 1
    xs, a, c = _np(x), out["attention"], out["content"]
    if scheme == 1:
        expected = c * a + xs * (1 - a)
    else:  # softmax across the n masks: they sum to 1 at every pixel; background last
        np.testing.assert_allclose(a.sum(-1), 1.0, atol=1e-5)
        expected = xs * a[..., -1:] + sum(c[..., 3 * f : 3 * f + 3] * a[..., f : f + 1] for f in range(n_att - 1))
    np.testing.assert_allclose(out["image"], expected, atol=1e-5)


@pytest.mark.parametrize("attention_d, channels", [(False, 3), (True, 4)])
def test_patchgan_shapes(attention_d, channels):
    cfg = tiny_config("attentiongan", "/x", **{"model.attention_discriminator": attention_d})
    trainer = agan.AttentionGAN(cfg)
    # the attention-guided discriminators are added to the vanilla ones (the paper's L_GAN + L_AGAN)
    names = {n for n in trainer.networks if n.startswith("discriminator")}
    assert names == (
        {"discriminator_a", "discriminator_b"}
        | ({"discriminator_a_att", "discriminator_b_att"} if attention_d else set())
    )
    assert tuple(trainer.discriminator_a.input.shape) == (None, 32, 32, 3)
    d = trainer.discriminator_a_att if attention_d else trainer.discriminator_a
    assert tuple(d.input.shape) == (None, 32, 32, channels)
    assert tuple(d(ops.zeros((2, 32, 32, channels))).shape) == (2, 8, 8, 1)  # 2 stride-2 convs
    paper = agan.build_discriminator(
        tiny_config("attentiongan", "/x", **{"data.image_size": 64, "model.d_layers": 3, "model.d_filters": 64})
    )
    convs = [layer for layer in paper.layers if layer.name.startswith("d_")]
    assert [layer.filters for layer in convs] == [64, 128, 256, 512, 1]


def _force_background(generator, scheme):
    """Sets the attention head so that the background mask is 1 (scheme II) / A = 0 (scheme I) everywhere."""
    layer = generator.get_layer("attention_logits" if scheme == 2 else "attention_out")
    kernel, bias = layer.conv.get_weights()
    bias = np.full_like(bias, -40.0)
    if scheme == 2:
        bias[-1] = 40.0
    layer.conv.set_weights([np.zeros_like(kernel), bias])


@pytest.mark.parametrize("scheme", [1, 2])
def test_background_attention_returns_the_input_and_zero_tv_pixel(scheme):
    cfg = tiny_config("attentiongan", "/x", **{"model.scheme": scheme})
    trainer = agan.AttentionGAN(cfg)
    for g in (trainer.generator_ab, trainer.generator_ba):
        _force_background(g, scheme)
    batch = _batch(2)
    out = trainer.generator_ab(batch["image_a"])
    np.testing.assert_allclose(_np(out["image"]), _np(batch["image_a"]), atol=1e-6)  # A_b = 1: G(x) = x
    losses = trainer.generator_losses(batch, trainer.seed_generator)
    np.testing.assert_allclose(_np(losses["g_pixel"]), 0.0, atol=1e-6)
    np.testing.assert_allclose(_np(losses["g_tv"]), 0.0, atol=1e-6)
    np.testing.assert_allclose(_np(losses["g_cycle"]), 0.0, atol=1e-6)
    np.testing.assert_allclose(_np(losses["g_identity"]), 0.0, atol=1e-6)


def test_loss_dicts_golden_tv_pixel_and_totals():
    cfg = tiny_config(
        "attentiongan", "/x", **{"model.attention_discriminator": True, "loss.lambda_adv": 2.0, "loss.lambda_tv": 0.01}
    )
    trainer = agan.AttentionGAN(cfg)
    batch = _batch(3)
    g = trainer.generator_losses(batch, trainer.seed_generator)
    d = trainer.discriminator_losses(batch, trainer.seed_generator)
    assert set(g) == {"g_adv", "g_adv_att", "g_cycle", "g_identity", "g_tv", "g_pixel", "g_loss"}
    assert set(d) == {"d_a", "d_b", "d_a_att", "d_b_att", "d_loss"}
    for value in list(g.values()) + list(d.values()):
        assert tuple(value.shape) == (3,) and np.all(np.isfinite(_np(value)))
    # hand-computed TV (sum of |neighbour differences| of all masks) and pixel loss (mean |G(x) - x|)
    x, y = _np(batch["image_a"]), _np(batch["image_b"])
    gx, fy = trainer.generator_ab(batch["image_a"]), trainer.generator_ba(batch["image_b"])

    def tv(a):
        a = _np(a).astype("float64")
        return np.abs(np.diff(a, axis=1)).sum((1, 2, 3)) + np.abs(np.diff(a, axis=2)).sum((1, 2, 3))

    np.testing.assert_allclose(_np(g["g_tv"]), tv(gx["attention"]) + tv(fy["attention"]), rtol=1e-4)
    pixel = np.abs(_np(gx["image"]) - x).mean((1, 2, 3)) + np.abs(_np(fy["image"]) - y).mean((1, 2, 3))
    np.testing.assert_allclose(_np(g["g_pixel"]), pixel, rtol=1e-5)
    lam = cfg.loss
    expected = (
        lam.lambda_adv * g["g_adv"]
        + lam.lambda_cycle * g["g_cycle"]
        + lam.lambda_identity * lam.lambda_cycle * g["g_identity"]
        + lam.lambda_tv * g["g_tv"]
        + lam.lambda_pixel * g["g_pixel"]
    )
    np.testing.assert_allclose(_np(g["g_loss"]), _np(expected), rtol=1e-5)
    np.testing.assert_allclose(_np(d["d_loss"]), _np(d["d_a"] + d["d_b"] + d["d_a_att"] + d["d_b_att"]), rtol=1e-6)
    # g_adv holds both terms: the vanilla D's on the image alone, the attention-guided D's on image + attention
    vanilla = (0.5 * (_np(trainer.discriminator_b(gx["image"])) - 1) ** 2).mean((1, 2, 3)) + (
        0.5 * (_np(trainer.discriminator_a(fy["image"])) - 1) ** 2
    ).mean((1, 2, 3))
    np.testing.assert_allclose(_np(g["g_adv"]) - _np(g["g_adv_att"]), vanilla, rtol=1e-4, atol=1e-6)


def test_learning_rate_is_constant_then_decays_linearly_to_zero():
    trainer = agan.AttentionGAN(tiny_config("attentiongan", "/x", **{"train.steps": 10}))
    schedule = trainer.make_optimizers()["g_optimizer"]._learning_rate
    assert isinstance(schedule, ConstantThenLinearDecay)
    rates = [float(_np(schedule(t))) for t in (0, 4, 5, 6, 8, 10, 12)]
    np.testing.assert_allclose(rates, [2e-4, 2e-4, 2e-4, 1.6e-4, 0.8e-4, 0.0, 0.0], rtol=1e-5, atol=1e-12)
    restored = ConstantThenLinearDecay.from_config(schedule.get_config())
    assert float(_np(restored(8))) == pytest.approx(0.8e-4)
    constant = agan.AttentionGAN(tiny_config("attentiongan", "/x", **{"train.lr_decay_start": 1.0}))
    assert not isinstance(constant.make_optimizers()["g_optimizer"]._learning_rate, ConstantThenLinearDecay)


def test_infer_selects_the_direction_per_example():
    trainer = agan.AttentionGAN(tiny_config("attentiongan", "/x", **{"data.domain_a_value": 1}))
    image = keras.random.uniform((2, 32, 32, 3), -1, 1, seed=5)
    # domain X has Smiling = 1: target 0 -> G (X -> Y), target 1 -> F (Y -> X)
    out = trainer.infer({"image": image, "attributes": ops.convert_to_tensor([[0.0], [1.0]])})
    gx, fy = trainer.generator_ab(image), trainer.generator_ba(image)
    assert tuple(out["attention"].shape) == (2, 32, 32, 3) and tuple(out["content"].shape) == (2, 32, 32, 6)
    for key in ("image", "attention", "content"):
        np.testing.assert_allclose(_np(out[key])[0], _np(gx[key])[0], atol=1e-6)
        np.testing.assert_allclose(_np(out[key])[1], _np(fy[key])[1], atol=1e-6)
    assert not np.allclose(_np(gx["image"])[1], _np(fy["image"])[1])


def test_seeded_train_steps_are_deterministic_scheme1():
    """Two eager train steps of scheme I (the smoke test of scheme I in the default tier): finite, and the same
    losses and pool contents from one seed."""

    def two_steps():
        keras.utils.set_random_seed(0)
        trainer = agan.AttentionGAN(tiny_config("attentiongan", "/x", **{"model.scheme": 1}))
        trainer.compile(optimizers=trainer.make_optimizers())
        trainer.build_trackers(_batch(2))
        logs = [trainer.train_step(_batch(2, seed=s)) for s in (1, 2)]
        pool = _np(trainer.pool_b.images)
        return [{k: float(_np(v)) for k, v in log.items()} for log in logs], pool

    (logs_a, pool_a), (logs_b, pool_b) = two_steps(), two_steps()
    assert logs_a == logs_b and np.array_equal(pool_a, pool_b)
    assert all(np.isfinite(v) for log in logs_a for v in log.values())


@pytest.mark.slow  # ~26 s; tests/contract covers the attention-D variant
def test_smoke_train_and_resume_scheme2_attention_discriminator(synthetic_celeba, tmp_path):
    run_dir = tmp_path / "run"
    overrides = {"model.attention_discriminator": True}
    first = driver.run(tiny_config("attentiongan", synthetic_celeba, **overrides, **{"train.steps": 2}), run_dir)
    assert first["step"] == 2
    assert set(first["logs"]) == {
        "g_adv",
        "g_adv_att",
        "g_cycle",
        "g_identity",
        "g_tv",
        "g_pixel",
        "g_loss",
        "d_a",
        "d_b",
        "d_a_att",
        "d_b_att",
        "d_loss",
    }
    assert all(np.isfinite(v) for v in first["logs"].values())
    assert first["sample_grid"].is_file()
    checkpoint = first["checkpoint"]
    assert {p.name for p in checkpoint.glob("*.weights.h5")} == {
        "generator_ab.weights.h5",
        "generator_ba.weights.h5",
        "discriminator_a.weights.h5",
        "discriminator_b.weights.h5",
        "discriminator_a_att.weights.h5",
        "discriminator_b_att.weights.h5",
    }
    with np.load(checkpoint / "trainer_state.npz") as state:  # step, RNG, pool_a (images, count), pool_b
        assert len(state.files) == 6 and int(state["v3"]) == 4 and state["v2"].shape == (4, 32, 32, 4)
    result = driver.run(tiny_config("attentiongan", synthetic_celeba, **overrides, **{"train.steps": 4}), run_dir)
    assert result["step"] == 4
    assert json.loads((result["checkpoint"] / "state.json").read_text())["step"] == 4
    assert all(np.isfinite(v) for v in result["logs"].values())
    assert (run_dir / "samples" / "step_00000004.png").is_file()


@pytest.mark.slow
def test_smoke_train_scheme1(synthetic_celeba, tmp_path):
    result = driver.run(
        tiny_config("attentiongan", synthetic_celeba, **{"model.scheme": 1, "train.steps": 2}), tmp_path
    )
    assert result["step"] == 2 and all(np.isfinite(v) for v in result["logs"].values())
    assert result["sample_grid"].is_file()
