"""Crash safety: SIGKILL a training process at a random moment after its first checkpoint, run the same command
again: it resumes from the last checkpoint at that step, finishes, and its per-step losses equal those of an
uninterrupted run (seeded; the per-step log is `logs/scalars.jsonl` with train.log_every=1)."""

import random
import signal
import subprocess
import time

import pytest

from tf_faceedit.training.callbacks import read_scalars_jsonl

STEPS = 9


def _run(train_subprocess, command):
    proc = train_subprocess.run(command, capture_output=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _checkpoint_steps(model_dir):
    folder = model_dir / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(
        int(p.name[5:])
        for p in folder.iterdir()
        if p.name.startswith("ckpt-") and not p.name.endswith(".tmp") and (p / "state.json").is_file()
    )


@pytest.mark.slow
def test_sigkill_then_same_command_resumes_and_matches_uninterrupted_run(synthetic_celeba, tmp_path, train_subprocess):
    killed_dir, reference_dir = tmp_path / "killed", tmp_path / "reference"
    command = train_subprocess.command(synthetic_celeba, killed_dir, STEPS, 3)
    proc = train_subprocess.popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while not _checkpoint_steps(killed_dir):
        assert proc.poll() is None, f"finished before the first checkpoint: {proc.stderr.read()[-3000:]}"
        assert time.time() < deadline, "no checkpoint after 300 s"
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 1.0))  # a random moment after the first checkpoint (maybe mid-write)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    steps_at_kill = _checkpoint_steps(killed_dir)
    assert (killed_dir / ".lock").exists()  # SIGKILL leaves the lock behind: the restart takes it over

    if steps_at_kill[-1] < STEPS:
        resumed = _run(train_subprocess, command)
        assert f"at step {steps_at_kill[-1]} " in resumed.stderr, resumed.stderr[-3000:]
        assert "stale lock" in resumed.stderr
    assert _checkpoint_steps(killed_dir)[-1] == STEPS
    assert not (killed_dir / ".lock").exists()

    _run(train_subprocess, train_subprocess.command(synthetic_celeba, reference_dir, STEPS, 3))
    reference = read_scalars_jsonl(reference_dir / "logs" / "scalars.jsonl")
    after_resume = read_scalars_jsonl(killed_dir / "logs" / "scalars.jsonl")
    assert sorted(reference) == list(range(1, STEPS + 1)) == sorted(after_resume)
    for step in range(1, STEPS + 1):
        assert set(after_resume[step]) == set(reference[step]) and "g_loss" in reference[step]
        for key, value in reference[step].items():
            assert after_resume[step][key] == pytest.approx(value, rel=1e-4, abs=1e-6), (step, key)


def test_checkpoint_keeps_the_networks_dropout_seed_state(tmp_path):
    """`.weights.h5` does not hold a Dropout layer's seed-generator state; the checkpoint must (else a resume draws
    other dropout masks than an uninterrupted run)."""
    import keras
    import numpy as np

    from tests.helpers import tiny_config
    from tf_faceedit.methods.fader import Fader
    from tf_faceedit.training.checkpoint import CheckpointManager

    def trainer():
        t = Fader(tiny_config("fader", tmp_path, **{"model.lat_dis_dropout": 0.3}))
        t.compile(optimizers=t.make_optimizers())
        return t

    def seed_states(t):
        return [
            keras.ops.convert_to_numpy(v)
            for net in t.networks.values()
            for v in net.variables
            if id(v) not in {id(w) for w in net.weights}
        ]

    a = trainer()
    assert seed_states(a), "the fader's latent discriminator has a Dropout seed generator"
    for net in a.networks.values():
        for v in net.variables:
            if id(v) not in {id(w) for w in net.weights}:
                v.assign(np.array([11, 42], dtype=str(v.dtype)))
    CheckpointManager(tmp_path / "ckpt", a).save(5)
    b = trainer()
    assert not any(np.array_equal(s, [11, 42]) for s in seed_states(b))
    CheckpointManager(tmp_path / "ckpt", b).restore()
    assert all(np.array_equal(s, [11, 42]) for s in seed_states(b))
