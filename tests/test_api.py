"""`tf_faceedit.load` on a model_dir and on an export dir (tiny checkpointed runs shared with
tests/serving/test_export.py): same interface, same results, attribute dicts and errors."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tf_faceedit
from tests import model_runs
from tf_faceedit.errors import ConfigError, DataError, TrainingError

ROOT = Path(__file__).resolve().parents[1]
HEIGHT, WIDTH = 30, 26


@pytest.fixture(scope="module", params=model_runs.method_params())
def both(request, tmp_path_factory, synthetic_celeba):
    """(run, model loaded from the model_dir, model loaded from the export)."""
    run = model_runs.exported_run(request.param, tmp_path_factory, synthetic_celeba)
    return run, tf_faceedit.load(run.model_dir), tf_faceedit.load(run.export_dir)


def images_and_masks(n=2, seed=0):
    rng = np.random.RandomState(seed)
    images = rng.randint(0, 256, (n, HEIGHT, WIDTH, 3)).astype(np.uint8)
    masks = np.zeros((n, HEIGHT, WIDTH, 1), np.uint8)
    masks[:, 5:20, 6:18] = 1
    return images, masks


def call(model, images, masks, attributes):
    if model.task == "complete":
        return model.complete(images, masks, attributes)
    return model.edit(images, attributes)


def assert_same(a, b):
    assert set(a) == set(b)
    for key in a:
        assert a[key].shape == b[key].shape and a[key].dtype == b[key].dtype, key
        if a[key].dtype == np.uint8:
            assert np.abs(a[key].astype(int) - b[key].astype(int)).max() <= 1, key
        else:
            np.testing.assert_allclose(a[key], b[key], atol=1e-4)


def test_model_dir_and_export_agree(both):
    run, from_dir, from_export = both
    cfg = run.trainer.config
    for model in (from_dir, from_export):
        assert (model.method, model.task) == (cfg.method, run.trainer.task)
        assert model.attribute_names == list(cfg.data.attributes)
        assert model.image_size == cfg.data.image_size
    assert from_dir.config.to_dict() == cfg.to_dict() and from_export.config is None
    images, masks = images_and_masks()
    attributes = np.random.RandomState(1).randint(0, 2, (2, len(cfg.data.attributes))).astype(np.float32)
    a, b = call(from_dir, images, masks, attributes), call(from_export, images, masks, attributes)
    assert_same(a, b)
    main = "image" if from_dir.task == "edit" else "completed"
    assert a[main].shape == images.shape and a[main].dtype == np.uint8
    # one image [H, W, 3] (and a [H, W] mask) gives one result without the batch axis; [K] attributes broadcast
    single = call(from_export, images[1], masks[1, ..., 0], attributes[1])
    assert_same(single, {key: value[1] for key, value in b.items()})


def test_dict_attributes(both, caplog):
    run, from_dir, from_export = both
    names = from_dir.attribute_names
    images, masks = images_and_masks(seed=2)
    for model in (from_dir, from_export):
        given = {names[0]: 1.0}
        if model.can_predict_attributes:
            expected = model.predict_attributes(images).copy()
            assert expected.shape == (2, len(names)) and set(np.unique(expected)) <= {0.0, 1.0}
        else:
            expected = np.zeros((2, len(names)), np.float32)
        expected[:, 0] = 1.0
        with caplog.at_level(logging.WARNING, logger="tf_faceedit"):
            caplog.clear()
            out = call(model, images, masks, given)
        assert_same(out, call(model, images, masks, expected))
        warned = any("cannot predict them" in r.getMessage() for r in caplog.records)
        assert warned == (len(names) > 1 and not model.can_predict_attributes)
    if from_dir.can_predict_attributes:
        np.testing.assert_array_equal(from_dir.predict_attributes(images), from_export.predict_attributes(images))


def test_attribute_errors(both):
    _, from_dir, from_export = both
    images, masks = images_and_masks(n=1)
    name = from_dir.attribute_names[0]
    for model in (from_dir, from_export):
        with pytest.raises(ConfigError, match=f"unknown attribute 'Nope'.*this model's attributes: .*{name}"):
            call(model, images, masks, {"Nope": 1.0})
        with pytest.raises(ConfigError, match="attributes must be"):
            call(model, images, masks, np.zeros((1, len(model.attribute_names) + 1), np.float32))
        with pytest.raises(DataError, match="must be uint8"):
            call(model, images.astype(np.float32), masks, np.zeros(len(model.attribute_names), np.float32))


def test_load_restores_the_checkpoint(both):
    run, from_dir, _ = both
    for name, network in run.trainer.networks.items():
        restored = from_dir.trainer.networks[name]
        for a, b in zip(network.weights, restored.weights, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_load_errors(tmp_path, synthetic_celeba):
    with pytest.raises(ConfigError, match="neither a training run"):
        tf_faceedit.load(tmp_path)
    model_dir, _ = model_runs.checkpointed_run("sagan", synthetic_celeba, tmp_path / "run")
    for path in (model_dir / "checkpoints").iterdir():
        for file in path.iterdir():
            file.unlink()
        path.rmdir()
    with pytest.raises(TrainingError, match="has no checkpoint"):
        tf_faceedit.load(model_dir)


def test_import_stays_light():
    code = (
        "import sys, tf_faceedit\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'heavy import'\n"
        "assert callable(tf_faceedit.load)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_progressive_model_loads_at_the_stage_of_its_checkpoint(tmp_path, synthetic_celeba):
    """A pggan_completion run stopped in stage 0 (4x4 of 8x8) loads and exports at 4x4; results still come back
    at the input size, the known pixels untouched."""
    from tf_faceedit.serving import export_lib

    model_dir, trainer = model_runs.checkpointed_run(
        "pggan_completion", synthetic_celeba, tmp_path / "run", **{"train.steps": 2}
    )
    assert trainer.generator.stage == 0
    model = tf_faceedit.load(model_dir)
    assert model.trainer.generator.current_resolution == 4 and model.trainer.discriminator.stage == 0
    images, masks = images_and_masks(n=1)
    out = model.complete(images, masks, {"Male": 1.0, "Smiling": 0.0})
    assert out["completed"].shape == images.shape
    known = masks[..., 0] == 0
    np.testing.assert_array_equal(out["completed"][known], images[known])
    result = export_lib.export(model_dir, tmp_path / "exports" / "pggan" / "3")
    from_export = tf_faceedit.load(result["export_dir"])
    assert_same(from_export.complete(images, masks, {"Male": 1.0, "Smiling": 0.0}), out)
    import keras

    generator = keras.models.load_model(result["networks"]["generator"])
    assert generator.stage == 0 and generator.current_resolution == 4


def test_an_export_runs_its_saved_model_whatever_the_engine(both):
    run, _, _ = both
    assert tf_faceedit.load(run.export_dir, engine="tensorflow").method == run.trainer.config.method
    with pytest.raises(ConfigError, match="engine='tflite' applies to a model_dir or a zoo name"):
        tf_faceedit.load(run.export_dir, engine="tflite")
    with pytest.raises(ConfigError, match="precision= applies to a model_dir or a zoo name"):
        tf_faceedit.load(run.export_dir, precision="bfloat16")
