"""`tflite_runtime.TFLiteNetwork` (a network run in-process by the TFLite interpreter) and the engines of
`processing.CompiledInference` that use it."""

import time

import numpy as np
import pytest
import tensorflow as tf

from tf_faceedit.layers.blocks import ConvNormAct
from tf_faceedit.serving import processing, tflite_runtime


def small_network(seed=0):
    """A conditioned encoder-decoder down to a 2x2 map and back (ConvNormAct's small-map matrix-product plans,
    the transposed "scatter" one included), with two outputs."""
    tf.keras.utils.set_random_seed(seed)
    down1 = ConvNormAct(8, 4, strides=2, norm="batch", activation="leaky_relu")
    down2 = ConvNormAct(16, 4, strides=2, norm="batch", activation="leaky_relu")
    up1 = ConvNormAct(8, 4, strides=2, norm="batch", activation="relu", transpose=True)
    up2 = ConvNormAct(3, 4, strides=2, norm="none", activation="tanh", transpose=True)

    def infer(inputs):
        x = inputs["image"]
        latent = down2(down1(x))
        tiled = tf.ones_like(latent[..., :1]) * inputs["attributes"][:, None, None, :]
        out = up2(up1(tf.concat([latent, tiled], -1)))
        return {"image": out, "latent": latent}

    specs = {"image": tf.TensorSpec([None, 8, 8, 3]), "attributes": tf.TensorSpec([None, 2])}
    return infer, specs


def test_network_matches_tensorflow_at_every_batch_size():
    infer, specs = small_network()
    assert ConvNormAct(8, 4, strides=2, transpose=True)._small_map_plan((1, 2, 2, 16))[0] == "scatter"
    network = tflite_runtime.TFLiteNetwork(infer, specs, num_threads=1)
    assert network.output_names == ["image", "latent"]
    rng = np.random.RandomState(1)
    for batch in (1, 3, 2, 5, 6, 1):
        x = {
            "image": rng.uniform(-1, 1, (batch, 8, 8, 3)).astype(np.float32),
            "attributes": rng.randint(0, 2, (batch, 2)).astype(np.float32),
        }
        got = network(x)
        expected = infer({key: tf.constant(value) for key, value in x.items()})
        assert set(got) == {"image", "latent"}
        for key, value in expected.items():
            assert got[key].shape == tuple(value.shape) and got[key].dtype == np.float32
            np.testing.assert_allclose(got[key], value.numpy(), atol=1e-5, err_msg=key)
    assert list(network._plans) == [2, 5, 6, 1]  # one interpreter per batch size, the last MAX_PLANS kept
    assert len(network._plans) == tflite_runtime.MAX_PLANS


def test_inputs_are_matched_by_name_not_position():
    """The attributes change the output (a wrong input order would not even have matching shapes here)."""
    infer, specs = small_network()
    network = tflite_runtime.TFLiteNetwork(infer, {"attributes": specs["attributes"], "image": specs["image"]})
    x = {"image": np.zeros((1, 8, 8, 3), np.float32), "attributes": np.array([[0.0, 1.0]], np.float32)}
    np.testing.assert_allclose(
        network(x)["image"], infer({k: tf.constant(v) for k, v in x.items()})["image"].numpy(), atol=1e-5
    )


def test_a_network_without_builtin_kernels_is_unavailable():
    def infer(inputs):  # an antialiased resize is TensorFlow's ScaleAndTranslate: no TFLite builtin
        image = tf.image.resize(inputs["image"], [4, 4], antialias=True)
        return {"image": tf.image.resize(image, [8, 8], antialias=True)}

    with pytest.raises(tflite_runtime.TFLiteUnavailable, match="converter failed"):
        tflite_runtime.TFLiteNetwork(
            infer, {"image": tf.TensorSpec([None, 8, 8, 3]), "attributes": tf.TensorSpec([None, 1])}
        )
    with pytest.raises(tflite_runtime.TFLiteUnavailable):
        processing.CompiledInference(infer, "edit", 8, 1, freeze=True, engine="tflite")
    auto = processing.CompiledInference(infer, "edit", 8, 1, freeze=True, engine="auto")
    image = np.random.RandomState(0).randint(0, 256, (1, 8, 8, 3)).astype(np.uint8)
    out = auto(image, np.zeros((1, 1), np.float32))
    assert auto.engine_for(1) == "tensorflow" and out["image"].shape == (1, 8, 8, 3)


def test_disagreeing_outputs_make_the_network_unavailable(monkeypatch):
    infer, specs = small_network()
    monkeypatch.setattr(tflite_runtime, "AGREEMENT", -1.0)  # nothing agrees
    with pytest.raises(tflite_runtime.TFLiteUnavailable, match="off TensorFlow's"):
        tflite_runtime.TFLiteNetwork(infer, specs)


def test_compiled_engines_agree_and_check_their_arguments():
    infer, _ = small_network(seed=2)
    rng = np.random.RandomState(3)
    image = rng.randint(0, 256, (2, 13, 11, 3)).astype(np.uint8)
    attributes = rng.randint(0, 2, (2, 2)).astype(np.float32)
    outs = {}
    for engine in ("tensorflow", "tflite"):
        compiled = processing.CompiledInference(infer, "edit", 8, 2, freeze=True, engine=engine)
        outs[engine] = {key: value.numpy() for key, value in compiled(image, attributes).items()}
        assert compiled.engine_for(2) == engine
        with pytest.raises((TypeError, ValueError)):  # 3 attributes where the model has 2
            compiled(image, np.zeros((2, 3), np.float32))
    assert outs["tflite"]["image"].shape == (2, 13, 11, 3) and outs["tflite"]["latent"].shape == (2, 2, 2, 16)
    diff = np.abs(outs["tflite"]["image"].astype(int) - outs["tensorflow"]["image"].astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.01
    np.testing.assert_allclose(outs["tflite"]["latent"], outs["tensorflow"]["latent"], atol=1e-5)
    with pytest.raises(ValueError, match="engine must be one of"):
        processing.CompiledInference(infer, "edit", 8, 2, freeze=True, engine="onnx")
    with pytest.raises(ValueError, match="freeze=True"):
        processing.CompiledInference(infer, "edit", 8, 2, engine="tflite")


@pytest.mark.parametrize("slow_engine", ["tensorflow", "tflite"])
def test_auto_chooses_the_faster_engine_once_per_batch_size(monkeypatch, slow_engine):
    infer, _ = small_network(seed=4)
    compiled = processing.CompiledInference(infer, "edit", 8, 2, freeze=True, engine="auto")
    calls = {"tensorflow": 0, "tflite": 0}
    call_tf, call_tflite = processing._call, compiled._call_tflite

    def slowed(name, fn):
        def wrapped(*args):
            calls[name] += 1
            if name == slow_engine:
                time.sleep(0.02)
            return fn(*args)

        return wrapped

    monkeypatch.setattr(processing, "_call", slowed("tensorflow", call_tf))
    monkeypatch.setattr(compiled, "_call_tflite", slowed("tflite", call_tflite))
    image = np.zeros((1, 8, 8, 3), np.uint8)
    for _ in range(3):
        compiled(image, np.zeros((1, 2), np.float32))
    fast = "tflite" if slow_engine == "tensorflow" else "tensorflow"
    assert compiled.engine_for(1) == fast
    timed = 2 + processing.AUTO_TIMING_CALLS
    assert calls[slow_engine] == timed and calls[fast] == timed + 3  # timed once; then the 3 calls, all fast
    assert compiled.engine_for(processing.AUTO_MAX_BATCH + 1) == "tensorflow"  # not timed
    assert set(compiled._engines) == {1}
