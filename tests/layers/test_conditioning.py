"""Tests of TileAttributes."""

import keras
import numpy as np
from keras import ops

from tests.layers.harness import run_layer_test
from tf_faceedit.layers import TileAttributes
from tf_faceedit.layers.conditioning import flip_attribute, flip_one_attribute


def test_tiles_each_attribute_as_constant_map():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(2, 16, 16, 3)).astype("float32")
    attributes = np.array([[1, 0, 1, 0, 0.5], [0, 1, 1, 0, -1]], "float32")
    out = np.asarray(TileAttributes()([features, attributes]))
    assert out.shape == (2, 16, 16, 8) and out.dtype == np.float32
    np.testing.assert_array_equal(out[..., :3], features)
    for n in range(2):
        for k in range(5):
            np.testing.assert_array_equal(out[n, :, :, 3 + k], np.full((16, 16), attributes[n, k]))


def test_integer_attributes_are_cast_to_feature_dtype():
    out = TileAttributes()([np.zeros((1, 4, 4, 2), "float32"), np.array([[1, 0]], "int32")])
    assert np.asarray(out).dtype == np.float32
    np.testing.assert_array_equal(np.asarray(out)[0, :, :, 2], np.ones((4, 4)))


def test_functional_unknown_batch_and_size():
    features, attributes = keras.Input((None, None, 3)), keras.Input((5,))
    out = TileAttributes()([features, attributes])
    assert tuple(out.shape) == (None, None, None, 8)
    model = keras.Model([features, attributes], out)
    result = np.asarray(model([np.zeros((3, 6, 10, 3), "float32"), np.ones((3, 5), "float32")]))
    assert result.shape == (3, 6, 10, 8)
    np.testing.assert_array_equal(result[..., 3:], 1.0)


def test_compute_output_shape_and_layer_harness(tmp_path):
    assert TileAttributes().compute_output_shape([(None, 16, 16, 3), (None, 5)]) == (None, 16, 16, 8)
    rng = np.random.default_rng(0)
    features, attributes = (
        rng.normal(size=(2, 6, 10, 3)).astype("float32"),
        rng.integers(0, 2, (2, 5)).astype("float32"),
    )
    run_layer_test(TileAttributes, {"name": "tile"}, [features, attributes], (2, 6, 10, 8), tmp_path)


def test_flip_one_attribute():
    c = ops.convert_to_tensor(np.random.RandomState(0).randint(0, 2, (64, 4)).astype("float32"))
    t = ops.convert_to_numpy(flip_one_attribute(c, keras.random.SeedGenerator(3)))
    changed = np.abs(t - ops.convert_to_numpy(c)).sum(axis=1)
    np.testing.assert_array_equal(changed, np.ones(64))  # exactly one flipped per sample
    assert set(np.unique(t)) <= {0.0, 1.0}
    assert len(set(np.argmax(np.abs(t - ops.convert_to_numpy(c)), axis=1))) > 1  # not always the same one
    single = ops.convert_to_tensor([[0.0], [1.0]])
    np.testing.assert_array_equal(ops.convert_to_numpy(flip_one_attribute(single, 0)), [[1.0], [0.0]])


def test_flip_attribute_flips_that_column_only():
    c = ops.convert_to_tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    np.testing.assert_array_equal(ops.convert_to_numpy(flip_attribute(c, 1)), [[0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
