"""Tests of AttentionBlend."""

import keras
import numpy as np
import pytest

from tf_faceedit.layers import AttentionBlend


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    edited = rng.uniform(-1, 1, size=(2, 8, 8, 3)).astype("float32")
    original = rng.uniform(-1, 1, size=(2, 8, 8, 3)).astype("float32")
    return edited, original


@pytest.mark.parametrize("value", [1.0, 0.0, 0.5])
def test_constant_masks(images, value):
    edited, original = images
    mask = np.full((2, 8, 8, 1), value, "float32")
    out = np.asarray(AttentionBlend()([edited, original, mask]))
    expected = {1.0: edited, 0.0: original, 0.5: (edited + original) / 2}[value]
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert out.shape == (2, 8, 8, 3) and out.dtype == np.float32


def test_spatial_mask_broadcasts_over_channels(images):
    edited, original = images
    mask = np.zeros((2, 8, 8, 1), "float32")
    mask[:, :, :4] = 1.0
    out = np.asarray(AttentionBlend()([edited, original, mask]))
    np.testing.assert_allclose(out[:, :, :4], edited[:, :, :4])
    np.testing.assert_allclose(out[:, :, 4:], original[:, :, 4:])


def test_functional_unknown_batch_and_config(images):
    edited, original = images
    e, o, m = keras.Input((None, None, 3)), keras.Input((None, None, 3)), keras.Input((None, None, 1))
    out = AttentionBlend(name="blend")([e, o, m])
    assert tuple(out.shape) == (None, None, None, 3)
    model = keras.Model([e, o, m], out)
    mask = np.full((2, 8, 8, 1), 0.25, "float32")
    np.testing.assert_allclose(
        np.asarray(model([edited, original, mask])), 0.25 * edited + 0.75 * original, atol=1e-6
    )
    layer = AttentionBlend(name="blend")
    clone = AttentionBlend.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_wrong_number_of_inputs(images):
    with pytest.raises(ValueError, match="edited, original, mask"):
        AttentionBlend()(list(images))
