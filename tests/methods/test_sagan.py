import keras
import numpy as np
import pytest
from keras import ops

from tests.helpers import tiny_sagan_config
from tf_faceedit.methods import sagan


@pytest.mark.parametrize("size, k, n_convs", [(32, 1, 4), (64, 3, 5)])
def test_network_shapes(size, k, n_convs):
    attrs = ["Eyeglasses", "Smiling", "Male"][:k]
    cfg = tiny_sagan_config("/x", attributes=attrs, **{"data.image_size": size})
    g, d = sagan.build_generator(cfg), sagan.build_discriminator(cfg)
    x = keras.random.uniform((2, size, size, 3), -1, 1, seed=1)
    c = ops.convert_to_tensor(np.random.RandomState(0).randint(0, 2, (2, k)).astype("float32"))
    out = g({"image": x, "attributes": c})
    assert tuple(out["image"].shape) == (2, size, size, 3)
    assert tuple(out["attention"].shape) == (2, size, size, 1)
    assert tuple(out["edited"].shape) == (2, size, size, 3)
    d_out = d(x)
    assert tuple(d_out["src"].shape) == (2, 2, 2, 1)
    assert tuple(d_out["cls"].shape) == (2, k)
    assert len([layer for layer in d.layers if layer.name.startswith("d_conv")]) == n_convs
    # the SAN sees the attributes only when several are edited by one model
    assert sagan.san_uses_attributes(cfg) == (k > 1)


def test_paper_discriminator_at_128():
    cfg = tiny_sagan_config("/x", **{"data.image_size": 128, "model.d_filters": 32, "model.d_max_filters": 1024})
    d = sagan.build_discriminator(cfg)
    convs = [layer for layer in d.layers if layer.name.startswith("d_conv")]
    assert [layer.filters for layer in convs] == [32, 64, 128, 256, 512, 1024]


def test_output_is_attention_blend():
    cfg = tiny_sagan_config("/x")
    g = sagan.build_generator(cfg)
    x = keras.random.uniform((2, 32, 32, 3), -1, 1, seed=2)
    out = g({"image": x, "attributes": ops.ones((2, 1))})
    b = ops.convert_to_numpy(out["attention"])
    expected = ops.convert_to_numpy(out["edited"]) * b + ops.convert_to_numpy(x) * (1 - b)
    np.testing.assert_allclose(ops.convert_to_numpy(out["image"]), expected, atol=1e-6)
    assert b.min() >= 0 and b.max() <= 1
    assert np.abs(ops.convert_to_numpy(out["edited"])).max() <= 1


def test_generator_saves_and_loads_without_custom_objects(tmp_path):
    cfg = tiny_sagan_config("/x", attributes=("Eyeglasses", "Smiling"))
    g = sagan.build_generator(cfg)
    path = tmp_path / "g.keras"
    g.save(path)
    loaded = keras.models.load_model(path)
    inputs = {"image": keras.random.uniform((2, 32, 32, 3), -1, 1, seed=4), "attributes": ops.ones((2, 2))}
    for key in ("image", "attention", "edited"):
        np.testing.assert_allclose(ops.convert_to_numpy(g(inputs)[key]), ops.convert_to_numpy(loaded(inputs)[key]),
                                   atol=1e-6)


def test_loss_dicts_are_per_example_and_finite():
    cfg = tiny_sagan_config("/x", attributes=("Eyeglasses", "Smiling"))
    trainer = sagan.SaGAN(cfg)
    rng = np.random.RandomState(0)
    batch = {"image": ops.convert_to_tensor(rng.uniform(-1, 1, (3, 32, 32, 3)).astype("float32")),
             "attributes": ops.convert_to_tensor(rng.randint(0, 2, (3, 2)).astype("float32"))}
    batch = trainer.prepare_batch(batch, trainer.seed_generator)
    d = trainer.discriminator_losses(batch, trainer.seed_generator)
    g = trainer.generator_losses(batch, trainer.seed_generator)
    assert set(d) == {"d_adv", "d_cls", "d_gp", "d_loss"}
    assert set(g) == {"g_adv", "g_cls", "g_rec_cycle", "g_rec_id", "g_loss"}
    for value in list(d.values()) + list(g.values()):
        assert tuple(value.shape) == (3,)
        assert np.all(np.isfinite(ops.convert_to_numpy(value)))
    # the totals are the configured weighted sums
    lam = cfg.loss
    np.testing.assert_allclose(
        ops.convert_to_numpy(g["g_loss"]),
        ops.convert_to_numpy(g["g_adv"] + lam.lambda_cls * g["g_cls"] + lam.lambda_rec_cycle * g["g_rec_cycle"]
                             + lam.lambda_rec_id * g["g_rec_id"]), rtol=1e-5)


def test_sample_rows_layout():
    cfg = tiny_sagan_config("/x", attributes=("Eyeglasses", "Smiling"))
    trainer = sagan.SaGAN(cfg)
    batch = {"image": keras.random.uniform((3, 32, 32, 3), -1, 1, seed=5), "attributes": ops.zeros((3, 2))}
    rows = trainer.sample_rows(batch)
    assert [name for name, _ in rows] == ["input", "Eyeglasses flipped", "Eyeglasses attention",
                                          "Smiling flipped", "Smiling attention"]
    assert tuple(rows[2][1].shape) == (3, 32, 32, 1)


def test_critic_follows_the_reference_implementation():
    # elvisyjlin/SpatialAttentionGAN: LeakyReLU(0.2) after every conv, biased src/cls convs
    cfg = sagan.SaGANConfig()
    assert cfg.model.d_negative_slope == pytest.approx(0.2) and cfg.model.d_head_bias
    d = sagan.build_discriminator(tiny_sagan_config("/x"))
    slopes = [float(layer.act.negative_slope) for layer in d.layers if layer.name.startswith("d_conv")]
    assert slopes and np.allclose(slopes, 0.2)
    for name in ("d_src", "d_cls"):
        assert len(d.get_layer(name).trainable_weights) == 2  # kernel and bias
    unbiased = sagan.build_discriminator(tiny_sagan_config("/x", **{"model.d_head_bias": False}))
    assert len(unbiased.get_layer("d_src").trainable_weights) == 1
