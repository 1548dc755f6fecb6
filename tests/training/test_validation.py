"""Periodic validation during training (issue 36, time to quality): `train.validation` scores the live networks on a
fixed batch of the val split every N steps, writes `val/...` scalars to logs/scalars.jsonl, and can end the run
when a target is met. Tiny synthetic data."""

import types

import numpy as np
import pytest

from tests.helpers import tiny_config
from tf_faceedit import registry
from tf_faceedit.config import ConfigError
from tf_faceedit.training import callbacks as cb
from tf_faceedit.training import driver, validation


def test_off_by_default_and_validated():
    cfg = tiny_config("sagan", "/x")
    assert cfg.train.validation.every == 0
    with pytest.raises(ConfigError, match="train.validation.stop_at_target"):
        tiny_config("sagan", "/x", **{"train.validation.stop_at_target": True})
    with pytest.raises(ConfigError, match="train.validation.target_metric"):
        tiny_config("sagan", "/x", **{"train.validation.target_metric": "edit_success"})
    with pytest.raises(ConfigError, match="train.validation.every"):
        tiny_config("sagan", "/x", **{"train.validation.every": -1})


def test_run_validates_every_n_steps_and_stops_at_the_target(synthetic_celeba, tmp_path):
    overrides = {
        "train.steps": 6,
        "train.log_every": 1,
        "train.checkpoint_every": 2,
        "train.validation.every": 2,
        "train.validation.num_images": 4,
        "train.validation.target_metric": "val/reconstruction_psnr",
        "train.validation.target_value": 0.0,  # any PSNR: reached at the first validation
        "train.validation.stop_at_target": True,
    }
    result = driver.run(tiny_config("sagan", synthetic_celeba, **overrides), tmp_path / "run")
    assert result["step"] == 2  # stopped at the target, not at train.steps
    assert result["checkpoint"].name == "ckpt-00000002"
    reached = result["validation"]["target_reached"]
    assert reached["step"] == 2 and reached["metric"] == "val/reconstruction_psnr" and reached["train_seconds"] > 0
    scalars = cb.read_scalars_jsonl(tmp_path / "run" / "logs" / "scalars.jsonl")
    assert np.isfinite(scalars[2]["val/reconstruction_psnr"]) and scalars[2]["val/target_reached_step"] == 2
    assert "val/reconstruction_psnr" not in scalars[1]


@pytest.mark.parametrize("method", ["sagan", "attentiongan"])  # attentiongan: a two-domain (unpaired) batch
def test_run_without_a_target_validates_to_the_end(method, synthetic_celeba, tmp_path):
    overrides = {"train.steps": 4, "train.validation.every": 2, "train.validation.num_images": 3}
    result = driver.run(tiny_config(method, synthetic_celeba, **overrides), tmp_path / "run")
    assert result["step"] == 4 and result["validation"]["target_reached"] is None
    scalars = cb.read_scalars_jsonl(tmp_path / "run" / "logs" / "scalars.jsonl")
    assert {step for step, row in scalars.items() if "val/reconstruction_psnr" in row} == {2, 4}
    assert scalars[4]["val/train_seconds"] >= scalars[2]["val/train_seconds"] > 0


class _Judge:
    """Reads an attribute as present where the image's mean is above zero (a stand-in for a classifier run)."""

    attribute_names = ["Smiling", "Eyeglasses", "Male"]

    def predict(self, images):
        bright = (np.asarray(images).mean(axis=(1, 2, 3)) > 0).astype(np.float32)
        return np.stack([bright, bright, 1 - bright], axis=1)


def _batch(cfg, n=3, seed=0):
    rng = np.random.default_rng(seed)
    size, k = cfg.data.image_size, len(cfg.data.attributes)
    return {
        "image": rng.uniform(-1, 1, (n, size, size, 3)).astype(np.float32),
        "attributes": (np.arange(n * k).reshape(n, k) % 2).astype(np.float32),
    }


def test_edit_success_is_the_judges_reading_of_the_flipped_attribute(monkeypatch):
    cfg = tiny_config("sagan", "/x", attributes=["Eyeglasses", "Smiling"])
    trainer = registry.get("sagan").trainer_class(cfg)
    batch = _batch(cfg)
    # the edit: a bright image when the target of the first attribute is 1, else a dark one
    edited = {}

    def infer(inputs):
        target = np.asarray(inputs["attributes"])
        edited["last"] = np.where(target[:, :1, None, None] > 0.5, 0.5, -0.5) * np.ones_like(inputs["image"])
        return {"image": edited["last"]}

    monkeypatch.setattr(trainer, "infer", infer)
    metrics = validation.validation_metrics(trainer, batch, _Judge())
    # Eyeglasses flipped: bright exactly when the target is 1, which the judge reads: all hits
    assert metrics["val/success/Eyeglasses"] == 1.0
    # Smiling flipped: the image follows the unchanged Eyeglasses target, so a hit only where the two agree
    target = 1 - batch["attributes"][:, 1]
    assert metrics["val/success/Smiling"] == pytest.approx(np.mean(batch["attributes"][:, 0] == target))
    assert metrics["val/edit_success"] == pytest.approx(np.mean([1.0, metrics["val/success/Smiling"]]))
    assert np.isfinite(metrics["val/reconstruction_psnr"])
    assert set(validation.validation_metrics(trainer, batch)) == {"val/reconstruction_psnr"}  # no judge


def test_reconstruction_is_the_networks_with_a_residual_edit():
    cfg = tiny_config("fader", "/x")
    trainer = registry.get("fader").trainer_class(cfg)
    batch = _batch(cfg)
    plain = validation.validation_metrics(trainer, batch)["val/reconstruction_psnr"]
    cfg.model.residual_edit = True  # returns the input exactly at its own attributes
    assert validation.validation_metrics(trainer, batch)["val/reconstruction_psnr"] == pytest.approx(plain)
    assert plain < 60 and cfg.model.residual_edit is True  # switched back on after scoring


def test_a_two_domain_batch_is_labelled_by_its_domain():
    cfg = tiny_config("attentiongan", "/x")
    a, b = np.zeros((2, 8, 8, 3), np.float32), np.ones((3, 8, 8, 3), np.float32)
    batch = validation.two_domain_batch({"image_a": a, "image_b": b}, cfg.data)
    column = cfg.data.attributes.index(cfg.data.domain_attribute)
    assert batch["image"].shape == (5, 8, 8, 3) and batch["attributes"].shape == (5, len(cfg.data.attributes))
    value = cfg.data.domain_a_value
    np.testing.assert_array_equal(batch["attributes"][:, column], [value] * 2 + [1 - value] * 3)


def test_completion_reports_the_hole_psnr():
    cfg = tiny_config("pggan_completion", "/x")
    trainer = registry.get("pggan_completion").trainer_class(cfg)
    trainer.set_phase(trainer.phase_at(cfg.train.steps - 1))
    batch = _batch(cfg)
    mask = np.zeros((3, cfg.data.image_size, cfg.data.image_size, 1), np.float32)
    mask[:, 2:6, 2:6] = 1.0
    metrics = validation.validation_metrics(trainer, {**batch, "mask": mask})
    assert set(metrics) == {"val/hole_psnr", "val/psnr"}
    assert metrics["val/psnr"] > metrics["val/hole_psnr"]  # outside the hole the input is kept
    trainer.set_phase(trainer.phase_at(0))  # the first stage (4x4 of 8x8): upsampled to the image size
    early = validation.validation_metrics(trainer, {**batch, "mask": mask})
    assert set(early) == {"val/hole_psnr", "val/psnr"} and np.isfinite(early["val/hole_psnr"])


def test_the_classifier_reports_its_balanced_accuracy_on_the_labels(monkeypatch):
    cfg = tiny_config("classifier", "/x", attributes=["Eyeglasses", "Smiling"])
    trainer = registry.get("classifier").trainer_class(cfg)
    labels = np.array([[1, 0], [0, 0], [1, 1], [0, 1]], np.float32)
    batch = {"image": np.zeros((4, cfg.data.image_size, cfg.data.image_size, 3), np.float32), "attributes": labels}
    # reads Eyeglasses right on every image, Smiling always "yes": TPR 1, TNR 0 -> balanced 0.5
    reading = np.stack([labels[:, 0], np.ones(4)], axis=1).astype(np.float32)
    monkeypatch.setattr(trainer, "infer", lambda inputs: {"probabilities": reading})
    metrics = validation.validation_metrics(trainer, batch)
    assert metrics["val/balanced_accuracy/Eyeglasses"] == 1.0 and metrics["val/balanced_accuracy/Smiling"] == 0.5
    assert metrics["val/balanced_accuracy"] == 0.75 and metrics["val/accuracy"] == pytest.approx(6 / 8)


def test_a_classifier_run_validates_and_stops_at_its_target(synthetic_celeba, tmp_path):
    overrides = {
        "train.steps": 6,
        "train.validation.every": 2,
        "train.validation.num_images": 4,
        "train.validation.target_metric": "val/balanced_accuracy",
        "train.validation.target_value": 0.0,
        "train.validation.stop_at_target": True,
    }
    result = driver.run(tiny_config("classifier", synthetic_celeba, **overrides), tmp_path / "run")
    assert result["step"] == 2 and result["validation"]["target_reached"]["metric"] == "val/balanced_accuracy"
    scalars = cb.read_scalars_jsonl(tmp_path / "run" / "logs" / "scalars.jsonl")
    assert 0.0 <= scalars[2]["val/balanced_accuracy"] <= 1.0


def test_callback_checks_the_target_once_and_stops_only_when_asked():
    config = types.SimpleNamespace(
        every=1, target_metric="val/reconstruction_psnr", target_value=-1.0, stop_at_target=False
    )
    cfg = tiny_config("sagan", "/x")
    trainer = registry.get("sagan").trainer_class(cfg)
    callback = validation.PeriodicValidation(config, _batch(cfg))
    callback.set_model(trainer)
    callback.on_train_begin()
    callback.validate(1)
    callback.validate(2)
    assert callback.reached[0] == 1 and not callback.stop_requested
    assert not getattr(trainer, "stop_training", False)
    assert callback.summary()["target_reached"]["step"] == 1
