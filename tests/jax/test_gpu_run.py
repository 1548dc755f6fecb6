"""benchmarks/gpu_run.py end to end on this CPU (issue 36): the JAX backend, TensorFlow blocked, one tiny step of
SaGAN's paper preset at 32x32 on the synthetic faces; the JSON and the sample grid it leaves."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="jax is not installed (pip install -e '.[jax]')"
)
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # a fresh JAX process per method (~40 s)
def test_gpu_run_trains_a_preset_under_jax_without_tensorflow(synthetic_celeba, tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_run.py"), "--data_dir", str(synthetic_celeba)]
    cmd += ["--out", str(tmp_path), "--size", "32", "--steps", "1", "--warmup", "1", "--methods", "sagan"]
    cmd += ["--set", "train.batch_size=2"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "gpu_run.json").read_text())
    (result,) = summary["results"]
    assert result["method"] == "sagan" and result["preset"] == "sagan_celeba128"
    assert result["images_per_s"] > 0 and result["peak_memory_bytes"] > 0 and result["finite"]
    assert result["tensorflow_imported"] is False and result["images_per_step"] == 2 * 3  # 3 critic batches
    assert (tmp_path / "samples.png").is_file() and not list(tmp_path.glob("grid_*.png"))
