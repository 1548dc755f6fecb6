import keras
import numpy as np

from tests.helpers import tiny_config
from tf_faceedit.methods.sagan import SaGAN
from tf_faceedit.training.checkpoint import CheckpointManager


def _trainer():
    trainer = SaGAN(tiny_config("sagan", "/x"))
    trainer.compile(optimizers=trainer.make_optimizers())
    return trainer


def _weights(trainer):
    return [keras.ops.convert_to_numpy(v) for v in trainer.generator.weights + trainer.discriminator.weights]


def test_save_restore_round_trip(tmp_path):
    a = _trainer()
    a.step.assign(7)
    for v in a.g_optimizer.variables:
        v.assign(np.full(v.shape, 3 if "int" in str(v.dtype) else 0.5, dtype=str(v.dtype)))
    CheckpointManager(tmp_path, a).save(7, {"note": "x"})
    b = _trainer()
    state = CheckpointManager(tmp_path, b).restore()
    assert state["step"] == 7 and state["note"] == "x"
    assert int(keras.ops.convert_to_numpy(b.step)) == 7
    for wa, wb in zip(_weights(a), _weights(b)):
        np.testing.assert_array_equal(wa, wb)
    for va, vb in zip(a.g_optimizer.variables, b.g_optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(va), keras.ops.convert_to_numpy(vb))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(a.seed_generator.state), keras.ops.convert_to_numpy(b.seed_generator.state)
    )


def test_keeps_latest_and_ignores_partial(tmp_path):
    trainer = _trainer()
    manager = CheckpointManager(tmp_path, trainer, max_to_keep=2)
    for step in (2, 4, 6):
        manager.save(step)
    assert [s for s, _ in manager.checkpoints()] == [4, 6]
    # a crash mid-write leaves a .tmp folder and a folder without state.json: both are ignored
    (tmp_path / "ckpt-00000008.tmp").mkdir()
    (tmp_path / "ckpt-00000010").mkdir()
    assert manager.latest().name == "ckpt-00000006"
    assert manager.restore()["step"] == 6


def test_restore_without_checkpoint_returns_none(tmp_path):
    assert CheckpointManager(tmp_path / "none", _trainer()).restore() is None
