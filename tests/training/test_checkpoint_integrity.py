"""Damaged checkpoints and full disks: each checkpoint carries a manifest (sizes, SHA-256) written last; a damaged
one is skipped with a warning naming it and why (resume, `tf_faceedit.load`), never deleted; none intact is a
one-line error; checkpoints of the old code (no manifest) still load; a full disk is a one-line error that leaves
every earlier checkpoint and no partial write."""

import errno
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import hostile
from tests.helpers import tiny_config
from tf_faceedit.errors import TrainingError
from tf_faceedit.training import driver
from tf_faceedit.training.checkpoint import MANIFEST, CheckpointManager, check_checkpoint

ROOT = Path(__file__).resolve().parents[2]
DAMAGE = ["truncated_weights", "truncated_state", "emptied_optimizers"]


def _config(data_dir, **overrides):
    values = {
        "data.image_size": 16,
        "train.steps": 4,
        "train.checkpoint_every": 2,
        "train.sample_every": 1000,
        "train.batch_size": 2,
        "train.n_critic": 1,
        "data.cache": False,
        **overrides,
    }
    return tiny_config("sagan", data_dir, **values)


@pytest.fixture(scope="module")
def trained_run(synthetic_celeba, tmp_path_factory):
    """A tiny SaGAN run trained 4 steps: checkpoints at steps 2 and 4. Tests work on copies."""
    model_dir = tmp_path_factory.mktemp("integrity") / "run"
    driver.run(_config(synthetic_celeba), model_dir)
    return model_dir


def _copy(run, tmp_path):
    return Path(shutil.copytree(run, tmp_path / "run"))


def _ckpt(model_dir, step):
    return model_dir / "checkpoints" / f"ckpt-{step:08d}"


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.slow  # ~14 s
def test_manifest_lists_every_file_with_size_and_hash(trained_run):
    ckpt = _ckpt(trained_run, 4)
    manifest = json.loads((ckpt / MANIFEST).read_text())["files"]
    on_disk = {p.name for p in ckpt.iterdir()} - {MANIFEST}
    assert set(manifest) == on_disk and {"state.json", "optimizers.npz", "generator.weights.h5"} <= on_disk
    for name, entry in manifest.items():
        assert entry["bytes"] == (ckpt / name).stat().st_size and len(entry["sha256"]) == 64
    assert check_checkpoint(ckpt) is None


@pytest.mark.parametrize("kind", [DAMAGE[0]] + [pytest.param(kind, marks=pytest.mark.slow) for kind in DAMAGE[1:]])
def test_resume_falls_back_to_the_newest_intact_checkpoint(kind, trained_run, synthetic_celeba, tmp_path, caplog):
    model_dir = _copy(trained_run, tmp_path)
    damaged = hostile.damage_checkpoint(_ckpt(model_dir, 4), kind)
    damaged_bytes = {p.name: p.read_bytes() for p in damaged.iterdir()}
    caplog.set_level(logging.INFO, logger="tf_faceedit")
    result = driver.run(_config(synthetic_celeba, **{"train.steps": 6}), model_dir)
    warned = [m for m in _warnings(caplog) if "ckpt-00000004" in m]
    assert warned and "skipping damaged checkpoint" in warned[0], _warnings(caplog)
    file_named = {
        "truncated_weights": "generator.weights.h5",
        "truncated_state": "state.json",
        "emptied_optimizers": "optimizers.npz",
    }[kind]
    assert file_named in warned[0] and "ckpt-00000002" in warned[0]
    assert any("at step 2 " in r.getMessage() for r in caplog.records), "resumed from the intact step-2 checkpoint"
    assert result["step"] == 6
    # the damaged folder is kept (moved aside when step 4 was written again), byte for byte
    kept = model_dir / "checkpoints" / "ckpt-00000004.damaged"
    assert {p.name: p.read_bytes() for p in kept.iterdir()} == damaged_bytes
    assert check_checkpoint(_ckpt(model_dir, 4)) is None and check_checkpoint(_ckpt(model_dir, 6)) is None
    assert not (model_dir / ".lock").exists()


@pytest.mark.parametrize("kind", DAMAGE)
def test_load_falls_back_with_a_warning(kind, trained_run, tmp_path, caplog):
    import tf_faceedit

    model_dir = _copy(trained_run, tmp_path)
    hostile.damage_checkpoint(_ckpt(model_dir, 4), kind)
    with caplog.at_level(logging.WARNING):
        model = tf_faceedit.load(model_dir)
    assert model.info["step"] == 2 and model.info["checkpoint"].endswith("ckpt-00000002")
    assert any("ckpt-00000004" in m for m in _warnings(caplog)), _warnings(caplog)
    reference = tf_faceedit.load(trained_run, checkpoint=_ckpt(trained_run, 2))
    for net, ref in zip(model.trainer.networks.values(), reference.trainer.networks.values(), strict=True):
        for a, b in zip(net.weights, ref.weights, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert _ckpt(model_dir, 4).is_dir()  # never deleted


@pytest.mark.slow  # ~20 s
def test_every_checkpoint_damaged_is_one_line_error(trained_run, synthetic_celeba, tmp_path):
    import tf_faceedit

    model_dir = _copy(trained_run, tmp_path)
    hostile.damage_checkpoint(_ckpt(model_dir, 2), "emptied_optimizers")
    hostile.damage_checkpoint(_ckpt(model_dir, 4), "truncated_weights")
    for call in (
        lambda: tf_faceedit.load(model_dir),
        lambda: driver.run(_config(synthetic_celeba, **{"train.steps": 6}), model_dir),
    ):
        with pytest.raises(TrainingError, match="no intact checkpoint") as info:
            call()
        message = str(info.value)
        assert "\n" not in message and "ckpt-00000002: optimizers.npz" in message
        assert "ckpt-00000004: generator.weights.h5" in message
    assert _ckpt(model_dir, 2).is_dir() and _ckpt(model_dir, 4).is_dir()
    assert not (model_dir / ".lock").exists()


def test_explicit_damaged_checkpoint_is_refused(trained_run, tmp_path):
    import tf_faceedit

    model_dir = _copy(trained_run, tmp_path)
    hostile.damage_checkpoint(_ckpt(model_dir, 4), "flipped_byte")
    with pytest.raises(
        TrainingError,
        match=r"ckpt-00000004 is damaged or incomplete: generator.weights.h5 does "
        r"not match its SHA-256",
    ):
        tf_faceedit.load(model_dir, checkpoint=_ckpt(model_dir, 4))


def test_old_checkpoints_without_manifest_still_load_and_are_checked(trained_run, tmp_path, caplog):
    import tf_faceedit

    model_dir = _copy(trained_run, tmp_path)
    for step in (2, 4):
        (_ckpt(model_dir, step) / MANIFEST).unlink()  # as the code before manifests wrote them
    assert tf_faceedit.load(model_dir).info["step"] == 4
    expected = {
        "truncated_weights": "generator.weights.h5 is unreadable or truncated",
        "truncated_state": "state.json is unreadable or truncated",
        "emptied_optimizers": "optimizers.npz is unreadable or truncated",
        "missing_state": "state.json is missing",
    }
    for kind, reason in expected.items():
        trial = Path(shutil.copytree(model_dir, tmp_path / kind))
        hostile.damage_checkpoint(_ckpt(trial, 4), kind)
        assert reason in (check_checkpoint(_ckpt(trial, 4)) or ""), kind
        assert check_checkpoint(_ckpt(trial, 2)) is None
    with caplog.at_level(logging.WARNING):
        assert tf_faceedit.load(tmp_path / "truncated_weights").info["step"] == 2
    assert any("ckpt-00000004" in m for m in _warnings(caplog))


def _manager(tmp_path, max_to_keep=3):
    from tf_faceedit.methods.sagan import SaGAN

    trainer = SaGAN(tiny_config("sagan", "/x", **{"data.image_size": 16}))
    trainer.compile(optimizers=trainer.make_optimizers())
    return CheckpointManager(tmp_path / "checkpoints", trainer, max_to_keep=max_to_keep)


def test_pruning_never_removes_a_damaged_checkpoint(tmp_path, caplog):
    manager = _manager(tmp_path, max_to_keep=2)
    manager.save(1)
    hostile.damage_checkpoint(manager.save(2), "truncated_weights")
    for step in (3, 4, 5):
        manager.save(step)
    assert [s for s, _ in manager.checkpoints()] == [4, 5]  # the two newest intact ones
    assert [s for s, _ in manager.all_checkpoints()] == [2, 4, 5]  # the damaged step 2 is still there


def test_disk_full_mid_write_is_one_line_error_and_keeps_earlier_checkpoints(tmp_path, monkeypatch):
    manager = _manager(tmp_path)
    first = manager.save(2)
    original = np.savez

    def savez_then_full(file, **arrays):
        original(file, **arrays)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", savez_then_full)
    with pytest.raises(TrainingError) as info:
        manager.save(4)
    message = str(info.value)
    assert "\n" not in message and "no space left" in message and str(manager.directory) in message
    assert "needs about" in message and "MiB free" in message and "ckpt-00000002" in message
    assert sorted(p.name for p in manager.directory.iterdir()) == ["ckpt-00000002"]  # no .tmp left
    assert check_checkpoint(first) is None


def test_disk_full_before_writing_is_refused(tmp_path, monkeypatch):
    manager = _manager(tmp_path)
    manager.save(2)
    needed = manager.estimated_bytes()
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage._replace(free=needed // 2))
    with pytest.raises(TrainingError, match=r"needs about [\d.]+ MiB, [\d.]+ MiB free"):
        manager.save(4)
    assert sorted(p.name for p in manager.directory.iterdir()) == ["ckpt-00000002"]


# A training run in a subprocess whose checkpoint writer hits a full disk at its second checkpoint (the first one
# written for real, the second after its first files): the CLI prints one error line and exits 2.
_FULL_DISK_AT_SECOND_CHECKPOINT = """
import errno, sys
from tf_faceedit.training import checkpoint
original = checkpoint.CheckpointManager._write
calls = []
def write(self, folder, step, extra_state):
    calls.append(step)
    if len(calls) >= 2:
        network = next(iter(self.trainer.networks.values()))
        network.save_weights(str(folder / "partial.weights.h5"))
        raise OSError(errno.ENOSPC, "No space left on device", str(folder / "optimizers.npz"))
    return original(self, folder, step, extra_state)
checkpoint.CheckpointManager._write = write
from tf_faceedit.cli import train
sys.exit(train.main(sys.argv[1:]))
"""


@pytest.mark.slow  # a training subprocess (~16 s)
def test_disk_full_in_a_training_process(synthetic_celeba, tmp_path, train_subprocess):
    model_dir = tmp_path / "run"
    # the tiny SaGAN training of the conftest fixture, run through the script that fills the disk at its second save
    train = train_subprocess.command(synthetic_celeba, model_dir, steps=4, checkpoint_every=2)
    assert train[1:3] == ["-m", "tf_faceedit.train"]
    command = [sys.executable, "-c", _FULL_DISK_AT_SECOND_CHECKPOINT, *train[3:], "--quiet"]
    proc = train_subprocess.run(command, capture_output=True, timeout=600)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "no space left" in errors[0] and str(model_dir / "checkpoints") in errors[0], errors
    assert "ckpt-00000004.tmp" in errors[0] and "needs about" in errors[0]
    assert sorted(p.name for p in (model_dir / "checkpoints").iterdir()) == ["ckpt-00000002"]
    assert check_checkpoint(model_dir / "checkpoints" / "ckpt-00000002") is None
    assert not (model_dir / ".lock").exists()


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 3 MiB tmpfs (root only, where mounting is allowed; skipped elsewhere)."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_real_full_disk(small_tmpfs, monkeypatch):
    """On a real full file system (a tmpfs filled up), both paths: refused before writing, and, with the
    free-space check bypassed, the real ENOSPC of the HDF5/zip writers mid-write."""
    manager = _manager(small_tmpfs)
    first = manager.save(2)
    size = sum(p.stat().st_size for p in first.iterdir())
    free = shutil.disk_usage(small_tmpfs).free
    (small_tmpfs / "filler").write_bytes(b"\0" * max(free - size // 2, 0))  # room for half a checkpoint
    with pytest.raises(TrainingError, match="needs about"):
        manager.save(4)
    monkeypatch.setattr(CheckpointManager, "_check_free_space", lambda self, tmp: None)
    with pytest.raises(TrainingError, match="no space left") as info:
        manager.save(4)
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in manager.directory.iterdir()) == ["ckpt-00000002"]
    assert check_checkpoint(first) is None
