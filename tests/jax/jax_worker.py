"""Run in a subprocess by tests/jax (the main test process uses the TensorFlow backend):

    KERAS_BACKEND=jax python -m tests.jax.jax_worker train METHOD DATA_DIR MODEL_DIR [--block_tf] [--set k=v ...]

trains the method's tiny config (tests/helpers.py) with `driver.run` and prints one JSON line (step, logs,
checkpoint, backend, whether tensorflow got imported). `--block_tf` makes `import tensorflow` fail first, as on a
machine without TensorFlow.
"""

import json
import os
import sys


class _NoTensorFlow:
    """A meta-path finder that makes `import tensorflow` fail as on a machine without it. (Putting None in
    sys.modules would not do: Keras reads `"tensorflow" in sys.modules` as "TensorFlow is loaded" and then imports
    it, e.g. in `Rescaling`, which a machine without TensorFlow never does.)"""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError(f"No module named {name!r} (blocked by jax_worker --block_tf)")
        return None


def _block_tensorflow():
    for name in list(sys.modules):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise RuntimeError("tensorflow was imported before the block")
    sys.meta_path.insert(0, _NoTensorFlow())


def fixed_inputs(cfg):
    """A deterministic input batch for `trainer.infer` (2 images, alternating attributes)."""
    import numpy as np

    size, k = cfg.data.image_size, len(cfg.data.attributes)
    grid = np.linspace(-1.0, 1.0, size * size * 3, dtype=np.float32).reshape(1, size, size, 3)
    image = np.concatenate([grid, -grid[:, ::-1]], axis=0)
    attributes = (np.arange(2 * k).reshape(2, k) % 2).astype(np.float32)
    return {"image": image, "attributes": attributes}


def fixed_outputs(cfg, model_dir, out_path):
    """Restores the latest checkpoint's networks and saves `infer(fixed_inputs)` to an .npz (this backend)."""
    import numpy as np
    from keras import ops

    from tf_faceedit import registry
    from tf_faceedit.training.checkpoint import CheckpointManager

    trainer = registry.get(cfg.method).trainer_class(cfg)
    trainer.set_phase(trainer.phase_at(cfg.train.steps - 1))
    CheckpointManager(f"{model_dir}/checkpoints", trainer).restore_networks()
    out = trainer.infer({key: ops.convert_to_tensor(value) for key, value in fixed_inputs(cfg).items()})
    np.savez(out_path, **{key: ops.convert_to_numpy(value) for key, value in out.items()})


def main(argv):
    """train METHOD[,METHOD...] DATA_DIR MODEL_DIR [--block_tf] [--outputs PATH] [--set k=v ...]: one JSON line with
    the run's result; several methods train one after another in this one process (one JAX start-up), each in
    MODEL_DIR/<method>, and the line maps method -> result."""
    command, methods, data_dir, model_dir, *rest = argv
    if "--block_tf" in rest:
        _block_tensorflow()
        rest.remove("--block_tf")
    if "--outputs" in rest:
        i = rest.index("--outputs")
        rest = rest[:i] + rest[i + 2 :]
    overrides = dict(item.split("=", 1) for flag, item in zip(rest[::2], rest[1::2]) if flag == "--set")
    assert command == "train"
    import keras

    from tests.model_runs import tiny_config_builder
    from tf_faceedit.training import driver

    names = methods.split(",")
    results = {}
    for method in names:
        cfg = tiny_config_builder(method)(data_dir)
        if overrides:
            cfg = cfg.apply_overrides([f"{k}={v}" for k, v in overrides.items()])
        run_dir = model_dir if len(names) == 1 else os.path.join(model_dir, method)
        result = driver.run(cfg, run_dir)
        if "--outputs" in sys.argv:  # the trained networks' inference on a fixed input, for the portability test
            fixed_outputs(cfg, run_dir, sys.argv[sys.argv.index("--outputs") + 1])
        results[method] = {
            "backend": keras.backend.backend(),
            "step": result["step"],
            "logs": result["logs"],
            "checkpoint": str(result["checkpoint"]),
            "tensorflow_imported": sys.modules.get("tensorflow") is not None,
            "keras_backend_env": os.environ.get("KERAS_BACKEND"),
        }
    print(json.dumps(results[names[0]] if len(names) == 1 else results))


if __name__ == "__main__":
    main(sys.argv[1:])
