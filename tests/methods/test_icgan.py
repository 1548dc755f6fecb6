import json
import re

import numpy as np
import pytest
from keras import ops

from tests.helpers import tiny_config
from tf_faceedit import registry
from tf_faceedit.errors import ConfigError, TrainingError
from tf_faceedit.methods import icgan
from tf_faceedit.training import driver

K = 2


def _np(x):
    return ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def trainer():
    return icgan.IcGAN(tiny_config("icgan", "/x"))


# -- config --------------------------------------------------------------------------------------------------------


def test_paper_defaults_and_registry():
    cfg = icgan.IcGANConfig()
    m = cfg.model
    assert (m.z_dim, m.g_filters, m.d_filters, m.encoder_filters, m.ez_fc, m.ey_fc) == (100, 512, 64, 32, 4096, 512)
    assert (cfg.data.image_size, cfg.train.batch_size, cfg.loss.adversarial, cfg.train.phase) == (64, 64, "gan", "all")
    assert cfg.train.steps == cfg.train.cgan_steps + cfg.train.encoder_steps
    assert registry.get("icgan").trainer_class is icgan.IcGAN


@pytest.mark.parametrize(
    "assignment, needle",
    [
        ("train.phase=both", "train.phase must be one of"),
        ("train.cgan_steps=0", "train.cgan_steps must be >= 1"),
        ("train.steps=5", "train.steps must be <= train.cgan_steps + train.encoder_steps = 4"),
        ("train.phase=encoders,train.steps=2", "train.steps must be > train.cgan_steps (2) with train.phase"),
        ("data.image_size=8", "data.image_size must be a power of two >= 16 for IcGAN, got 8"),
    ],
)
def test_validation_errors(assignment, needle):
    cfg = tiny_config("icgan", "/x").apply_overrides(assignment.split(","))
    with pytest.raises(ConfigError, match=re.escape(needle)):
        cfg.validate()


def test_phases_follow_the_setting():
    def phases(**overrides):
        trainer = icgan.IcGAN(tiny_config("icgan", "/x", **overrides))
        return [(p.name, p.start_step, p.end_step) for p in trainer.phases()]

    assert phases() == [("cgan", 0, 2), ("encoders", 2, 4)]
    assert phases(**{"train.phase": "cgan"}) == [("cgan", 0, 2)]
    assert phases(**{"train.phase": "encoders"}) == [("encoders", 2, 4)]
    assert phases(**{"train.phase": "encoders", "train.steps": 3}) == [("encoders", 2, 3)]
    assert phases(**{"train.steps": 3}) == [("cgan", 0, 2), ("encoders", 2, 3)]
    assert phases(**{"train.steps": 1}) == [("cgan", 0, 1)]


# -- networks ------------------------------------------------------------------------------------------------------


def test_network_shapes(trainer):
    rng = np.random.RandomState(0)
    x = rng.uniform(-1, 1, (3, 16, 16, 3)).astype("float32")
    y = rng.randint(0, 2, (3, K)).astype("float32")
    z = rng.normal(size=(3, 8)).astype("float32")
    image = _np(trainer.generate(z, y))
    assert image.shape == (3, 16, 16, 3) and np.abs(image).max() <= 1.0
    assert tuple(trainer.discriminate(x, y).shape) == (3, 1)
    z_hat, y_logits = trainer.encode(x)
    assert tuple(z_hat.shape) == (3, 8) and tuple(y_logits.shape) == (3, K)
    assert tuple(trainer.edit(x, y).shape) == (3, 16, 16, 3)
    assert tuple(trainer.reconstruct(x).shape) == (3, 16, 16, 3)
    assert set(np.unique(_np(trainer.predict_attributes(x)))) <= {0.0, 1.0}


def test_residual_edit_adds_only_the_change_of_the_attributes(trainer):
    residual = icgan.IcGAN(tiny_config("icgan", "/x", **{"model.residual_edit": True}))
    for name in ("generator", "encoder_z", "encoder_y"):
        getattr(residual, name).set_weights(getattr(trainer, name).get_weights())
    x = np.random.RandomState(1).uniform(-1, 1, (3, 16, 16, 3)).astype("float32")
    own = _np(trainer.predict_attributes(x))
    np.testing.assert_allclose(_np(residual.infer({"image": x, "attributes": own})["image"]), x, atol=1e-5)
    target = 1.0 - own
    change = _np(trainer.edit(x, target)) - _np(trainer.reconstruct(x))
    edited = _np(residual.infer({"image": x, "attributes": target})["image"])
    np.testing.assert_allclose(edited, np.clip(x + change, -1, 1), atol=1e-5)
    assert not np.allclose(edited, _np(trainer.infer({"image": x, "attributes": target})["image"]))


def test_refine_latent_brings_the_reconstruction_nearer_each_face(trainer):
    rng = np.random.RandomState(2)
    x = rng.uniform(-1, 1, (3, 16, 16, 3)).astype("float32")
    y = _np(trainer.predict_attributes(x))
    z0 = _np(trainer.encoder_z(x, training=False))

    def error(z):
        return np.abs(_np(trainer.generate(z, y)) - x).mean(axis=(1, 2, 3))

    z = _np(trainer.refine_latent(x, z0, y, steps=20, lr=0.05))
    assert np.all(error(z) < error(z0))
    # each face's z follows its own loss: changing face 2 leaves the z of faces 0 and 1 as they were
    other = x.copy()
    other[2] = -other[2]
    z_other = _np(trainer.refine_latent(other, z0, y, steps=20, lr=0.05))
    np.testing.assert_allclose(z_other[:2], z[:2], atol=1e-5)
    assert not np.allclose(z_other[2], z[2])
    refined = icgan.IcGAN(tiny_config("icgan", "/x", **{"model.refine_steps": 3}))
    for name in ("generator", "encoder_z", "encoder_y"):
        getattr(refined, name).set_weights(getattr(trainer, name).get_weights())
    out = refined.infer({"image": x, "attributes": y})
    np.testing.assert_allclose(_np(out["latent"]), _np(trainer.refine_latent(x, z0, y, steps=3, lr=0.05)), atol=1e-5)
    with pytest.raises(ConfigError, match="model.refine_steps"):
        tiny_config("icgan", "/x", **{"model.refine_steps": -1}).validate()


def test_paper_widths_at_64():
    t = icgan.IcGAN(icgan.IcGANConfig())
    widths = [layer.filters for layer in t.generator.layers if hasattr(layer, "filters")]
    assert widths == [512, 256, 128, 64, 3]
    widths = [layer.filters for layer in t.discriminator.layers if hasattr(layer, "filters")]
    assert widths == [64, 128, 256, 512, 1]
    assert t.encoder_z.get_layer("ez_fc").units == 4096 and t.encoder_y.get_layer("ey_fc").units == 512
    assert [t.encoder_z.get_layer(f"ez_conv{i}").filters for i in range(1, 5)] == [32, 64, 128, 256]
    assert t.encoder_z.output_shape == (None, 100) and t.encoder_y.output_shape == (None, 4)


def test_discriminator_uses_the_labels(trainer):
    x = np.random.RandomState(1).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    a = _np(trainer.discriminate(x, np.zeros((2, K), "float32")))
    b = _np(trainer.discriminate(x, np.ones((2, K), "float32")))
    assert np.abs(a - b).max() > 1e-6


# -- losses --------------------------------------------------------------------------------------------------------


def test_ez_loss_golden():
    z = np.array([[1.0, 2.0, 0.0, -1.0], [0.0, 0.0, 0.0, 0.0]], "float32")
    z_pred = np.array([[0.0, 2.0, 2.0, -1.0], [1.0, 1.0, 1.0, 1.0]], "float32")
    np.testing.assert_allclose(_np(icgan.ez_loss(z, z_pred)), [(1 + 0 + 4 + 0) / 4, 1.0], rtol=1e-6)


def test_discriminator_loss_golden():
    """With a constant-logit D the losses are closed-form: softplus(-l) + softplus(l) for each pair."""
    cfg = tiny_config("icgan", "/x")
    t = icgan.IcGAN(cfg)
    for v in t.discriminator.trainable_variables:
        v.assign(np.zeros(v.shape, "float32"))  # D(x, y) = 0 for every input
    batch = t.prepare_batch(
        {"image": np.zeros((2, 16, 16, 3), "float32"), "attributes": np.array([[0, 1], [1, 1]], "float32")},
        t.seed_generator,
    )
    losses = t.discriminator_losses(batch, t.seed_generator)
    np.testing.assert_allclose(_np(losses["d_loss"]), [2 * np.log(2)] * 2, rtol=1e-5)
    np.testing.assert_allclose(_np(t.generator_losses(batch, t.seed_generator)["g_loss"]), [np.log(2)] * 2, rtol=1e-5)
    # the wrong labels differ from the real ones in exactly one attribute
    assert np.all(np.abs(_np(batch["wrong_attributes"]) - _np(batch["attributes"])).sum(-1) == 1)


# -- training ------------------------------------------------------------------------------------------------------


def _states(model_dir):
    return {p.parent.name: json.loads(p.read_text()) for p in (model_dir / "checkpoints").glob("*/state.json")}


def test_smoke_train_both_phases(synthetic_celeba, tmp_path):
    cfg = tiny_config("icgan", synthetic_celeba, **{"train.keep_checkpoints": 5})
    result = driver.run(cfg, tmp_path)
    assert result["step"] == 4
    assert all(np.isfinite(v) for v in result["logs"].values())
    assert set(result["logs"]) == {"e_z", "e_y", "e_loss"}  # the encoder phase logs only its own losses
    phases = {s["step"]: s["phase"] for s in _states(tmp_path).values()}
    assert phases[2] == "cgan" and phases[4] == "encoders"
    assert str(result["sample_grid"]).endswith(".png") and (tmp_path / "samples").is_dir()
    assert len(list((tmp_path / "samples").glob("*.png"))) >= 2


@pytest.mark.slow  # ~7 s; tests/contract checks exact resume
def test_resume_inside_the_encoder_phase(synthetic_celeba, tmp_path):
    cfg = tiny_config("icgan", synthetic_celeba, **{"train.encoder_steps": 4, "train.steps": 6})
    first = driver.run(cfg.override("train.steps=4").validate(), tmp_path)
    assert first["step"] == 4 and set(first["logs"]) == {"e_z", "e_y", "e_loss"}
    second = driver.run(cfg, tmp_path)
    assert second["step"] == 6 and set(second["logs"]) == {"e_z", "e_y", "e_loss"}
    phases = {s["step"]: s["phase"] for s in _states(tmp_path).values()}
    assert phases == {2: "cgan", 4: "encoders", 6: "encoders"}


def test_phase_cgan_stops_after_the_cgan_phase(synthetic_celeba, tmp_path):
    cfg = tiny_config("icgan", synthetic_celeba, **{"train.phase": "cgan"})
    result = driver.run(cfg, tmp_path)
    assert result["step"] == 2 and set(result["logs"]) == {"d_adv", "d_wrong", "d_loss", "g_adv", "g_loss"}
    assert {s["phase"] for s in _states(tmp_path).values()} == {"cgan"}
    # the same model_dir then goes on with the encoders (train.phase is a resumable field)
    result = driver.run(cfg.override("train.phase=encoders"), tmp_path)
    assert result["step"] == 4 and set(result["logs"]) == {"e_z", "e_y", "e_loss"}
    assert "encoders" in {s["phase"] for s in _states(tmp_path).values()}


def test_phase_encoders_needs_a_trained_cgan(synthetic_celeba, tmp_path):
    cfg = tiny_config("icgan", synthetic_celeba, **{"train.phase": "encoders"})
    with pytest.raises(TrainingError, match="train.phase=encoders needs a cGAN trained"):
        driver.run(cfg, tmp_path)
