"""The train CLI: user mistakes give one line on stderr and exit code 2; a run resumes; no data_dir -> synthetic."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tf_faceedit import registry
from tf_faceedit.cli import train as train_cli
from tf_faceedit.configs import resolution
from tf_faceedit.errors import suggest

ROOT = Path(__file__).resolve().parents[2]  # the checkout (this file is tests/cli/test_train.py)
TINY = [
    "--set",
    "data.image_size=16",
    "--set",
    "model.g_filters=2",
    "--set",
    "model.d_filters=2",
    "--set",
    "model.num_residual_blocks=1",
    "--set",
    "train.batch_size=2",
    "--set",
    "train.verbose=0",
    "--set",
    "train.sample_split=train",
    "--set",
    "train.num_samples=2",
]


def run_cli(*args):
    """`python -m tf_faceedit.train ARGS` in a fresh process (what a user runs; about 6 s of TensorFlow import)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "tf_faceedit.train", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_main(capsys, *args):
    """The same CLI's `main(argv)` in this process (the parse -> error-line -> exit-code path, without the import
    cost); returns what `run_cli` does: returncode, stdout, stderr."""
    capsys.readouterr()
    code = train_cli.main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


@pytest.mark.parametrize(
    "args, needle",
    [
        (
            ["--method=stargan"],
            f"unknown method 'stargan'{suggest('stargan', registry.names())}; registered methods: "
            f"{', '.join(registry.names())}",
        ),
        (["--method=sagan", "--data_dir=/nonexistent/celeba"], "data folder not found"),
        (["--method=sagan", "--data_dir=/tmp", "--set", "train.n_critic=0"], "train.n_critic must be >= 1, got 0"),
        (
            ["--method=sagan", "--data_dir=/tmp", "--config=/nonexistent.yaml"],
            "config file /nonexistent.yaml does not exist",
        ),
        (["--method=sagan", "--data_dir=/tmp", "--set", "train.stpes=3"], "did you mean: steps"),
    ],
)
def test_user_mistakes_are_one_line_errors(capsys, tmp_path, args, needle):
    proc = run_main(capsys, *args, f"--model_dir={tmp_path / 'run'}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1


def test_unknown_attribute_suggests(capsys, synthetic_celeba, tmp_path):
    proc = run_main(
        capsys,
        "--method=sagan",
        f"--data_dir={synthetic_celeba}",
        f"--model_dir={tmp_path / 'run'}",
        "--set",
        "data.attributes=Eyeglases",
        *TINY,
    )
    assert proc.returncode == 2
    assert "unknown attribute 'Eyeglases'" in proc.stderr and "Eyeglasses" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow  # two fresh processes (~40 s); the in-process resume: tests/contract (every method)
def test_train_then_resume_from_model_dir_alone(synthetic_celeba, tmp_path):
    run_dir = tmp_path / "run"
    first = run_cli(
        "--method=sagan", f"--data_dir={synthetic_celeba}", f"--model_dir={run_dir}", "--set", "train.steps=2", *TINY
    )
    assert first.returncode == 0, first.stderr[-3000:]
    assert "step 2 " in first.stdout
    assert (run_dir / "samples" / "step_00000002.png").is_file()
    second = run_cli(f"--model_dir={run_dir}", "--set", "train.steps=3")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "at step 2" in second.stderr and "step 3 " in second.stdout


def test_list_methods():
    proc = run_cli("--list_methods")
    assert proc.returncode == 0
    listed = [line.split()[0] for line in proc.stdout.splitlines()]
    assert listed == registry.names() and {"sagan", "pggan_completion"} <= set(listed)


def test_missing_data_dir_generates_synthetic_faces(tmp_path):
    cfg = resolution.resolve_config(method="sagan", model_dir=tmp_path / "run", overrides=["data.image_size=16"])
    data_dir = Path(cfg.data.data_dir)
    assert data_dir == tmp_path / "run" / "synthetic_data"
    assert (data_dir / "list_attr_celeba.txt").is_file()
    assert len(list((data_dir / "images").iterdir())) == 512
