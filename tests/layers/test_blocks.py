"""Tests of ConvNormAct, ResidualBlock, DownBlock and UpBlock (each configuration through the layer harness)."""

import keras
import numpy as np
import pytest

from tests.layers.harness import run_layer_test
from tf_faceedit.layers import ConvNormAct, DownBlock, ResidualBlock, UpBlock


@pytest.fixture
def x():
    return np.random.default_rng(0).uniform(-1, 1, size=(2, 16, 16, 3)).astype("float32")


# (class, constructor arguments, output shape for a [2, 16, 16, 3] input): the harness (tests/layers/harness.py)
# checks each for config round trip, eager and symbolic calls, `.keras` save/load and the dtype policy.
BLOCKS = [
    (ConvNormAct, {"filters": 8}, (2, 16, 16, 8)),
    (ConvNormAct, {"filters": 8, "kernel_size": 4, "strides": 2}, (2, 8, 8, 8)),
    (ConvNormAct, {"filters": 8, "kernel_size": 4, "strides": 2, "transpose": True}, (2, 32, 32, 8)),
    (ConvNormAct, {"filters": 8, "kernel_size": 3, "padding": "valid", "norm": "batch"}, (2, 14, 14, 8)),
    (ConvNormAct, {"filters": 8, "kernel_size": 3, "padding": "reflect"}, (2, 16, 16, 8)),
    (ConvNormAct, {"filters": 8, "kernel_size": 7, "padding": "reflect", "norm": "layer"}, (2, 16, 16, 8)),
    (ConvNormAct, {"filters": 8, "kernel_size": 4, "padding": "reflect", "activation": "lrelu"}, (2, 16, 16, 8)),
    (ConvNormAct, {"filters": 3, "kernel_size": (3, 5), "norm": "none", "activation": "tanh"}, (2, 16, 16, 3)),
    (
        ConvNormAct,
        {
            "filters": 8,
            "kernel_size": (3, 5),
            "strides": 2,
            "norm": "batch",
            "activation": "lrelu",
            "negative_slope": 0.1,
            "use_bias": False,
            "kernel_stddev": 0.03,
            "name": "cna",
        },
        (2, 8, 8, 8),
    ),
    (ResidualBlock, {"filters": 3}, (2, 16, 16, 3)),
    (ResidualBlock, {"filters": 3, "padding": "reflect", "norm": "batch"}, (2, 16, 16, 3)),
    (
        ResidualBlock,
        {
            "filters": 3,
            "kernel_size": 5,
            "norm": "layer",
            "activation": "lrelu",
            "padding": "reflect",
            "negative_slope": 0.3,
        },
        (2, 16, 16, 3),
    ),
    (DownBlock, {"filters": 16}, (2, 8, 8, 16)),
    (
        DownBlock,
        {"filters": 6, "kernel_size": 3, "norm": "none", "activation": "sigmoid", "use_bias": False},
        (2, 8, 8, 6),
    ),
    (UpBlock, {"filters": 8}, (2, 32, 32, 8)),
    (UpBlock, {"filters": 8, "mode": "resize", "kernel_size": 3, "padding": "reflect"}, (2, 32, 32, 8)),
    (UpBlock, {"filters": 8, "mode": "resize"}, (2, 32, 32, 8)),
    (
        UpBlock,
        {"filters": 6, "mode": "resize", "kernel_size": 3, "padding": "reflect", "norm": "batch"},
        (2, 32, 32, 6),
    ),
]


@pytest.mark.parametrize(
    "layer_cls, kwargs, shape", BLOCKS, ids=[f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(BLOCKS)]
)
def test_layer_harness(layer_cls, kwargs, shape, x, tmp_path):
    squashing = kwargs.get("activation") in ("tanh", "sigmoid")  # images and masks: float32 under a mixed policy
    run_layer_test(layer_cls, kwargs, x, shape, tmp_path, mixed_output_dtype="float32" if squashing else None)


def test_unknown_spatial_size_in_functional_model(x):
    inputs = keras.Input((None, None, 3))
    h = ConvNormAct(4, kernel_size=7, padding="reflect")(inputs)
    h = DownBlock(4)(h)
    h = ResidualBlock(4)(h)
    h = UpBlock(4, mode="resize")(h)
    out = UpBlock(2)(h)
    model = keras.Model(inputs, out)
    assert model(x[:, :8, :12]).shape == (2, 16, 24, 2)


def test_transpose_kernel4_stride2_doubles_any_size():
    for size in (4, 5, 9):
        out = ConvNormAct(2, kernel_size=4, strides=2, transpose=True)(np.zeros((1, size, size + 1, 3), "float32"))
        assert tuple(out.shape) == (1, 2 * size, 2 * (size + 1), 2)


def test_reflect_padding_matches_numpy_reflection(x):
    """'reflect' = np.pad(mode='reflect') + a 'valid' convolution with the same weights."""
    reflect = ConvNormAct(5, kernel_size=3, padding="reflect", norm="none", activation=None)
    valid = ConvNormAct(5, kernel_size=3, padding="valid", norm="none", activation=None)
    same = ConvNormAct(5, kernel_size=3, padding="same", norm="none", activation=None)
    out = np.asarray(reflect(x))
    valid.build(x.shape)
    same.build(x.shape)
    valid.set_weights(reflect.get_weights())
    same.set_weights(reflect.get_weights())
    expected = np.asarray(valid(np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="reflect")))
    np.testing.assert_allclose(out, expected, atol=1e-6)
    zero_padded = np.asarray(same(x))
    np.testing.assert_allclose(out[:, 1:-1, 1:-1], zero_padded[:, 1:-1, 1:-1], atol=1e-6)
    assert not np.allclose(out[:, 0], zero_padded[:, 0])


def test_invalid_arguments():
    with pytest.raises(ValueError, match="reflect"):
        ConvNormAct(4, strides=2, padding="reflect")
    with pytest.raises(ValueError, match="reflect"):
        ConvNormAct(4, transpose=True, padding="reflect")
    with pytest.raises(ValueError, match="padding"):
        ConvNormAct(4, padding="circular")
    with pytest.raises(ValueError, match="instance"):
        ConvNormAct(4, norm="weird")
    with pytest.raises(ValueError, match="padding"):
        ResidualBlock(4, padding="valid")
    with pytest.raises(ValueError, match="mode"):
        UpBlock(4, mode="bilinear-ish")
    with pytest.raises(ValueError, match="padding"):
        UpBlock(4, padding="reflect")  # transpose mode


def test_residual_block_channel_mismatch_error(x):
    with pytest.raises(ValueError, match=r"filters=8 .* 3 channels"):
        ResidualBlock(8)(x)
    with pytest.raises(ValueError, match=r"filters=8 .* 3 channels"):
        ResidualBlock(8)(keras.Input((16, 16, 3)))


def test_residual_block_is_identity_when_second_branch_is_zero(x):
    block = ResidualBlock(3)
    block.build(x.shape)
    block.conv2.conv.kernel.assign(np.zeros(block.conv2.conv.kernel.shape, "float32"))
    np.testing.assert_allclose(np.asarray(block(x)), x, atol=1e-6)
    block.conv2.conv.kernel.assign(np.ones(block.conv2.conv.kernel.shape, "float32"))
    assert not np.allclose(np.asarray(block(x)), x)


def test_weights_are_tracked(x):
    conv = ConvNormAct(4)
    conv.build(x.shape)
    assert len(conv.trainable_weights) == 4  # kernel, bias, gamma, beta
    block = ResidualBlock(3)
    block.build(x.shape)
    assert len(block.trainable_weights) == 8
    bare = ConvNormAct(4, norm="none", use_bias=False)
    bare.build(x.shape)
    assert [tuple(w.shape) for w in bare.trainable_weights] == [(3, 3, 3, 4)]
    bn = ConvNormAct(4, norm="batch")
    bn.build(x.shape)
    assert len(bn.non_trainable_weights) == 2  # moving mean / variance


def test_training_flag_reaches_batch_norm(x):
    layer = ConvNormAct(4, norm="batch", activation=None)
    inference = np.asarray(layer(x, training=False))
    training = np.asarray(layer(x, training=True))
    assert not np.allclose(inference, training)
    np.testing.assert_allclose(training.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)


def test_gan_kernel_initializer(x):
    layer = ConvNormAct(64, kernel_stddev=0.05)
    layer.build(x.shape)
    assert np.asarray(layer.conv.kernel).std() == pytest.approx(0.05, rel=0.15)
