"""Tests of the normalization / activation / initializer factories."""

import keras
import numpy as np
import pytest

from tests.layers.harness import run_layer_test
from tf_faceedit.layers import ConvNormAct, activation_layer, gan_initializer, normalization
from tf_faceedit.layers.norm import BatchNormalization, InstanceNormalization


def test_instance_is_our_instance_norm_with_affine_weights():
    layer = normalization("instance")
    assert isinstance(layer, InstanceNormalization)
    assert layer.epsilon == pytest.approx(1e-5)
    assert layer.center and layer.scale  # affine parameters
    layer.build((None, 4, 4, 3))
    assert [w.name for w in layer.weights] == ["gamma", "beta"]  # GroupNormalization's names and order


def _affine(layer, channels, rng):
    layer.gamma.assign(rng.uniform(0.5, 1.5, channels).astype("float32"))
    layer.beta.assign(rng.normal(0.0, 0.5, channels).astype("float32"))


def _value_and_grads(layer, x, **kwargs):
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, **kwargs)
        loss = tf.reduce_sum(tf.cast(y, "float32") * tf.sin(tf.cast(y, "float32")))  # a non-trivial upstream gradient
    grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
    return [np.asarray(tf.cast(t, "float32")) for t in [y, *grads]]


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("shape", [(3, 7, 5, 6), (2, 1, 1, 4), (2, 16, 16, 32)])
def test_instance_norm_equals_group_norm_one_group_per_channel(shape, training):
    """The layer that replaced `GroupNormalization(groups=-1)` (issue 17) computes the same values and gradients,
    in inference (plain ops) and in training (the closed-form gradient on TensorFlow)."""
    rng = np.random.default_rng(4)
    x = (rng.normal(size=shape) * rng.uniform(0.5, 3.0, shape[-1]) + rng.normal(0, 2, shape[-1])).astype("float32")
    ours, theirs = InstanceNormalization(epsilon=1e-5), keras.layers.GroupNormalization(groups=-1, epsilon=1e-5)
    for layer in (ours, theirs):
        layer.build(shape)
        _affine(layer, shape[-1], np.random.default_rng(9))
    for a, b in zip(_value_and_grads(ours, x, training=training), _value_and_grads(theirs, x)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(b).max())))


@pytest.mark.parametrize("center, scale", [(True, True), (False, True), (True, False)])
@pytest.mark.parametrize("compiled", [False, True])
def test_instance_norm_closed_form_gradient_matches_autodiff_to_second_order(center, scale, compiled):
    """The hand-written TensorFlow gradient (`backend.instance_norm`) against GroupNormalization's autodiff: the
    first-order gradients and the gradient of a gradient-penalty-like ||d loss / dx||^2, with and without the
    affine weights."""
    import tensorflow as tf

    shape = (2, 6, 5, 3)
    rng = np.random.default_rng(11)
    x = tf.constant((rng.normal(size=shape) * 2 + 1).astype("float32"))
    ours = InstanceNormalization(epsilon=1e-5, center=center, scale=scale)
    theirs = keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, center=center, scale=scale)
    affine = [v for v, used in zip((rng.uniform(0.5, 1.5, 3), rng.normal(0, 0.5, 3)), (scale, center)) if used]
    results = []
    for layer in (ours, theirs):
        layer.build(shape)
        for weight, values in zip(layer.weights, affine):
            weight.assign(values.astype("float32"))

        def gradients(x, layer=layer):
            with tf.GradientTape() as outer:
                outer.watch(x)
                with tf.GradientTape() as inner:
                    inner.watch(x)
                    loss = tf.reduce_sum(tf.sin(layer(x, training=True)) * tf.range(1.0, 4.0))
                dx = inner.gradient(loss, x)
                penalty = tf.reduce_sum(dx**2)
            return [dx, *outer.gradient(penalty, [x, *layer.weights])]

        results.append([np.asarray(g) for g in (tf.function(gradients) if compiled else gradients)(x)])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(b).max())))


def test_instance_norm_under_bfloat16_policy_matches_float32():
    x = np.random.default_rng(5).normal(size=(2, 8, 8, 4)).astype("float32") * 3 + 1
    exact = np.asarray(InstanceNormalization()(x))
    half = InstanceNormalization(dtype="mixed_bfloat16")
    y = half(x)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    np.testing.assert_allclose(np.asarray(keras.ops.cast(y, "float32")), exact, atol=0.05)


def test_instance_norm_refuses_other_groupings():
    with pytest.raises(ValueError, match="groups=2"):
        InstanceNormalization(groups=2)
    assert InstanceNormalization(groups=-1, axis=-1).epsilon == pytest.approx(1e-5)  # old GroupNorm configs


@pytest.mark.parametrize("training", [True, False])
def test_fused_batch_norm_equals_keras_batch_norm(training):
    """Our BatchNormalization (TensorFlow's fused kernel) = keras.layers.BatchNormalization: the output, the
    gradients of input, gamma and beta, and the moving statistics after the call (biased variance, momentum)."""
    rng = np.random.default_rng(6)
    shape = (4, 6, 5, 8)
    x = (rng.normal(size=shape) * 2.0 + 1.0).astype("float32")
    ours, theirs = (
        BatchNormalization(momentum=0.9, epsilon=1e-5),
        keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5),
    )
    for layer in (ours, theirs):
        layer.build(shape)
        _affine(layer, shape[-1], np.random.default_rng(2))
        layer.moving_mean.assign(np.full(shape[-1], 0.3, "float32"))
        layer.moving_variance.assign(np.full(shape[-1], 2.0, "float32"))
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    for a, b in zip(_value_and_grads(ours, x, training=training), _value_and_grads(theirs, x, training=training)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(b).max())))
    for name in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(np.asarray(getattr(ours, name)), np.asarray(getattr(theirs, name)), rtol=1e-5)
    if training:  # the statistics did move
        assert not np.allclose(np.asarray(ours.moving_mean), 0.3)


def test_fused_batch_norm_keeps_keras_path_where_it_does_not_apply():
    layer = BatchNormalization()
    assert not layer._fused_applies(np.zeros((2, 3), "float32"), None)  # rank 2: Keras' own path
    y = layer(np.random.default_rng(0).normal(size=(8, 3)).astype("float32"), training=True)
    np.testing.assert_allclose(np.asarray(y).mean(axis=0), 0.0, atol=1e-5)


def test_batch_and_layer_and_none():
    batch = normalization("batch", name="bn")
    assert isinstance(batch, BatchNormalization) and isinstance(batch, keras.layers.BatchNormalization)
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


@pytest.mark.parametrize(
    "layer_cls, kwargs",
    [
        (InstanceNormalization, {"epsilon": 1e-3, "center": False}),
        (InstanceNormalization, {"epsilon": 1e-5, "scale": False}),
        (BatchNormalization, {"momentum": 0.9, "epsilon": 1e-3}),
    ],
    ids=["instance-no-center", "instance-no-scale", "batch"],
)
def test_layer_harness(layer_cls, kwargs, tmp_path):
    x = np.random.default_rng(0).normal(1.0, 2.0, (2, 5, 5, 4)).astype("float32")
    run_layer_test(layer_cls, kwargs, x, (2, 5, 5, 4), tmp_path)
