"""Tests of the CPU fast paths of ConvNormAct's convolution (tf_faceedit.layers.conv_fast_paths): each gives the
plain Keras layer's outputs and gradients, and runs exactly where it is meant to."""

import numpy as np
import pytest

from tf_faceedit.layers import ConvNormAct
from tf_faceedit.layers.conv_fast_paths import ConvFastPaths


def _value_and_derivatives(fn, x, kernel):
    """[y, dL/dx, and the gradient-penalty derivatives d(|dL/dx|^2)/dx and d(|dL/dx|^2)/dkernel] of fn at x, with
    L = sum(y cos y): what a fast path must reproduce of the plain layer (the WGAN-GP critic differentiates twice)."""
    import tensorflow as tf

    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            y = fn(x)
            loss = tf.reduce_sum(y * tf.cos(y))
        grad_x = inner.gradient(loss, x)
        penalty = tf.reduce_sum(tf.square(grad_x))
    second = outer.gradient(penalty, [x, kernel])
    return [np.asarray(t) for t in [y, grad_x, *second]]


def _assert_same(ours, plain):
    assert ours[0].shape == plain[0].shape
    for a, b in zip(ours, plain):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(b).max())))


@pytest.mark.parametrize(
    "shape, kernel, strides, padding, taps",
    [
        ((3, 2, 2, 8), 4, 2, "same", (1, 1)),  # Fader's latent discriminator: 4x4 s2 on 2x2
        ((3, 1, 1, 8), 4, 2, "same", (1, 1)),
        ((3, 3, 2, 8), 4, 3, "same", (0, 1)),  # odd padding: TF puts the smaller half before
        ((3, 4, 4, 8), 4, 4, "same", (0, 0)),
        ((3, 2, 2, 8), 2, 1, "valid", (0, 0)),
        ((3, 3, 3, 8), 4, 2, "same", None),  # a 2x2 output: the plain convolution
        ((3, 2, 2, 8), 3, 1, "same", None),
    ],
)
def test_single_output_convolution_is_the_matmul_of_its_taps(shape, kernel, strides, padding, taps):
    """A ConvNormAct whose output is one position runs as a matmul (issue 17): same values, same gradients
    (zero for the kernel taps that only meet padding) as the Conv2D it replaces."""
    import tensorflow as tf

    rng = np.random.default_rng(3)
    layer = ConvNormAct(16, kernel, strides=strides, padding=padding, norm="none", activation="lrelu")
    layer.build(shape)
    layer.conv.bias.assign(rng.normal(size=16).astype("float32"))
    assert layer._single_output_taps(shape) == taps
    x = tf.constant(rng.normal(size=shape).astype("float32"))

    def run(fn):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
            loss = tf.reduce_sum(y * tf.cos(y))
        return [np.asarray(t) for t in [y, *tape.gradient(loss, [x, layer.conv.kernel, layer.conv.bias])]]

    for ours, plain in zip(run(layer), run(lambda t: layer.act(layer.conv(t)))):
        np.testing.assert_allclose(ours, plain, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(plain).max())))


@pytest.mark.parametrize(
    "shape, kernel, strides, padding, transpose, plan",
    [
        ((3, 4, 4, 8), 4, 2, "same", False, "patches"),  # Fader 128²'s last encoder conv: 4x4 -> 2x2
        ((3, 3, 3, 8), 4, 2, "same", False, "patches"),  # odd padding: the smaller half before
        ((3, 2, 2, 8), 3, 1, "same", False, "patches"),  # SaGAN's critic head on its 2x2 map
        ((3, 5, 4, 8), 3, 2, "valid", False, "patches"),
        ((3, 2, 2, 8), 4, 2, "same", True, "scatter"),  # Fader 128²'s first decoder conv: 2x2 -> 4x4
        ((3, 1, 2, 8), 3, 2, "same", True, "scatter"),  # odd excess: TF drops the smaller half before
        ((3, 2, 1, 8), 4, 2, "valid", True, "scatter"),
        ((3, 1, 1, 8), 4, 2, "same", True, "scatter"),
        ((3, 8, 8, 8), 4, 2, "same", False, None),  # 16 output positions: the plain convolution
        ((3, 3, 2, 8), 4, 2, "same", True, None),  # 6 input positions
        ((3, 2, 2, 8), 1, 2, "same", True, None),  # kernel smaller than the stride
    ],
)
def test_small_map_convolutions_are_matrix_products(shape, kernel, strides, padding, transpose, plan):
    """On maps of at most SMALL_MAP positions ConvNormAct runs its (transposed) convolution as matrix products
    (issue 17): same values, same first and second derivatives (the gradient penalty) as the Keras layer."""
    import tensorflow as tf

    rng = np.random.default_rng(4)
    layer = ConvNormAct(
        6, kernel, strides=strides, padding=padding, transpose=transpose, norm="none", activation="lrelu"
    )
    layer.build(shape)
    layer.conv.bias.assign(rng.normal(size=6).astype("float32"))
    got = layer._small_map_plan(shape)
    assert (got and got[0]) == plan
    x = tf.constant(rng.normal(size=shape).astype("float32"))
    kernel = layer.conv.kernel
    _assert_same(
        _value_and_derivatives(layer, x, kernel), _value_and_derivatives(lambda t: layer.act(layer.conv(t)), x, kernel)
    )


@pytest.mark.parametrize(
    "filters, kernel, shape, xla",
    [
        (3, 7, (2, 32, 32, 8), True),  # a generator's image head: through XLA in training
        (1, 7, (2, 32, 48, 8), True),  # the SaGAN attention head
        (5, 7, (2, 32, 32, 8), False),  # too many output channels
        (3, 1, (2, 32, 32, 8), False),  # a 1x1 head (pggan's toRGB): plain
        (3, 7, (2, 16, 16, 8), False),  # a small map
    ],
)
def test_thin_output_convolutions_run_through_xla_in_training(filters, kernel, shape, xla, monkeypatch):
    """Thin-output convolutions on large maps run XLA-compiled in training on TensorFlow's Eigen kernels (issue 17):
    same values and first and second derivatives as the Keras layer, and inference keeps the plain layer."""
    import tensorflow as tf

    from tf_faceedit.layers import conv_fast_paths

    monkeypatch.setattr(conv_fast_paths, "_onednn_on", lambda: False)  # the Eigen case, whatever this process runs

    rng = np.random.default_rng(5)
    layer = ConvNormAct(filters, kernel, norm="none", activation="tanh")
    layer.build(shape)
    layer.conv.bias.assign(rng.normal(size=filters).astype("float32"))
    x = tf.constant(rng.normal(size=shape).astype("float32"))
    assert layer._thin_output_xla(x) == xla

    calls = []
    original = conv_fast_paths._xla_conv2d

    def counting(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(conv_fast_paths, "_xla_conv2d", counting)
    kernel = layer.conv.kernel
    ours = _value_and_derivatives(lambda t: layer(t, training=True), x, kernel)
    assert len(calls) == int(xla)
    layer(x, training=False)
    assert len(calls) == int(xla)
    monkeypatch.setattr(conv_fast_paths, "_xla_conv2d", original)
    _assert_same(ours, _value_and_derivatives(lambda t: layer.act(layer.conv(t)), x, kernel))


def test_thin_output_convolutions_keep_the_plain_layer_with_onednn(monkeypatch):
    """With TensorFlow's oneDNN kernels on, the plain convolution is faster than XLA's (docs/RESULTS.md, 2026-12-04):
    no thin head goes through XLA, and `_onednn_on` reports what this process runs."""
    import tensorflow as tf

    from tf_faceedit.backend import onednn
    from tf_faceedit.layers import conv_fast_paths

    assert conv_fast_paths._onednn_on() == onednn.enabled()
    layer = ConvNormAct(3, 7, norm="none", activation="tanh")
    x = tf.zeros((2, 32, 32, 8))
    layer.build(x.shape)
    monkeypatch.setattr(conv_fast_paths, "_onednn_on", lambda: False)
    assert layer._thin_output_xla(x)
    monkeypatch.setattr(conv_fast_paths, "_onednn_on", lambda: True)
    assert not layer._thin_output_xla(x)


@pytest.mark.parametrize(
    "filters, kernel, shape, bias, blocked",
    [
        (3, 7, (2, 32, 32, 8), True, True),  # a generator's image head
        (1, 7, (1, 32, 48, 5), True, True),  # the SaGAN attention head
        (4, 6, (2, 32, 32, 3), False, True),  # an even kernel: TF's "same" puts the extra tap after
        (2, 5, (1, 40, 32, 3), True, True),
        (5, 7, (2, 32, 32, 8), True, False),  # too many output channels
        (3, 3, (2, 32, 32, 8), True, False),  # a small kernel
        (3, 7, (2, 16, 16, 8), True, False),  # a small map
        (3, 7, (1, 33, 32, 8), True, False),  # an odd size: no 2x2 blocks
    ],
)
def test_thin_output_convolutions_run_blocked_in_inference(filters, kernel, shape, bias, blocked):
    """In inference a thin head on a large map is a convolution of the 2x2 space-to-depth map (issue 17): the
    values of the plain layer; training keeps the plain (or XLA) path."""
    from tf_faceedit.layers import conv_fast_paths

    rng = np.random.default_rng(7)
    layer = ConvNormAct(filters, kernel, norm="none", activation="tanh", use_bias=bias)
    layer.build(shape)
    if bias:
        layer.conv.bias.assign(rng.normal(size=filters).astype("float32"))
    x = rng.normal(size=shape).astype("float32")
    assert layer._thin_output_blocked(shape) == blocked
    calls = []
    original = ConvFastPaths._blocked_conv

    def counting(self, t):
        calls.append(1)
        return original(self, t)

    ConvFastPaths._blocked_conv = counting
    try:
        inference = np.asarray(layer(x, training=False))
        assert len(calls) == int(blocked)
        layer(x, training=True)
        assert len(calls) == int(blocked)  # never in training
    finally:
        ConvFastPaths._blocked_conv = original
    plain = np.asarray(layer.act(layer.conv(x)))
    np.testing.assert_allclose(inference, plain, atol=2e-6)
    if blocked:  # the placement covers every tap once
        placement = np.array(conv_fast_paths._block_placement(kernel, conv_fast_paths.THIN_BLOCK))
        np.testing.assert_array_equal(placement.sum(axis=(0, 1)), np.ones((conv_fast_paths.THIN_BLOCK, kernel)))
