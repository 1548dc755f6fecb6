import keras
import numpy as np
import pytest
from keras import ops

from tests.layers.harness import run_layer_test
from tf_faceedit.layers import FadeIn, MinibatchStddev, downsample2x, upsample2x


def _np(x):
    return ops.convert_to_numpy(x)


def test_downsample_and_upsample_golden():
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    down = _np(downsample2x(x))
    np.testing.assert_allclose(down[0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])
    assert _np(downsample2x(x, 4)).shape == (1, 1, 1, 1) and _np(downsample2x(x, 4))[0, 0, 0, 0] == 7.5
    up = _np(upsample2x(down))
    assert up.shape == (1, 4, 4, 1)
    np.testing.assert_array_equal(up[0, :2, :2, 0], np.full((2, 2), 2.5))  # nearest: each pixel becomes 2x2
    np.testing.assert_array_equal(up[0, 2:, 2:, 0], np.full((2, 2), 12.5))
    np.testing.assert_array_equal(_np(downsample2x(upsample2x(down))), down)
    assert _np(upsample2x(x, 4)).shape == (1, 16, 16, 1)
    assert downsample2x(x, 1) is x and upsample2x(x, 1) is x


def test_fade_in_blends_and_is_exact_at_the_ends():
    rng = np.random.RandomState(0)
    new, old = rng.randn(2, 4, 4, 3).astype("float32"), rng.randn(2, 4, 4, 3).astype("float32")
    layer = FadeIn()

    def scalar(value):
        return ops.convert_to_tensor(value, "float32")

    np.testing.assert_array_equal(_np(layer([new, old, scalar(0.0)])), old)
    np.testing.assert_array_equal(_np(layer([new, old, scalar(1.0)])), new)
    np.testing.assert_allclose(_np(layer([new, old, scalar(0.25)])), 0.25 * new + 0.75 * old, rtol=1e-6)
    alpha = keras.Variable(0.5, trainable=False)
    np.testing.assert_allclose(_np(layer([new, old, alpha])), 0.5 * (new + old), rtol=1e-6)
    per_example = np.array([0.0, 1.0], "float32").reshape(2, 1, 1, 1)
    out = _np(layer([new, old, per_example]))
    np.testing.assert_array_equal(out[0], old[0])
    np.testing.assert_array_equal(out[1], new[1])
    with pytest.raises(ValueError, match="new, old, alpha"):
        layer([new, old])
    assert FadeIn().built  # no weights: built before any call (a one-stage network never calls it)


def _stddev_reference(x, group):
    n = x.shape[0]
    y = x.reshape(group, n // group, *x.shape[1:])
    std = np.sqrt(((y - y.mean(axis=0)) ** 2).mean(axis=0) + 1e-8).mean(axis=(1, 2, 3))  # [n / group]
    return np.tile(std, group)


@pytest.mark.parametrize("n, group_size, group", [(8, 4, 4), (6, 4, 3), (5, 4, 1), (2, 4, 2)])
def test_minibatch_stddev_values_and_groups(n, group_size, group):
    x = np.random.RandomState(n).randn(n, 3, 3, 5).astype("float32")
    out = _np(MinibatchStddev(group_size)(x))
    assert out.shape == (n, 3, 3, 6)
    np.testing.assert_array_equal(out[..., :5], x)
    stat = out[..., 5]
    assert np.all(stat == stat[:, :1, :1])  # one constant map per example
    np.testing.assert_allclose(stat[:, 0, 0], _stddev_reference(x, group), rtol=1e-5)


def test_minibatch_stddev_single_example_and_dynamic_batch():
    x = np.ones((1, 2, 2, 3), "float32")
    np.testing.assert_allclose(_np(MinibatchStddev()(x))[..., 3], np.sqrt(1e-8), rtol=1e-4)
    # unknown batch size in a functional model: the group is found with graph ops
    inputs = keras.Input((3, 3, 2))
    model = keras.Model(inputs, MinibatchStddev(4)(inputs))
    batch = np.random.RandomState(1).randn(6, 3, 3, 2).astype("float32")
    np.testing.assert_allclose(_np(model(batch))[:, 0, 0, 2], _stddev_reference(batch, 3), rtol=1e-5)


def test_layer_harness(tmp_path):
    """Config (group_size and epsilon travel: a clone that came back with the defaults would compute something
    else), registration under the stable names `.keras` files of 0.1.0 use (`tf_faceedit>FadeIn`), eager and
    symbolic calls, `.keras` save/load, dtype policy."""
    rng = np.random.RandomState(2)
    x = rng.randn(4, 2, 2, 3).astype("float32")
    run_layer_test(MinibatchStddev, {"group_size": 2, "epsilon": 1e-2, "name": "mbstd"}, x, (4, 2, 2, 4), tmp_path)
    layer = MinibatchStddev(group_size=2, epsilon=1e-2)
    assert not np.allclose(_np(MinibatchStddev()(x))[..., 3], _np(layer(x))[..., 3])  # the arguments matter
    constant = np.ones((2, 2, 2, 3), "float32")  # zero variance: the statistic is sqrt(epsilon)
    np.testing.assert_allclose(_np(layer(constant))[..., 3], 0.1, rtol=1e-5)
    with pytest.raises(ValueError, match="group_size"):
        MinibatchStddev(0)
    new, old = rng.randn(4, 4, 4, 2).astype("float32"), rng.randn(4, 4, 4, 2).astype("float32")
    alpha = rng.rand(4, 1, 1, 1).astype("float32")
    run_layer_test(FadeIn, {"name": "fade"}, [new, old, alpha], (4, 4, 4, 2), tmp_path)
