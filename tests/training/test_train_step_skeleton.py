"""The one train-step skeleton (`GANTrainer.run_step`) that the TensorFlow and JAX backends share: what it hands the
backend's update function, and that the JAX module neither imports the trainer module nor reaches into it."""

import ast
import pathlib

import keras
import numpy as np

from tests.helpers import tiny_config
from tf_faceedit.methods.sagan import SaGAN

TRAINING = pathlib.Path(__file__).resolve().parents[2] / "tf_faceedit" / "training"


def _batch(n):
    rng = np.random.default_rng(0)
    return {
        "image": keras.ops.convert_to_tensor(rng.uniform(-1, 1, (n, 32, 32, 3)).astype("float32")),
        "attributes": keras.ops.convert_to_tensor((np.arange(n)[:, None] % 2).astype("float32")),
    }


def test_run_step_slices_seeds_and_orders_the_updates():
    cfg = tiny_config("sagan", "/x", **{"train.n_critic": 3})
    trainer = SaGAN(cfg)
    trainer.compile(optimizers=trainer.make_optimizers())
    batch = _batch(4 * trainer.batch_multiple)
    calls, stateful_calls = [], []

    def run_update(update, batch_slice, seed):
        assert "target_attributes" in batch_slice  # prepare_batch ran before the slicing
        calls.append((update.name, keras.ops.convert_to_numpy(batch_slice["image"]), seed))
        trainer.record_losses({"probe": keras.ops.ones((4,)) * len(calls)})

    def stateful(fn):
        stateful_calls.append(fn)
        return fn()

    logs = trainer.run_step(batch, run_update, stateful=stateful)
    images = keras.ops.convert_to_numpy(batch["image"])
    # 3 critic updates on slices 0, 1, 2 (examples i, i+3, ...), then the generator on slice 0
    assert [name for name, _, _ in calls] == ["d", "d", "d", "g"]
    for (_, got, _), index in zip(calls, [0, 1, 2, 0]):
        np.testing.assert_array_equal(got, images[index::3])
    assert all(seed is trainer.seed_generator for _, _, seed in calls)  # one device: the trainer's generator
    assert len(stateful_calls) == 2  # prepare_batch, then the step counter and the logs
    assert int(keras.ops.convert_to_numpy(trainer.step)) == 1
    assert float(keras.ops.convert_to_numpy(logs["probe"])) == 2.5  # mean of the 4 recorded values 1..4


def _imports(path):
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_import_cycle_between_the_trainer_and_its_jax_backend():
    jax_imports = _imports(TRAINING / "jax_trainer.py")
    assert not any(name.startswith("tf_faceedit.training.gan_trainer") for name in jax_imports), jax_imports
    assert "tf_faceedit.training.jax_trainer" in _imports(TRAINING / "gan_trainer.py")  # the one backend choice


def test_the_jax_backend_uses_only_public_members_of_the_trainer():
    tree = ast.parse((TRAINING / "jax_trainer.py").read_text())
    private = sorted(
        {
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "trainer"
            and node.attr.startswith("_")
        }
    )
    assert private == []
