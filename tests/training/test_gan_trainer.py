import json

import keras
import numpy as np
import pytest

from tests.helpers import tiny_config
from tf_faceedit.configs import resolution
from tf_faceedit.data import celeba
from tf_faceedit.errors import TrainingError
from tf_faceedit.methods.sagan import SaGAN
from tf_faceedit.training import driver
from tf_faceedit.training import run_dir as run_folder


def _snapshot(network):
    return [keras.ops.convert_to_numpy(v).copy() for v in network.weights]


def _changed(before, network):
    return any(not np.array_equal(a, keras.ops.convert_to_numpy(b)) for a, b in zip(before, network.weights))


def _batch(cfg):
    ds = celeba.build_dataset(cfg.data, "train", batch_size=4, training=True, seed=0)
    return next(iter(ds))


def test_each_player_changes_only_its_network(synthetic_celeba):
    cfg = tiny_config("sagan", synthetic_celeba)
    trainer = SaGAN(cfg)
    trainer.compile(optimizers=trainer.make_optimizers())
    batch = trainer.prepare_batch(_batch(cfg), trainer.seed_generator)
    d_update, g_update = trainer.updates()

    g_before, d_before = _snapshot(trainer.generator), _snapshot(trainer.discriminator)
    trainer._run_update(g_update, batch)
    assert _changed(g_before, trainer.generator)
    assert not _changed(d_before, trainer.discriminator)

    g_before, d_before = _snapshot(trainer.generator), _snapshot(trainer.discriminator)
    trainer._run_update(d_update, batch)
    assert _changed(d_before, trainer.discriminator)
    assert not _changed(g_before, trainer.generator)


@pytest.mark.slow  # ~30 s; tests/contract checks exact resume for every method
def test_smoke_train_checkpoints_and_resume(synthetic_celeba, tmp_path):
    cfg = tiny_config("sagan", synthetic_celeba, **{"train.steps": 4, "train.n_critic": 2})
    run_dir = tmp_path / "run"
    result = driver.run(cfg, run_dir)
    assert result["step"] == 4
    assert all(np.isfinite(v) for v in result["logs"].values())
    assert {"d_loss", "d_gp", "g_loss", "g_rec_id"} <= set(result["logs"])
    assert result["checkpoint"].name == "ckpt-00000004"
    assert json.loads((result["checkpoint"] / "state.json").read_text())["step"] == 4
    assert result["sample_grid"].is_file() and result["sample_grid"].name == "step_00000004.png"
    assert list((run_dir / "logs").glob("events.out.tfevents*"))
    assert (run_dir / "config.yaml").is_file()

    # the same command again: resumes at 4 and has nothing to do
    again = driver.run(cfg, run_dir)
    assert again["step"] == 4

    # more steps: continues from 4, not from 0
    longer = cfg.override("train.steps=6")
    result = driver.run(longer, run_dir)
    assert result["step"] == 6
    trainer = SaGAN(longer)
    trainer.compile(optimizers=trainer.make_optimizers())
    from tf_faceedit.training.checkpoint import CheckpointManager

    CheckpointManager(run_dir / "checkpoints", trainer).restore()
    # 6 steps of 2 critic updates + 1 generator update: the optimizers' counters prove the resume went on from 4
    assert int(keras.ops.convert_to_numpy(trainer.d_optimizer.iterations)) == 12
    assert int(keras.ops.convert_to_numpy(trainer.g_optimizer.iterations)) == 6


@pytest.mark.slow  # two full runs (~40 s); tests/contract checks a seed gives one start
def test_seeded_runs_are_identical(synthetic_celeba, tmp_path):
    cfg = tiny_config("sagan", synthetic_celeba, **{"train.steps": 3, "train.n_critic": 1, "train.seed": 5})
    a = driver.run(cfg, tmp_path / "a")["logs"]
    b = driver.run(cfg, tmp_path / "b")["logs"]
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key
    c = driver.run(cfg.override("train.seed=6"), tmp_path / "c")["logs"]
    assert any(abs(a[k] - c[k]) > 1e-6 for k in a)


@pytest.mark.slow  # trains first (~25 s)
def test_model_dir_with_other_config_is_refused(synthetic_celeba, tmp_path):
    cfg = tiny_config("sagan", synthetic_celeba, **{"train.steps": 1})
    driver.run(cfg, tmp_path / "run")
    other = cfg.override("loss.lambda_gp=5")
    with pytest.raises(TrainingError, match="different config .*loss.lambda_gp"):
        driver.run(other, tmp_path / "run")
    assert driver.run(other, tmp_path / "run", overwrite=True)["step"] == 1


@pytest.mark.slow  # trains to a NaN (~90 s); tests/training/test_nan_policy.py keeps the stop policy
def test_nan_guard_stops_and_names_the_loss(synthetic_celeba, tmp_path, monkeypatch):
    original = SaGAN.discriminator_losses

    def broken(self, batch, seed):
        losses = original(self, batch, seed)
        losses["d_adv"] = losses["d_adv"] * float("nan")
        losses["d_loss"] = losses["d_loss"] + losses["d_adv"]
        return losses

    monkeypatch.setattr(SaGAN, "discriminator_losses", broken)
    cfg = tiny_config("sagan", synthetic_celeba, **{"train.steps": 4})
    with pytest.raises(TrainingError, match=r"non-finite loss d_\w+=nan at step 1"):
        driver.run(cfg, tmp_path / "run")
    assert not list((tmp_path / "run" / "checkpoints").glob("ckpt-*"))


def test_resolve_config_resumes_from_model_dir(synthetic_celeba, tmp_path):
    cfg = tiny_config("sagan", synthetic_celeba, **{"train.steps": 1})
    run_folder.prepare(cfg, tmp_path / "run")
    again = resolution.resolve_config(model_dir=tmp_path / "run", overrides=["train.steps=3"])
    assert again.method == "sagan" and again.train.steps == 3
    assert again.model == cfg.model and again.data == cfg.data


def test_build_trackers_leaves_batchnorm_statistics_and_rng_untouched(synthetic_celeba):
    from tests.helpers import tiny_config
    from tf_faceedit.methods.fader import Fader

    cfg = tiny_config("fader", synthetic_celeba)
    trainer = Fader(cfg)
    trainer.compile(optimizers=trainer.make_optimizers())
    before = [
        keras.ops.convert_to_numpy(v).copy()
        for v in trainer.state_variables() + [w for n in trainer.networks.values() for w in n.weights]
    ]
    assert any("moving" in w.path for n in trainer.networks.values() for w in n.weights)  # it has BatchNorm
    trainer.build_trackers(_batch(cfg))
    after = trainer.state_variables() + [w for n in trainer.networks.values() for w in n.weights]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, keras.ops.convert_to_numpy(b))
    assert {"lat_dis_loss", "ae_loss"} <= {t.name for t in trainer.metrics}
