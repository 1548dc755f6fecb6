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


# ---------------------------------------------------------------------------------------------------------------
# Full-resolution paste-back (keep_detail) and degenerate batches


class _StubBackend:
    """A backend whose network is `change(image at S)` inside the real pre/post-processing (`run_inference`): the
    identity by default, so that an edit to the image's own values is an identity edit."""

    method, task, attribute_names, image_size = "stub", "edit", ["Smiling"], 16
    crop_fraction, attribute_range, can_predict = 1.0, (0.0, 1.0), False

    def __init__(self, change=None):
        from tf_faceedit import registry

        self.capabilities = registry.Capabilities()
        self.change = change or (lambda image: image)
        self.seen = []

    def run(self, image, attributes, mask=None):
        from tf_faceedit.serving import processing

        self.seen.append(np.asarray(image).shape)
        out = processing.run_inference(
            lambda inputs: {"image": self.change(inputs["image"])}, "edit", image, attributes, self.image_size, 1
        )
        return {key: value.numpy() for key, value in out.items()}

    def predict(self, image):
        raise AssertionError("not called")


def _stub_model(change=None):
    return tf_faceedit.FaceEditModel(_StubBackend(change))


@pytest.mark.parametrize("shape", [(70, 50), (1, 1), (16, 16), (17, 15), (9, 40)])
def test_identity_edit_returns_the_input_exactly(shape):
    images = np.random.RandomState(3).randint(0, 256, (2, *shape, 3)).astype(np.uint8)
    model = _stub_model()
    out = model.edit(images, {"Smiling": 0.0})
    assert out["image"].dtype == np.uint8
    np.testing.assert_array_equal(out["image"], images)
    np.testing.assert_array_equal(model.edit(images[0], [0.0])["image"], images[0])  # one image, [K] attributes
    plain = model.edit(images, {"Smiling": 0.0}, keep_detail=False)["image"]  # today's output: resampled from S
    assert plain.shape == images.shape
    if shape not in ((16, 16), (1, 1)):
        assert np.abs(plain.astype(int) - images).max() > 8  # noise does not survive the trip through 16 x 16


def test_pixels_the_edit_does_not_touch_stay_bit_exact():
    """A network that changes only a 4 x 4 block of its 16 x 16 view: every full-resolution pixel outside the
    block's bicubic footprint is the input's exactly; inside, the change is there."""
    import tensorflow as tf

    def change(image):  # [-1, 1]: +0.5 on rows 4-7, columns 8-11
        box = np.zeros((1, 16, 16, 1), np.float32)
        box[:, 4:8, 8:12] = 0.5
        return tf.clip_by_value(image + box, -1.0, 1.0)

    height, width = 96, 80
    images = np.random.RandomState(4).randint(0, 200, (1, height, width, 3)).astype(np.uint8)
    out = _stub_model(change).edit(images, [1.0])["image"]
    # photo pixel x sits at (x + 0.5) * 16 / width - 0.5 in the model's view; the change is warped back bicubic
    # (align.CHANGE_INTERPOLATION), which reads floor - 1 to floor + 2
    u = (np.arange(width) + 0.5) * 16 / width - 0.5
    v = (np.arange(height) + 0.5) * 16 / height - 0.5
    cols = (np.floor(u) + 2 >= 8) & (np.floor(u) - 1 <= 11)
    rows = (np.floor(v) + 2 >= 4) & (np.floor(v) - 1 <= 7)
    touched = rows[:, None] & cols[None, :]
    np.testing.assert_array_equal(out[0][~touched], images[0][~touched])
    inside = np.zeros_like(touched)
    inside[int(height * 5 / 16) : int(height * 7 / 16), int(width * 9 / 16) : int(width * 11 / 16)] = True
    assert (out[0][inside].astype(int) - images[0][inside]).min() > 30


def test_the_api_and_the_edit_cli_share_one_paste_back(monkeypatch):
    from tf_faceedit.data import align

    calls = []
    original = align.paste_back
    monkeypatch.setattr(align, "paste_back", lambda *a, **k: calls.append(k) or original(*a, **k))
    images = np.random.RandomState(5).randint(0, 256, (2, 40, 30, 3)).astype(np.uint8)
    model = _stub_model()
    model.edit(images, [1.0])
    assert len(calls) == 2 and all(call["original_face"] is not None for call in calls)
    assert model._backend.seen == [(2, 16, 16, 3)]  # the network saw the image as preprocessing makes it
    model.edit(images, [1.0], keep_detail=False)
    assert len(calls) == 2 and model._backend.seen[-1] == (2, 40, 30, 3)


def check_degenerate_batches(model):
    """An empty batch gives empty outputs (the keys of a real call), a 1 x 1 image is edited, a grayscale or RGBA
    image or one with no pixel is a one-line DataError naming the problem: never a TensorFlow error."""
    k = len(model.attribute_names)
    one = np.full((1, 1, 1, 3), 120, np.uint8)
    hole = np.ones((1, 1, 1, 1), np.uint8)
    normal = call(model, one, hole, np.zeros((1, k), np.float32))
    main = "image" if model.task == "edit" else "completed"
    assert normal[main].shape == (1, 1, 1, 3) and normal[main].dtype == np.uint8
    empty = call(model, np.zeros((0, 7, 5, 3), np.uint8), np.zeros((0, 7, 5, 1), np.uint8), np.zeros((0, k)))
    assert set(empty) == set(normal)
    for key, value in empty.items():
        assert value.dtype == normal[key].dtype and len(value) == 0, key
        if value.dtype == np.uint8:
            assert value.shape == (0, 7, 5, 3), key
        else:
            assert value.shape[1:] == normal[key].shape[1:], key
    if model.task == "edit":  # a dict leaves the other attributes to predict: nothing to predict them on
        edited = model.edit(np.zeros((0, 7, 5, 3), np.uint8), {model.attribute_names[0]: 1.0})
        assert edited["image"].shape == (0, 7, 5, 3)
    if model.can_predict_attributes:
        assert model.predict_attributes(np.zeros((0, 7, 5, 3), np.uint8)).shape == (0, k)
    masks = np.zeros((1, 6, 6, 1), np.uint8)
    for images, what in [
        (np.zeros((6, 6), np.uint8), "grayscale"),
        (np.zeros((1, 6, 6, 1), np.uint8), "grayscale"),
        (np.zeros((6, 6, 4), np.uint8), "RGBA"),
        (np.zeros((1, 0, 6, 3), np.uint8), "at least 1 x 1"),
    ]:
        with pytest.raises(DataError, match=what) as info:
            call(model, images, masks, np.zeros(k, np.float32))
        assert "\n" not in str(info.value)


def test_degenerate_batches_on_a_run_and_an_export(both):
    _, from_dir, from_export = both
    for model in (from_dir, from_export):
        check_degenerate_batches(model)


def test_degenerate_batches_through_the_stub():
    check_degenerate_batches(_stub_model())
