"""`tf_faceedit.load(model_dir)` runs the networks through `processing.CompiledInference`: traced once, whatever
the batch size and image size, and giving the numbers of the eager `processing.run_inference`."""

import numpy as np
import pytest
import tensorflow as tf

import tf_faceedit
from tests import model_runs
from tf_faceedit.errors import ConfigError
from tf_faceedit.serving import processing

# (batch, height, width) of successive calls: new batch sizes and image sizes
CALLS = [(1, 30, 26), (3, 41, 41), (2, 17, 64)]


@pytest.fixture(scope="module", params=model_runs.method_params(fast={"sagan", "pggan_completion"}))
def run(request, tmp_path_factory, synthetic_celeba):
    model_dir, trainer = model_runs.checkpointed_run(
        request.param, synthetic_celeba, tmp_path_factory.mktemp(f"compiled_{request.param}") / "run"
    )
    return model_dir, trainer


def inputs(task, k, batch, height, width, seed):
    rng = np.random.RandomState(seed)
    image = rng.randint(0, 256, (batch, height, width, 3)).astype(np.uint8)
    attributes = rng.randint(0, 2, (batch, k)).astype(np.float32)
    mask = None
    if task == "complete":
        mask = np.zeros((batch, height, width, 1), np.uint8)
        mask[:, height // 4 : height // 2, width // 3 : width // 2 + 2] = 255
    return image, attributes, mask


def assert_close(compiled, eager, atol=1e-5):
    assert set(compiled) == set(eager)
    for key, value in compiled.items():
        reference = np.asarray(eager[key])
        assert value.shape == reference.shape and value.dtype == reference.dtype, key
        if value.dtype == np.uint8:  # graph vs eager kernels: a rounding boundary may move a pixel by one level
            diff = np.abs(value.astype(int) - reference.astype(int))
            assert diff.max() <= 1 and diff.mean() < 0.01, key
        else:
            np.testing.assert_allclose(value, reference, atol=atol, err_msg=key)


@pytest.mark.parametrize("engine", ["tensorflow", "tflite"])
def test_load_traces_once_and_matches_eager(run, engine):
    model_dir, _ = run
    model = tf_faceedit.load(model_dir, engine=engine)
    k = len(model.attribute_names)
    traced = None
    for i, (batch, height, width) in enumerate(CALLS):
        image, attributes, mask = inputs(model.task, k, batch, height, width, seed=i)
        if model.task == "complete":
            out = model.complete(image, mask, attributes)
        else:  # the serving computation (keep_detail pastes back its S x S output: tests/test_api.py)
            out = model.edit(image, attributes, keep_detail=False)
        eager = processing.run_inference(model.trainer.infer, model.task, image, attributes, model.image_size, k, mask)
        assert_close(out, eager, atol=1e-5 if engine == "tensorflow" else 1e-4)
        assert out["image" if model.task == "edit" else "completed"].shape[1:3] == (height, width)
        compiled = model._backend.compiled
        assert compiled.engine_for(batch) == engine
        # traced (and frozen) at the first call; never again, at any new batch size or image size. tensorflow: the
        # whole run (1); tflite: the pre- and post-processing around the interpreter (2); the frozen backend
        # traces predict up front too
        if traced is None:
            traced = compiled.tracing_count()
            assert traced == (1 if engine == "tensorflow" else 2) + int(model.can_predict_attributes)
        assert (compiled._frozen_run is not None) == (engine == "tensorflow")  # load() freezes the weights
        assert compiled.tracing_count() == traced, (i, batch, height, width)
    if model.task == "edit":  # one [H, W, 3] image, and the attribute prediction (its own function: one trace)
        image, attributes, _ = inputs(model.task, k, 1, 23, 19, seed=9)
        assert model.edit(image[0], attributes[0])["image"].shape == (23, 19, 3)
        if model.can_predict_attributes:
            for batch, height, width in CALLS[:2]:
                image, _, _ = inputs(model.task, k, batch, height, width, seed=batch)
                eager = processing.predict_attributes(model.trainer.predict_attributes, image, model.image_size)
                np.testing.assert_array_equal(model.predict_attributes(image), eager.numpy())
        assert model._backend.compiled.tracing_count() == traced  # still no new trace


def test_load_auto_engine_chooses_per_batch_size_and_matches_eager(run):
    """engine="auto" (load's default): an engine per batch size up to AUTO_MAX_BATCH, chosen once; TensorFlow above."""
    model_dir, _ = run
    model = tf_faceedit.load(model_dir)
    k = len(model.attribute_names)
    compiled = model._backend.compiled
    assert compiled.engine == "auto"
    for batch in (1, 2, processing.AUTO_MAX_BATCH + 1, 1):
        image, attributes, mask = inputs(model.task, k, batch, 20, 18, seed=batch)
        if model.task == "complete":
            out = model.complete(image, mask, attributes)
        else:
            out = model.edit(image, attributes, keep_detail=False)
        eager = processing.run_inference(model.trainer.infer, model.task, image, attributes, model.image_size, k, mask)
        assert_close(out, eager, atol=1e-4)
    assert compiled.engine_for(processing.AUTO_MAX_BATCH + 1) == "tensorflow"
    assert set(compiled._engines) == {1, 2} and set(compiled._engines.values()) <= {"tensorflow", "tflite"}


def test_compiled_inference_counts_python_traces():
    """The Python body of `infer` runs at tracing only: a side-effect counter stays at 1 over calls of new shapes."""
    traces = []
    kernel = tf.Variable(tf.random.stateless_normal([3, 3, 3, 3], seed=[1, 2]))

    def infer(inputs):
        traces.append(1)
        image = tf.nn.conv2d(inputs["image"], kernel, 1, "SAME")
        return {
            "image": tf.tanh(image + tf.reduce_sum(inputs["attributes"], axis=1)[:, None, None, None]),
            "attention": tf.sigmoid(image[..., :1]),
        }

    compiled = processing.CompiledInference(infer, "edit", image_size=16, num_attributes=2)
    for i, (batch, height, width) in enumerate(CALLS):
        image, attributes, _ = inputs("edit", 2, batch, height, width, seed=i)
        out = compiled(image, attributes)
        eager = processing.run_inference(infer, "edit", image, attributes, 16, 2)
        assert_close({key: value.numpy() for key, value in out.items()}, eager)
    assert len(traces) == 1 + len(CALLS)  # 1 trace + the eager reference calls
    assert compiled.tracing_count() == 1


def test_compiled_inference_rejects_wrong_inputs():
    compiled = processing.CompiledInference(lambda inputs: {"image": inputs["image"]}, "edit", 8, 2)
    image = np.zeros((1, 8, 8, 3), np.uint8)
    with pytest.raises((TypeError, ValueError)):
        compiled(image, np.zeros((1, 3), np.float32))  # 3 attributes where the model has 2
    with pytest.raises(ValueError, match="task"):
        processing.CompiledInference(lambda inputs: inputs, "classify", 8, 2)


def test_frozen_inference_equals_unfrozen_and_keeps_the_weights_of_its_construction():
    kernel = tf.Variable(tf.random.stateless_normal([3, 3, 3, 3], seed=[3, 4]))

    def infer(inputs):
        image = tf.nn.conv2d(inputs["image"], kernel, 1, "SAME")
        return {"image": tf.tanh(image + tf.reduce_sum(inputs["attributes"], axis=1)[:, None, None, None])}

    live = processing.CompiledInference(infer, "edit", image_size=16, num_attributes=2)
    frozen = processing.CompiledInference(infer, "edit", image_size=16, num_attributes=2, freeze=True)
    assert frozen.tracing_count() == 1  # traced at construction
    for i, (batch, height, width) in enumerate(CALLS):
        image, attributes, _ = inputs("edit", 2, batch, height, width, seed=i)
        assert_close({k: v.numpy() for k, v in frozen(image, attributes).items()}, live(image, attributes))
    assert frozen.tracing_count() == 1
    image, attributes, _ = inputs("edit", 2, 1, 16, 16, seed=5)
    before = frozen(image, attributes)["image"].numpy()
    kernel.assign(kernel * -1.0)  # documented: a frozen function does not see later weight changes
    np.testing.assert_array_equal(frozen(image, attributes)["image"].numpy(), before)
    assert not np.array_equal(live(image, attributes)["image"].numpy(), before)
    with pytest.raises((TypeError, ValueError)):  # 3 attributes where the model has 2: the unfrozen path's error
        frozen(image, np.zeros((1, 3), np.float32))


def test_load_bfloat16_runs_the_networks_in_bfloat16_close_to_float32(run):
    """precision="bfloat16": the networks compute in bfloat16 (float32 weights and outputs), traced once, and the
    uint8 results stay within a few levels of float32's."""
    model_dir, _ = run
    full = tf_faceedit.load(model_dir)
    half = tf_faceedit.load(model_dir, precision="bfloat16")
    assert half.info["precision"] == "bfloat16" and full.info["precision"] == "float32"
    policies = {layer.dtype_policy.name for net in half.trainer.networks.values() for layer in net.layers}
    assert "mixed_bfloat16" in policies
    assert all(v.dtype == "float32" for net in half.trainer.networks.values() for v in net.weights)
    k = len(full.attribute_names)
    for i, (batch, height, width) in enumerate(CALLS):
        image, attributes, mask = inputs(full.task, k, batch, height, width, seed=i)
        if full.task == "complete":
            a, b = full.complete(image, mask, attributes), half.complete(image, mask, attributes)
        else:
            a, b = full.edit(image, attributes), half.edit(image, attributes)
        assert set(a) == set(b)
        for key in a:
            assert a[key].shape == b[key].shape and a[key].dtype == b[key].dtype, key
            if a[key].dtype == np.uint8:
                diff = np.abs(a[key].astype(int) - b[key].astype(int))
                assert diff.mean() < 1.5 and diff.max() <= 16, (key, diff.mean(), diff.max())
    assert half._backend.compiled.tracing_count() == 1 + int(half.can_predict_attributes)  # traced once


def test_load_rejects_an_unknown_precision(run):
    model_dir, _ = run
    with pytest.raises(ConfigError, match="precision must be one of float32, bfloat16"):
        tf_faceedit.load(model_dir, precision="float16")


def test_load_checks_its_engine(run):
    model_dir, _ = run
    with pytest.raises(ConfigError, match="engine must be one of auto, tensorflow, tflite"):
        tf_faceedit.load(model_dir, engine="onnx")
    with pytest.raises(ConfigError, match="engine='tflite' runs float32 networks"):
        tf_faceedit.load(model_dir, precision="bfloat16", engine="tflite")
    assert tf_faceedit.load(model_dir, precision="bfloat16")._backend.engine == "tensorflow"  # auto: no TFLite
