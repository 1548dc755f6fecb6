"""`train.strategy=multiworker`: two worker processes on localhost (MultiWorkerMirroredStrategy driven by
TF_CONFIG) train 2 steps; their losses equal a single-process run with the same global batch, and only the chief
writes: the other worker is given its own (empty) model_dir, which must stay empty.

SaGAN with one attribute and lambda_gp=0 draws nothing random in its step (flipping the only attribute is
deterministic), so the per-replica seeds do not make the runs differ.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tf_faceedit.training.callbacks import read_scalars_jsonl

ROOT = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent("""
    import json, os, sys
    os.environ["TF_CONFIG"] = sys.argv[1]
    from tests.helpers import tiny_config
    from tf_faceedit.training import driver
    overrides = json.loads(sys.argv[3])
    cfg = tiny_config("sagan", sys.argv[2], **overrides)
    result = driver.run(cfg, sys.argv[4])
    print("RESULT " + json.dumps({"step": result["step"]}))
""")

OVERRIDES = {
    "data.image_size": 16,
    "data.random_flip": False,
    "loss.lambda_gp": 0.0,
    "train.n_critic": 1,
    "train.batch_size": 4,
    "train.steps": 2,
    "train.log_every": 1,
    "train.checkpoint_every": 1,
    "train.sample_every": 100,
}


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _env():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    return env


@pytest.mark.slow
def test_two_workers_match_single_process_and_only_chief_writes(synthetic_celeba, tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    dirs = [tmp_path / "chief_run", tmp_path / "worker1_run"]
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        overrides = json.dumps({**OVERRIDES, "train.strategy": "multiworker"})
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, tf_config, str(synthetic_celeba), overrides, str(dirs[index])],
                cwd=ROOT,
                env=_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=400))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0 and "RESULT " in out, err[-3000:]
        assert json.loads(out.split("RESULT ")[1])["step"] == 2

    single = json.dumps({**OVERRIDES, "train.strategy": "default"})
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, "{}", str(synthetic_celeba), single, str(tmp_path / "single_run")],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    # the chief wrote the run; the other worker wrote nothing at all in its model_dir
    assert sorted(p.name for p in (dirs[0] / "checkpoints").iterdir()) == ["ckpt-00000001", "ckpt-00000002"]
    assert (dirs[0] / "config.yaml").is_file() and not (dirs[0] / ".lock").exists()
    assert not dirs[1].exists() or not any(dirs[1].iterdir()), list(dirs[1].rglob("*"))

    multi = read_scalars_jsonl(dirs[0] / "logs" / "scalars.jsonl")
    reference = read_scalars_jsonl(tmp_path / "single_run" / "logs" / "scalars.jsonl")
    assert sorted(multi) == sorted(reference) == [1, 2]
    for step in (1, 2):
        assert set(multi[step]) == set(reference[step])
        for key, value in reference[step].items():
            assert multi[step][key] == pytest.approx(value, rel=1e-3, abs=1e-4), (step, key)
