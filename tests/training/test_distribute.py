"""MirroredStrategy over 2 logical CPU devices gives the same first step as the default strategy.

n_critic=2: a step is 2 critic updates (each on its own slice of the batch) and a generator update, as in real runs.

Runs in a subprocess: logical devices must be configured before TensorFlow initialises.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

SCRIPT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from tests.helpers import tiny_config
    from tf_faceedit.data import celeba
    from tf_faceedit.methods.sagan import SaGAN

    data_dir, lambda_gp = sys.argv[1], float(sys.argv[2])
    cfg = tiny_config("sagan", data_dir, **{"train.n_critic": 2, "loss.lambda_gp": lambda_gp,
                                         "data.random_flip": False})
    # one step = 2 critic updates on 2 slices of 4 + 1 generator update: 8 examples
    batch = next(iter(celeba.build_dataset(cfg.data, "train", 8, training=False, seed=0, repeat=False)))
    out = {}
    for name, strategy in [("default", tf.distribute.get_strategy()),
                           ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))]:
        keras.utils.set_random_seed(0)
        with strategy.scope():
            trainer = SaGAN(cfg)
            # SGD: unlike Adam, its step is proportional to the gradient, so a wrong cross-replica scale shows
            trainer.compile(optimizers={"g_optimizer": keras.optimizers.SGD(0.1),
                                        "d_optimizer": keras.optimizers.SGD(0.1)})
            trainer.build_trackers(batch)
        dataset = tf.data.Dataset.from_tensors(batch).repeat()
        history = trainer.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0)
        weights = np.concatenate([keras.ops.convert_to_numpy(v).ravel()
                                  for v in trainer.generator.weights + trainer.discriminator.weights]).tolist()
        out[name] = {"logs": {k: float(v[-1]) for k, v in history.history.items()}, "weights": weights,
                     "replicas": strategy.num_replicas_in_sync}
    print("RESULT " + json.dumps(out))
""")


# the gradient-penalty case covers the plain one (keeps the default tier under 15 min); both run with -m slow
@pytest.mark.parametrize("lambda_gp", [pytest.param(0.0, marks=pytest.mark.slow), 10.0])
@pytest.mark.slow  # MirroredStrategy build (~35 s)
def test_mirrored_matches_default_first_step(synthetic_celeba, lambda_gp):
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(root)}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(synthetic_celeba), str(lambda_gp)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[0][len("RESULT ") :])
    default, mirrored = result["default"], result["mirrored"]
    assert mirrored["replicas"] == 2
    # With the gradient penalty the interpolation weights are drawn per replica, not as on one device: d_gp differs.
    keys = [k for k in default["logs"] if lambda_gp == 0 or k not in ("d_gp", "d_loss")]
    for key in keys:
        assert mirrored["logs"][key] == pytest.approx(default["logs"][key], rel=1e-3, abs=1e-4), key
    # weights after one SGD step of both players: the summed replica gradients equal the global-batch gradient
    if lambda_gp == 0:
        assert mirrored["weights"] == pytest.approx(default["weights"], rel=1e-3, abs=1e-5)


SMOKE_SCRIPT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from tests import helpers
    from tf_faceedit import registry

    data_dir = sys.argv[1]
    tiny = helpers.TINY
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    out = {"methods": {}, "missing": [m for m in registry.names() if m not in tiny]}
    for method in registry.names():
        if method not in tiny:
            continue
        cfg = helpers.tiny_config(method, data_dir, **{"train.batch_size": 4})
        spec = registry.get(method)
        records = spec.trainer_class.load_records(cfg.data, "train")
        keras.utils.set_random_seed(0)
        with strategy.scope():
            trainer = spec.trainer_class(cfg)
            trainer.compile(optimizers=trainer.make_optimizers())
            trainer.set_phase(trainer.phase_at(0))
            dataset = trainer.make_dataset(cfg.data, "train", batch_size=4 * trainer.batch_multiple, training=True,
                                           seed=0, records=records)
            trainer.build_trackers(dict(next(iter(dataset))))
        history = trainer.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0)
        out["methods"][method] = {"logs": {k: float(v[-1]) for k, v in history.history.items()},
                                  "step": int(keras.ops.convert_to_numpy(trainer.step))}

    # per-replica seeds: each replica folds its id into the step's seeds (replica 0 = the shared generator)
    draws = {}
    for replica_seeds in (True, False):
        cfg = helpers.tiny_config("sagan", data_dir, **{"train.replica_seeds": replica_seeds})
        with strategy.scope():
            trainer = registry.get("sagan").trainer_class(cfg)

        @tf.function
        def draw():
            return strategy.run(lambda: keras.random.uniform((4,), seed=trainer.step_seeds()))

        draws[str(replica_seeds)] = [np.asarray(x).tolist() for x in strategy.experimental_local_results(draw())]
    single = registry.get("sagan").trainer_class(helpers.tiny_config("sagan", data_dir))
    draws["single"] = np.asarray(keras.random.uniform((4,), seed=single.step_seeds())).tolist()
    out["draws"] = draws
    out["replicas"] = strategy.num_replicas_in_sync
    print("RESULT " + json.dumps(out))
""")


@pytest.mark.slow
def test_every_method_trains_a_step_under_mirrored_and_replicas_draw_their_own_seeds(synthetic_celeba):
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(root)}
    proc = subprocess.run(
        [sys.executable, "-c", SMOKE_SCRIPT, str(synthetic_celeba)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[0][len("RESULT ") :])
    assert result["replicas"] == 2 and result["missing"] == []
    assert len(result["methods"]) >= 6
    for method, run in result["methods"].items():
        assert run["step"] == 1 and run["logs"], method
        assert all(np.isfinite(v) for v in run["logs"].values()), (method, run["logs"])
    draws = result["draws"]
    assert draws["True"][0] != draws["True"][1]  # replicas draw different noise
    assert draws["False"][0] == draws["False"][1]  # train.replica_seeds=false: the old, identical draws
    assert draws["True"][0] == pytest.approx(draws["single"]) == draws["False"][0]  # replica 0 = one device
