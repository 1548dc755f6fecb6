import keras
import numpy as np
import pytest
from keras import ops

from tests.helpers import tiny_config
from tf_faceedit.methods import sagan


@pytest.mark.parametrize("size, k, n_convs", [(32, 1, 4), (64, 3, 5)])
def test_discriminator_depth_and_san_conditioning(size, k, n_convs):
    """One stride-2 critic conv per halving down to 2x2 (the output shapes: tests/contract), and the SAN sees the
    attributes only when one model edits several."""
    cfg = tiny_config("sagan", "/x", attributes=["Eyeglasses", "Smiling", "Male"][:k], **{"data.image_size": size})
    d = sagan.build_discriminator(cfg)
    assert len([layer for layer in d.layers if layer.name.startswith("d_conv")]) == n_convs
    assert tuple(d.output["src"].shape) == (None, 2, 2, 1) and tuple(d.output["cls"].shape) == (None, k)
    assert sagan.san_uses_attributes(cfg) == (k > 1)


def test_paper_discriminator_at_128():
    cfg = tiny_config("sagan", "/x", **{"data.image_size": 128, "model.d_filters": 32, "model.d_max_filters": 1024})
    d = sagan.build_discriminator(cfg)
    convs = [layer for layer in d.layers if layer.name.startswith("d_conv")]
    assert [layer.filters for layer in convs] == [32, 64, 128, 256, 512, 1024]


def test_reference_depth_critic_at_64():
    """`model.d_layers=6` at 64^2 is the reference implementation's critic: 6 stride-2 convs down to a 1x1 map, a 1x1
    cls kernel, and its parameter count (11,187,682: the 6 convs, the 3x3 src head, the 1x1 cls head, all biased);
    the default depth stops a layer earlier (2x2 last map)."""
    paper = {"data.image_size": 64, "model.d_filters": 32, "model.d_max_filters": 1024}
    d = sagan.build_discriminator(tiny_config("sagan", "/x", **paper, **{"model.d_layers": 6}))
    convs = [layer for layer in d.layers if layer.name.startswith("d_conv")]
    assert [layer.filters for layer in convs] == [32, 64, 128, 256, 512, 1024]
    assert tuple(d.output["src"].shape) == (None, 1, 1, 1) and tuple(d.output["cls"].shape) == (None, 1)
    assert d.count_params() == 11_187_682
    default = sagan.build_discriminator(tiny_config("sagan", "/x", **paper))
    assert tuple(default.output["src"].shape) == (None, 2, 2, 1) and default.count_params() < 3_000_000
    with pytest.raises(ValueError, match="model.d_layers"):
        tiny_config("sagan", "/x", **paper, **{"model.d_layers": 7})


def test_output_is_attention_blend():
    cfg = tiny_config("sagan", "/x")
    g = sagan.build_generator(cfg)
    x = keras.random.uniform((2, 32, 32, 3), -1, 1, seed=2)
    out = g({"image": x, "attributes": ops.ones((2, 1))})
    b = ops.convert_to_numpy(out["attention"])
    expected = ops.convert_to_numpy(out["edited"]) * b + ops.convert_to_numpy(x) * (1 - b)
    np.testing.assert_allclose(ops.convert_to_numpy(out["image"]), expected, atol=1e-6)
    assert b.min() >= 0 and b.max() <= 1
    assert np.abs(ops.convert_to_numpy(out["edited"])).max() <= 1


def test_generator_total_is_the_configured_weighted_sum():
    cfg = tiny_config(
        "sagan",
        "/x",
        attributes=("Eyeglasses", "Smiling"),
        **{"loss.lambda_cls": 2.0, "loss.lambda_rec_cycle": 3.0, "loss.lambda_rec_id": 5.0},
    )
    trainer = sagan.SaGAN(cfg)
    rng = np.random.RandomState(0)
    batch = {
        "image": ops.convert_to_tensor(rng.uniform(-1, 1, (3, 32, 32, 3)).astype("float32")),
        "attributes": ops.convert_to_tensor(rng.randint(0, 2, (3, 2)).astype("float32")),
    }
    g = trainer.generator_losses(trainer.prepare_batch(batch, trainer.seed_generator), trainer.seed_generator)
    np.testing.assert_allclose(
        ops.convert_to_numpy(g["g_loss"]),
        ops.convert_to_numpy(g["g_adv"] + 2.0 * g["g_cls"] + 3.0 * g["g_rec_cycle"] + 5.0 * g["g_rec_id"]),
        rtol=1e-5,
    )


def test_sample_rows_layout():
    cfg = tiny_config("sagan", "/x", attributes=("Eyeglasses", "Smiling"))
    trainer = sagan.SaGAN(cfg)
    batch = {"image": keras.random.uniform((3, 32, 32, 3), -1, 1, seed=5), "attributes": ops.zeros((3, 2))}
    rows = trainer.sample_rows(batch)
    assert [name for name, _ in rows] == [
        "input",
        "Eyeglasses flipped",
        "Eyeglasses attention",
        "Smiling flipped",
        "Smiling attention",
    ]
    assert tuple(rows[2][1].shape) == (3, 32, 32, 1)


def test_critic_follows_the_reference_implementation():
    # elvisyjlin/SpatialAttentionGAN: LeakyReLU(0.2) after every conv, biased src/cls convs
    cfg = sagan.SaGANConfig()
    assert cfg.model.d_negative_slope == pytest.approx(0.2) and cfg.model.d_head_bias
    d = sagan.build_discriminator(tiny_config("sagan", "/x"))
    slopes = [float(layer.act.negative_slope) for layer in d.layers if layer.name.startswith("d_conv")]
    assert slopes and np.allclose(slopes, 0.2)
    for name in ("d_src", "d_cls"):
        assert len(d.get_layer(name).trainable_weights) == 2  # kernel and bias
    unbiased = sagan.build_discriminator(tiny_config("sagan", "/x", **{"model.d_head_bias": False}))
    assert len(unbiased.get_layer("d_src").trainable_weights) == 1


@pytest.mark.parametrize("k", [1, 2])
def test_generator_update_sharing_the_san_pass_gives_the_same_losses_and_gradients(k):
    """With an image-only SAN (K = 1) the generator update runs SAN(I) once for G(I, c_t) and G(I, c)
    (`edit_both`); its losses and gradients equal those of the separate generator calls, and the shared views add
    no weights. With K > 1 the SAN reads the attributes and nothing is shared."""
    import tensorflow as tf

    cfg = tiny_config("sagan", "/x", attributes=["Eyeglasses", "Smiling"][:k])
    trainer = sagan.SaGAN(cfg)
    assert (trainer._halves is None) == (k > 1)
    if k > 1:
        return
    generator_weights = {id(w) for w in trainer.generator.weights}
    assert {id(w) for w in trainer._halves.amn.weights + trainer._halves.san.weights} <= generator_weights
    assert len(trainer._halves.amn.weights) + len(trainer._halves.san.weights) == len(generator_weights)
    rng = np.random.RandomState(0)
    batch = {
        "image": tf.constant(rng.uniform(-1, 1, (3, 32, 32, 3)), tf.float32),
        "attributes": tf.constant([[0.0], [1.0], [0.0]]),
    }
    batch = trainer.prepare_batch(batch, 0)
    variables = trainer.generator.trainable_variables

    def losses_and_gradients():
        with tf.GradientTape() as tape:
            losses = trainer.generator_losses(batch, 0)
            total = tf.reduce_mean(losses["g_loss"])
        gradients = tape.gradient(total, variables)
        return {name: value.numpy() for name, value in losses.items()}, [g.numpy() for g in gradients]

    shared_losses, shared_grads = losses_and_gradients()
    trainer._halves = None  # the two separate generator calls
    losses, grads = losses_and_gradients()
    for name in losses:
        np.testing.assert_allclose(shared_losses[name], losses[name], rtol=1e-5, atol=1e-6, err_msg=name)
    scale = max(np.abs(g).max() for g in grads)  # float noise on gradients that are 0 in exact arithmetic
    for shared, separate in zip(shared_grads, grads):
        np.testing.assert_allclose(shared, separate, rtol=1e-4, atol=1e-4 * scale)
    san = [g for v, g in zip(variables, grads) if v.path.startswith("san_")]
    assert san and max(np.abs(g).max() for g in san) > 0  # the shared SAN pass gets a gradient: the test can fail
