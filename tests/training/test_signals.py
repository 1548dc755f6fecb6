"""SIGTERM / SIGINT stop a real training process like a well-behaved trainer: the running step finishes, a checkpoint
of that step is written (within a bounded time), `RUN/.lock` is released, one clear line is printed and the exit
status is 128 + the signal (143 / 130). A second signal exits at once. Running the same command again resumes from
that checkpoint, and the per-step losses equal an uninterrupted run's (slow tier)."""

import signal
import subprocess
import sys
import time

import pytest

from tf_faceedit.training.callbacks import read_scalars_jsonl
from tf_faceedit.training.checkpoint import check_checkpoint


def _logged_steps(model_dir):
    path = model_dir / "logs" / "scalars.jsonl"
    return sorted(read_scalars_jsonl(path)) if path.is_file() else []


def _start_and_wait_for_steps(train_subprocess, command, model_dir, steps_logged):
    proc = train_subprocess.popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 400
    while len(_logged_steps(model_dir)) < steps_logged:
        if proc.poll() is not None:
            raise AssertionError(f"ended before step {steps_logged}: {proc.stderr.read()[-3000:]}")
        assert time.time() < deadline, f"fewer than {steps_logged} steps after 400 s"
        time.sleep(0.05)
    return proc


def _checkpoint_steps(model_dir):
    folder = model_dir / "checkpoints"
    return sorted(int(p.name[5:]) for p in folder.iterdir() if p.name[5:].isdigit()) if folder.is_dir() else []


def _interrupt(proc, sig, model_dir):
    """Sends `sig`; returns (exit code, stderr, seconds to exit, checkpoint steps afterwards)."""
    sent = time.time()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=200)
    return proc.returncode, err, time.time() - sent, _checkpoint_steps(model_dir)


@pytest.mark.slow  # a training subprocess (~18 s); the second-signal test stays in the default tier
def test_sigterm_checkpoints_the_current_step_releases_the_lock_and_exits_143(
    synthetic_celeba, tmp_path, train_subprocess
):
    model_dir = tmp_path / "run"
    # checkpoint_every far away: the step the signal lands on is mid-segment, only the signal writes it
    proc = _start_and_wait_for_steps(
        train_subprocess, train_subprocess.command(synthetic_celeba, model_dir, 100000, 50000), model_dir, 3
    )
    assert (model_dir / ".lock").exists()
    code, err, seconds, steps = _interrupt(proc, signal.SIGTERM, model_dir)
    assert code == 143, err[-3000:]
    assert "Traceback" not in err and "SIGTERM received: stopping after the current step" in err, err[-3000:]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "training interrupted by SIGTERM at step" in errors[0], err[-3000:]
    assert len(steps) == 1 and steps[0] >= 3 and f"ckpt-{steps[0]:08d} written" in errors[0], (steps, errors)
    assert steps[0] == _logged_steps(model_dir)[-1]  # the last step that ran is the one checkpointed
    assert check_checkpoint(model_dir / "checkpoints" / f"ckpt-{steps[0]:08d}") is None
    assert not (model_dir / ".lock").exists()
    assert seconds < 120


def test_second_signal_exits_at_once(tmp_path, train_subprocess):
    """The second signal does not wait for the step: a 'step' that never ends (a sleep) is abandoned; the lock goes."""
    script = (
        "import sys, time\n"
        "from tf_faceedit.training.recovery import StopOnSignal\n"
        "from tf_faceedit.training.lock import ModelDirLock\n"
        "with StopOnSignal(grace_s=300) as stopper, ModelDirLock(sys.argv[1]) as lock:\n"
        "    stopper.lock = lock\n"
        "    print('ready', flush=True)\n"
        "    while True:\n"
        "        time.sleep(0.05)\n"
    )
    proc = train_subprocess.popen(
        [sys.executable, "-c", script, str(tmp_path / "run")], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    time.sleep(1.0)
    assert proc.poll() is None, "the first signal only asks to stop"
    started = time.time()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and time.time() - started < 10, err
    assert "SIGINT received" in err and "second SIGINT: exiting now" in err and "lock released" in err, err
    assert not (tmp_path / "run" / ".lock").exists()


@pytest.mark.slow
def test_no_stop_within_the_grace_time_exits(tmp_path, train_subprocess):
    script = (
        "import sys, time\n"
        "from tf_faceedit.training.recovery import StopOnSignal\n"
        "with StopOnSignal(grace_s=2):\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(120)\n"
    )
    proc = train_subprocess.popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().strip() == "ready"
    started = time.time()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and time.time() - started < 30, err
    assert "did not stop within 2 s of SIGTERM" in err, err


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_interrupted_then_resumed_matches_an_uninterrupted_run(sig, synthetic_celeba, tmp_path, train_subprocess):
    steps, every = 12, 5
    model_dir, reference_dir = tmp_path / "interrupted", tmp_path / "reference"
    command = train_subprocess.command(synthetic_celeba, model_dir, steps, every)
    proc = _start_and_wait_for_steps(
        train_subprocess, command, model_dir, 7
    )  # past the first checkpoint, inside the second segment
    code, err, _, ckpts = _interrupt(proc, sig, model_dir)
    assert code == 128 + sig, err[-3000:]
    at = ckpts[-1]
    if at < steps:
        assert at % every, f"the signal's checkpoint should be mid-segment, got step {at}"
        resumed = train_subprocess.run(command, capture_output=True, timeout=600)
        assert resumed.returncode == 0 and f"at step {at} " in resumed.stderr, resumed.stderr[-3000:]
    train_subprocess.run(
        train_subprocess.command(synthetic_celeba, reference_dir, steps, every),
        check=True,
        capture_output=True,
        timeout=600,
    )
    reference = read_scalars_jsonl(reference_dir / "logs" / "scalars.jsonl")
    after = read_scalars_jsonl(model_dir / "logs" / "scalars.jsonl")
    assert sorted(reference) == list(range(1, steps + 1)) == sorted(after)
    for step in range(1, steps + 1):
        for key, value in reference[step].items():
            assert after[step][key] == pytest.approx(value, rel=1e-4, abs=1e-6), (step, key)
