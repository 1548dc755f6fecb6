"""The Keras JAX backend (issue 10): JAX smoke trains of every method with TensorFlow blocked, and JAX-trained
weights exported and served under TensorFlow with the same outputs. The JAX runs are subprocesses
(`tests/jax/jax_worker.py`, KERAS_BACKEND=jax): this test process uses the TensorFlow backend."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.model_runs import tiny_config_builder

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="jax is not installed (pip install -e '.[jax]')"
)
ROOT = Path(__file__).resolve().parents[2]


def run_jax(*args, timeout=540):
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.jax.jax_worker", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # a fresh TF-free process + export (~40 s)
def test_sagan_trains_under_jax_without_tensorflow_and_exports_with_equal_outputs(synthetic_celeba, tmp_path):
    model_dir = tmp_path / "run"
    result = run_jax(
        "train",
        "sagan",
        synthetic_celeba,
        model_dir,
        "--block_tf",
        "--outputs",
        tmp_path / "jax_out.npz",
        "--set",
        "train.steps=2",
    )
    assert result["backend"] == "jax" and not result["tensorflow_imported"]
    assert result["step"] == 2 and Path(result["checkpoint"]).name == "ckpt-00000002"
    assert result["logs"] and all(np.isfinite(v) for v in result["logs"].values())
    state = json.loads((Path(result["checkpoint"]) / "state.json").read_text())
    assert state["step"] == 2

    # the same weights under TensorFlow: eager networks and the exported SavedModel give the JAX outputs
    from tests.jax.jax_worker import fixed_inputs
    from tf_faceedit import registry
    from tf_faceedit.configs import resolution
    from tf_faceedit.serving import export_lib
    from tf_faceedit.training.checkpoint import CheckpointManager

    cfg = resolution.resolve_config(model_dir=model_dir)
    trainer = registry.get("sagan").trainer_class(cfg)
    CheckpointManager(model_dir / "checkpoints", trainer).restore_networks()
    import keras

    inputs = fixed_inputs(cfg)
    tf_out = {
        k: np.asarray(v)
        for k, v in trainer.infer({key: keras.ops.convert_to_tensor(value) for key, value in inputs.items()}).items()
    }
    with np.load(tmp_path / "jax_out.npz") as jax_out:
        assert set(jax_out) == set(tf_out)
        for key in jax_out:
            np.testing.assert_allclose(tf_out[key], jax_out[key], atol=2e-5, err_msg=key)
        reference = {key: jax_out[key] for key in jax_out}
    exported = export_lib.export(model_dir, tmp_path / "export" / "1")
    import tensorflow as tf

    serve = tf.saved_model.load(exported["export_dir"]).signatures["serving_default"]
    image_uint8 = np.clip(np.rint((inputs["image"] + 1.0) * 127.5), 0, 255).astype(np.uint8)
    served = serve(image=tf.constant(image_uint8), attributes=tf.constant(inputs["attributes"]))
    decoded = image_uint8.astype(np.float32) / 127.5 - 1.0
    edited = trainer.infer(
        {"attributes": keras.ops.convert_to_tensor(inputs["attributes"]), "image": keras.ops.convert_to_tensor(decoded)}
    )["image"]
    expected = np.clip(np.rint((np.asarray(edited) + 1.0) * 127.5), 0, 255)
    assert np.abs(served["image"].numpy().astype(np.float32) - expected).max() <= 1
    assert np.abs(reference["image"] - tf_out["image"]).max() < 2e-5


@pytest.mark.slow  # every method under JAX (~100 s); tests/test_backend.py keeps a JAX smoke run
def test_every_method_trains_under_jax(synthetic_celeba, tmp_path):
    """The other registered methods' tiny configs train under JAX with TensorFlow blocked, in ONE subprocess (one JAX
    start-up for all; progressive stages, IcGAN phases, Fader's schedule, history buffers and pools included)."""
    from tf_faceedit import registry

    methods = [m for m in registry.names() if m != "sagan"]
    assert all(tiny_config_builder(m) for m in methods), "every method needs a tiny config in tests/helpers.py"
    results = run_jax("train", ",".join(methods), synthetic_celeba, tmp_path / "runs", "--block_tf", timeout=900)
    assert sorted(results) == sorted(methods)
    for method, result in results.items():
        cfg = tiny_config_builder(method)(synthetic_celeba)
        assert result["backend"] == "jax" and not result["tensorflow_imported"], method
        assert result["step"] == cfg.train.steps, method
        assert result["logs"] and all(np.isfinite(v) for v in result["logs"].values()), method
