"""Tests of the normalization / activation / initializer factories."""

import keras
import numpy as np
import pytest

from tf_faceedit.layers import ConvNormAct, activation_layer, gan_initializer, normalization


def test_instance_is_group_norm_with_one_group_per_channel():
    layer = normalization("instance")
    assert isinstance(layer, keras.layers.GroupNormalization)
    assert layer.groups == -1
    assert layer.epsilon == pytest.approx(1e-5)
    assert layer.center and layer.scale  # affine parameters


def test_batch_and_layer_and_none():
    batch = normalization("batch", name="bn")
    assert isinstance(batch, keras.layers.BatchNormalization)
    assert batch.momentum == pytest.approx(0.9)
    assert batch.epsilon == pytest.approx(1e-5)
    assert batch.name == "bn"
    assert isinstance(normalization("layer"), keras.layers.LayerNormalization)
    assert normalization("none") is None
    assert normalization(None) is None


def test_normalization_kwargs_override_defaults():
    assert normalization("instance", epsilon=1e-3).epsilon == pytest.approx(1e-3)


def test_unknown_normalization_lists_kinds():
    with pytest.raises(ValueError, match="instance, batch, layer, none"):
        normalization("spectral")


def _per_instance_stats(y):
    return y.mean(axis=(1, 2)), y.std(axis=(1, 2))


def test_instance_norm_zero_mean_unit_std_per_sample_and_channel():
    rng = np.random.default_rng(0)
    # Different offsets/scales per sample and channel: batch norm would not normalise each of them.
    x = rng.normal(size=(2, 8, 8, 4)) * np.array([1.0, 3.0, 0.5, 2.0]) + np.array([5.0, -2.0, 0.0, 10.0])
    x[1] *= 4.0
    y = np.asarray(normalization("instance")(x.astype("float32")))
    mean, std = _per_instance_stats(y)
    np.testing.assert_allclose(mean, 0.0, atol=1e-4)
    np.testing.assert_allclose(std, 1.0, atol=1e-3)


def test_instance_norm_does_not_mix_samples():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 6, 6, 3)).astype("float32")
    layer = normalization("instance")
    y1 = np.asarray(layer(x))
    x2 = x.copy()
    x2[1] = x2[1] * 7.0 + 3.0
    y2 = np.asarray(layer(x2))
    np.testing.assert_allclose(y1[0], y2[0], atol=1e-6)


def test_conv_norm_act_instance_output_is_normalised():
    x = np.random.default_rng(2).normal(size=(2, 8, 8, 3)).astype("float32") * 5 + 1
    y = np.asarray(ConvNormAct(6, norm="instance", activation=None)(x))
    mean, std = _per_instance_stats(y)
    np.testing.assert_allclose(mean, 0.0, atol=1e-4)
    np.testing.assert_allclose(std, 1.0, atol=1e-2)


def test_gan_initializer_is_normal_with_given_stddev():
    init = gan_initializer()
    assert isinstance(init, keras.initializers.RandomNormal)
    sample = np.asarray(init((200, 100)))
    assert abs(sample.mean()) < 0.002
    assert sample.std() == pytest.approx(0.02, rel=0.05)
    assert np.asarray(gan_initializer(0.5)((200, 100))).std() == pytest.approx(0.5, rel=0.05)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("relu", [0.0, 0.0, 2.0]),
        ("lrelu", [-0.2, 0.0, 2.0]),
        ("leaky_relu", [-0.2, 0.0, 2.0]),
        ("tanh", np.tanh([-1.0, 0.0, 2.0])),
        ("sigmoid", 1 / (1 + np.exp(-np.array([-1.0, 0.0, 2.0])))),
    ],
)
def test_activation_values(name, expected):
    layer = activation_layer(name)
    np.testing.assert_allclose(np.asarray(layer(np.array([-1.0, 0.0, 2.0], "float32"))), expected, rtol=1e-6)


def test_activation_negative_slope_and_none():
    layer = activation_layer("lrelu", negative_slope=0.1)
    np.testing.assert_allclose(np.asarray(layer(np.array([-3.0], "float32"))), [-0.3], rtol=1e-6)
    for name in ("none", "linear", None, "NONE"):
        assert activation_layer(name) is None


def test_unknown_activation():
    with pytest.raises(ValueError, match="relu"):
        activation_layer("swishy")
