import json

import numpy as np
import pytest
from keras import ops

from tests.helpers import tiny_config
from tf_faceedit import registry
from tf_faceedit.config import ConfigError
from tf_faceedit.layers import residual as residual_layer
from tf_faceedit.methods import fader
from tf_faceedit.training import driver


def _np(x):
    return ops.convert_to_numpy(x)


def _batch(n=3, size=32, k=1, seed=0):
    rng = np.random.RandomState(seed)
    return {
        "image": ops.convert_to_tensor(rng.uniform(-1, 1, (n, size, size, 3)).astype("float32")),
        "attributes": ops.convert_to_tensor(rng.randint(0, 2, (n, k)).astype("float32")),
    }


def test_paper_defaults_and_registration():
    cfg = fader.FaderConfig()
    assert registry.get("fader").config_class is fader.FaderConfig
    assert (cfg.data.image_size, cfg.data.attributes) == (256, ["Smiling"])
    assert (cfg.model.encoder_filters, cfg.model.max_filters, cfg.model.lat_dis_fc) == (16, 512, 512)
    assert cfg.model.lat_dis_dropout == 0.3
    assert (cfg.loss.lambda_lat_dis, cfg.loss.lambda_schedule_steps) == (1e-4, 500000)
    assert (cfg.loss.label_smoothing, cfg.loss.clip_grad_norm) == (0.0, 5.0)  # official: lat_dis unsmoothed
    t = cfg.train
    assert (t.batch_size, t.n_critic, t.g_lr, t.d_lr, t.beta_1, t.beta_2) == (32, 1, 2e-4, 2e-4, 0.5, 0.999)
    assert fader.encoder_widths(cfg) == [16, 32, 64, 128, 256, 512, 512]


@pytest.mark.parametrize(
    "assignment, needle",
    [
        ("train.n_critic=2", "train.n_critic"),
        ("loss.lambda_schedule_steps=-1", "loss.lambda_schedule_steps"),
        ("loss.label_smoothing=1.5", "loss.label_smoothing"),
        ("model.lat_dis_dropout=1.0", "model.lat_dis_dropout"),
        ("model.latent_size=3", "model.latent_size"),
        ("model.latent_size=32", "model.latent_size"),
    ],
)
def test_validation_errors(assignment, needle):
    with pytest.raises(ConfigError, match=needle):
        tiny_config("fader", "/x").override(assignment).validate()


@pytest.mark.parametrize("size, k, depth", [(32, 1, 4), (64, 3, 5)])
def test_network_shapes(size, k, depth):
    attrs = ["Smiling", "Male", "Eyeglasses"][:k]
    cfg = tiny_config("fader", "/x", attributes=attrs, **{"data.image_size": size})
    trainer = fader.Fader(cfg)
    batch = _batch(2, size, k)
    latent = trainer.encode(batch["image"])
    assert tuple(latent.shape) == (2, 2, 2, 16)
    assert tuple(trainer.decode(latent, batch["attributes"]).shape) == (2, size, size, 3)
    assert tuple(trainer.lat_dis(latent).shape) == (2, k)
    out = trainer.autoencoder(batch)
    assert tuple(out["image"].shape) == (2, size, size, 3) and np.abs(_np(out["image"])).max() <= 1
    convs = [layer for layer in trainer.encoder.layers if layer.name.startswith("enc_conv")]
    assert [layer.filters for layer in convs] == fader.encoder_widths(cfg)[:depth] and len(convs) == depth
    assert convs[0].norm == "none" and all(layer.norm == "batch" for layer in convs[1:])
    # every decoder conv sees its input plus the 2k one-hot attribute maps
    dec = [trainer.decoder.get_layer(f"dec_conv{i + 1}") for i in range(depth)]
    assert dec[0].input.shape[-1] == 16 + 2 * k
    for prev, layer in zip(dec, dec[1:]):
        assert layer.input.shape[-1] == prev.filters + 2 * k
    assert dec[-1].filters == 3 and dec[-1].activation == "tanh"


def test_latent_size_stops_the_encoder_earlier():
    cfg = tiny_config("fader", "/x", attributes=["Smiling", "Male"], **{"data.image_size": 32, "model.latent_size": 4})
    assert fader.encoder_widths(cfg) == [4, 8, 16]  # one layer fewer than the paper's 2x2 latent at 32
    trainer = fader.Fader(cfg)
    batch = _batch(2, 32, 2)
    latent = trainer.encode(batch["image"])
    assert tuple(latent.shape) == (2, 4, 4, 16)
    assert tuple(trainer.decode(latent, batch["attributes"]).shape) == (2, 32, 32, 3)
    assert tuple(trainer.lat_dis(latent).shape) == (2, 2)
    assert trainer.lat_dis.get_layer("dis_flat").output.shape[-1] == 2 * 2 * cfg.model.max_filters


def test_paper_widths_at_256():
    cfg = tiny_config("fader", "/x", **{"data.image_size": 256, "model.encoder_filters": 16, "model.max_filters": 512})
    assert fader.encoder_widths(cfg) == [16, 32, 64, 128, 256, 512, 512]
    decoder = fader.build_decoder(cfg)
    assert [decoder.get_layer(f"dec_conv{i + 1}").filters for i in range(7)] == [512, 256, 128, 64, 32, 16, 3]


def test_attribute_one_hot_is_a_slider():
    out = fader.AttributeOneHot()(ops.convert_to_tensor([[0.0, 1.0], [0.5, 2.0]]))
    np.testing.assert_allclose(_np(out), [[1, 0, 0, 1], [0.5, 0.5, -1, 2]])


@pytest.mark.parametrize("step, expected", [(0, 0.0), (2, 0.25), (4, 0.5), (10, 0.5)])
def test_lambda_schedule(step, expected):
    cfg = tiny_config("fader", "/x")  # lambda_lat_dis 0.5 over 4 steps
    trainer = fader.Fader(cfg)
    assert float(_np(trainer.lambda_e(step))) == pytest.approx(expected)
    trainer.step.assign(step)
    assert float(_np(trainer.lambda_e())) == pytest.approx(expected)
    losses = trainer.autoencoder_losses(_batch(), None)
    np.testing.assert_allclose(_np(losses["lambda_e"]), [expected] * 3, rtol=1e-6)
    np.testing.assert_allclose(_np(losses["ae_loss"]), _np(losses["ae_rec"] + expected * losses["ae_adv"]), rtol=1e-5)
    paper = fader.FaderConfig().loss
    assert float(
        _np(fader.lambda_schedule(250000, paper.lambda_lat_dis, paper.lambda_schedule_steps))
    ) == pytest.approx(5e-5)
    assert float(_np(fader.lambda_schedule(7, 0.3, 0))) == pytest.approx(0.3)


def test_golden_losses():
    logits = ops.convert_to_tensor([[0.0], [2.0]])
    labels = ops.convert_to_tensor([[1.0], [0.0]])
    # smoothed targets 0.9 / 0.1; BCE(y, z) = softplus(z) - y z
    np.testing.assert_allclose(_np(fader.smooth_labels(labels, 0.2)), [[0.9], [0.1]], rtol=1e-6)
    np.testing.assert_allclose(
        _np(fader.latent_discriminator_loss(labels, logits, 0.2)), [np.log(2.0), np.log1p(np.exp(2.0)) - 0.2], rtol=1e-6
    )
    # the encoder's target is the flipped attribute: 0 for the first, 1 for the second
    np.testing.assert_allclose(
        _np(fader.latent_adversarial_loss(labels, logits)), [np.log(2.0), np.log1p(np.exp(2.0)) - 2.0], rtol=1e-6
    )
    # summed over attributes
    two = fader.latent_discriminator_loss(ops.ones((1, 2)), ops.zeros((1, 2)), 0.0)
    np.testing.assert_allclose(_np(two), [2 * np.log(2.0)], rtol=1e-6)


def test_optimizers_clip_the_global_gradient_norm():
    # the official code clips the global norm of each player's gradients (torch clip_grad_norm over parameters);
    # that each update changes only its player, the other one's BatchNorm statistics included: tests/contract
    optimizers = fader.Fader(tiny_config("fader", "/x")).make_optimizers()
    assert set(optimizers) == {"g_optimizer", "d_optimizer"}
    for optimizer in optimizers.values():
        assert optimizer.global_clipnorm == 5.0 and optimizer.clipnorm is None


def test_interpolate_swap_and_sample_rows():
    trainer = fader.Fader(tiny_config("fader", "/x", attributes=("Smiling", "Male")))
    batch = _batch(3, 32, 2)
    alphas = np.linspace(1 - 2, 2, 4)  # delta = 2: [-1, 0, 1, 2], beyond [0, 1] on both sides
    grid = trainer.interpolate(batch["image"], 1, alphas, batch["attributes"])
    assert tuple(grid.shape) == (4, 3, 32, 32, 3) and np.all(np.isfinite(_np(grid)))
    # alpha = 1 on attribute 1 equals decoding with that attribute set to 1
    target = _np(batch["attributes"]).copy()
    target[:, 1] = 1.0
    np.testing.assert_allclose(_np(grid[2]), _np(trainer.decode(trainer.encode(batch["image"]), target)), atol=1e-6)
    assert not np.allclose(_np(grid[0]), _np(grid[3]))
    with pytest.raises(ValueError, match="attribute_index"):
        trainer.interpolate(batch["image"], 2, [0.0])
    swapped = trainer.swap(batch["image"], batch["attributes"])
    np.testing.assert_allclose(
        _np(swapped), _np(trainer.decode(trainer.encode(batch["image"]), 1.0 - _np(batch["attributes"]))), atol=1e-6
    )
    rows = trainer.sample_rows(batch)
    assert [name for name, _ in rows] == ["input", "reconstruction"] + [
        f"{a}={v}" for a in ("Smiling", "Male") for v in ("0", "0.5", "1", "1.5")
    ]
    assert all(tuple(images.shape) == (3, 32, 32, 3) for _, images in rows)


def test_residual_edit_adds_only_the_sliders_change():
    plain = fader.Fader(tiny_config("fader", "/x", attributes=("Smiling", "Male")))
    cfg = tiny_config("fader", "/x", attributes=("Smiling", "Male"), **{"model.residual_edit": True})
    residual = fader.Fader(cfg)
    residual.autoencoder.set_weights(plain.autoencoder.get_weights())
    batch = _batch(4, 32, 2)
    images, latent = batch["image"], plain.encode(batch["image"])
    source = _np(residual.source_attributes(images, latent))
    # the source is the {0, 1} corner whose decode is nearest to each image
    corners = [np.array([[a, b]] * 4, np.float32) for a in (0.0, 1.0) for b in (0.0, 1.0)]
    errors = np.stack([np.abs(_np(plain.decode(latent, c)) - _np(images)).mean(axis=(1, 2, 3)) for c in corners], 1)
    np.testing.assert_array_equal(source, np.stack(corners)[errors.argmin(axis=1), 0])
    # to its own attributes the edit returns the input; to others, the input plus the change of the decodes
    own = residual.infer({"image": images, "attributes": source})["image"]
    np.testing.assert_allclose(_np(own), _np(images), atol=1e-5)
    target = 1.0 - source
    change = _np(plain.decode(latent, target)) - _np(plain.decode(latent, source))
    edited = residual.infer({"image": images, "attributes": target})["image"]
    np.testing.assert_allclose(_np(edited), np.clip(_np(images) + change, -1, 1), atol=1e-5)
    assert not np.allclose(_np(edited), _np(plain.infer({"image": images, "attributes": target})["image"]))
    with pytest.raises(ConfigError, match="model.residual_edit"):
        tiny_config("fader", "/x", attributes=("A", "B", "C", "D", "E"), **{"model.residual_edit": True}).validate()
    # with the high-pass, the change loses its low-frequency chroma (tf_faceedit.layers.residual)
    cfg.model.residual_highpass_sigma = 4.0
    filtered = _np(residual.infer({"image": images, "attributes": target})["image"])
    expected = _np(residual_layer.residual_edit(images, images + change, images, 1.0, 4.0, "chroma"))
    np.testing.assert_allclose(filtered, expected, atol=1e-5)
    assert not np.allclose(filtered, _np(edited), atol=1e-3)


def test_smoke_train_and_resume_continues_the_schedule(synthetic_celeba, tmp_path):
    run_dir = tmp_path / "run"
    first = driver.run(tiny_config("fader", synthetic_celeba, **{"train.steps": 2}), run_dir)
    assert first["step"] == 2
    assert set(first["logs"]) == {"lat_dis_loss", "lat_dis_acc", "ae_rec", "ae_adv", "lambda_e", "ae_loss"}
    assert all(np.isfinite(v) for v in first["logs"].values())
    # steps 0 and 1 ran at lambda_E = 0.5 * (0/4, 1/4): their mean is logged
    assert first["logs"]["lambda_e"] == pytest.approx(0.0625)
    assert first["sample_grid"].is_file()
    result = driver.run(tiny_config("fader", synthetic_celeba, **{"train.steps": 4}), run_dir)
    assert result["step"] == 4
    assert json.loads((result["checkpoint"] / "state.json").read_text())["step"] == 4
    # resumed at step 2: steps 2 and 3 ran at 0.5 * (2/4, 3/4)
    assert result["logs"]["lambda_e"] == pytest.approx(0.3125)
    assert all(np.isfinite(v) for v in result["logs"].values())
    assert (run_dir / "samples" / "step_00000004.png").is_file()
