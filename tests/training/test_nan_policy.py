"""A non-finite loss: `train.nan_policy=stop` raises naming the loss and the step and keeps the last good
checkpoint; `rollback` restores that checkpoint, lowers the learning rates and finishes the run.

The NaN is injected into SaGAN's generator total from step 4 on, but only while the generator's learning rate is
above 1.5e-4: a rollback that halves it (2e-4 -> 1e-4) gets past it, one that multiplies it by 0.9 does not."""

import logging

import keras
import numpy as np
import pytest

from tests.helpers import tiny_config
from tf_faceedit.errors import TrainingError
from tf_faceedit.methods.sagan import SaGAN
from tf_faceedit.training import driver
from tf_faceedit.training.callbacks import read_scalars_jsonl

ops = keras.ops


@pytest.fixture
def poisoned_generator_loss(monkeypatch):
    original = SaGAN.generator_losses

    def poisoned(self, batch, seed):
        losses = original(self, batch, seed)
        bad = ops.logical_and(ops.greater_equal(self.step, 3), ops.greater(self.g_optimizer.learning_rate, 1.5e-4))
        losses["g_loss"] = ops.where(bad, ops.full_like(losses["g_loss"], float("nan")), losses["g_loss"])
        return losses

    monkeypatch.setattr(SaGAN, "generator_losses", poisoned)


def _cfg(data_dir, **overrides):
    values = {
        "data.image_size": 16,
        "train.n_critic": 1,
        "train.steps": 6,
        "train.log_every": 1,
        "train.checkpoint_every": 2,
        "train.sample_every": 100,
        "train.strategy": "default",
        "train.g_lr": 2e-4,
        "train.d_lr": 2e-4,
    }
    return tiny_config("sagan", data_dir, **{**values, **overrides})


def _checkpoint_steps(model_dir):
    return sorted(int(p.name[5:]) for p in (model_dir / "checkpoints").glob("ckpt-????????"))


def _saved_learning_rates(checkpoint):
    # the Adam learning rate is one of the optimizer variables: the one equal to a configured rate's multiple
    with np.load(checkpoint / "optimizers.npz") as arrays:
        return {
            key: float(arrays[key]) for key in arrays.files if arrays[key].shape == () and arrays[key].dtype.kind == "f"
        }


def test_stop_names_the_loss_and_step_and_keeps_last_good_checkpoint(
    synthetic_celeba, tmp_path, poisoned_generator_loss
):
    with pytest.raises(TrainingError, match=r"non-finite loss g_loss=nan at step 4;.*ckpt-00000002"):
        driver.run(_cfg(synthetic_celeba, **{"train.nan_policy": "stop"}), tmp_path)
    assert _checkpoint_steps(tmp_path) == [2]
    assert not (tmp_path / ".lock").exists()
    # the kept checkpoint is good: it restores, and its weights are finite
    cfg = _cfg(synthetic_celeba)
    trainer = SaGAN(cfg)
    trainer.compile(optimizers=trainer.make_optimizers())
    from tf_faceedit.training.checkpoint import CheckpointManager

    assert CheckpointManager(tmp_path / "checkpoints", trainer).restore()["step"] == 2
    assert all(np.all(np.isfinite(ops.convert_to_numpy(w))) for w in trainer.generator.weights)


@pytest.mark.slow
def test_rollback_lowers_learning_rates_and_finishes(synthetic_celeba, tmp_path, poisoned_generator_loss, caplog):
    cfg = _cfg(synthetic_celeba, **{"train.nan_policy": "rollback", "train.nan_lr_factor": 0.5})
    with caplog.at_level(logging.WARNING):
        result = driver.run(cfg, tmp_path)
    assert result["step"] == 6 and _checkpoint_steps(tmp_path)[-1] == 6
    assert any("g_loss=nan at step 4: rolled back to step 2" in r.getMessage() for r in caplog.records)
    scalars = read_scalars_jsonl(tmp_path / "logs" / "scalars.jsonl")
    assert sorted(scalars) == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(v) for row in scalars.values() for v in row.values())  # step 4 re-ran after the NaN
    # the halved rates are in the last checkpoint (so a later resume keeps them); before the NaN they were 2e-4
    assert sorted(
        set(np.round(list(_saved_learning_rates(tmp_path / "checkpoints" / "ckpt-00000002").values()), 9))
    ) == [2e-4]
    last = _saved_learning_rates(tmp_path / "checkpoints" / "ckpt-00000006")
    assert sorted(set(np.round(list(last.values()), 9))) == [1e-4], last


@pytest.mark.slow
def test_rollback_gives_up_after_nan_max_rollbacks(synthetic_celeba, tmp_path, poisoned_generator_loss):
    cfg = _cfg(
        synthetic_celeba, **{"train.nan_policy": "rollback", "train.nan_lr_factor": 0.9, "train.nan_max_rollbacks": 1}
    )
    with pytest.raises(TrainingError, match="non-finite loss g_loss=nan at step 4"):
        driver.run(cfg, tmp_path)
    assert _checkpoint_steps(tmp_path) == [2]


def test_nan_policy_is_validated(synthetic_celeba):
    from tf_faceedit.errors import ConfigError

    with pytest.raises(ConfigError, match="train.nan_policy"):
        _cfg(synthetic_celeba, **{"train.nan_policy": "ignore"})
    with pytest.raises(ConfigError, match="train.nan_lr_factor"):
        _cfg(synthetic_celeba, **{"train.nan_lr_factor": 0})
