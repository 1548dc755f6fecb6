"""Tests of AttentionBlend."""

import keras
import numpy as np
import pytest

from tests.layers.harness import run_layer_test
from tf_faceedit.layers import AttentionBlend, MultiMaskBlend


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
    np.testing.assert_allclose(np.asarray(model([edited, original, mask])), 0.25 * edited + 0.75 * original, atol=1e-6)


def test_layer_harness(images, tmp_path):
    edited, original = images
    mask = np.random.default_rng(1).uniform(0, 1, (2, 8, 8, 1)).astype("float32")
    run_layer_test(AttentionBlend, {"name": "blend"}, [edited, original, mask], (2, 8, 8, 3), tmp_path)
    content = np.concatenate([edited, original], axis=-1)  # n = 3: two content masks and the original's
    attention = np.random.default_rng(2).dirichlet(np.ones(3), (2, 8, 8)).astype("float32")
    run_layer_test(MultiMaskBlend, {}, [content, original, attention], (2, 8, 8, 3), tmp_path)


def test_wrong_number_of_inputs(images):
    with pytest.raises(ValueError, match="edited, original, mask"):
        AttentionBlend()(list(images))


def test_multi_mask_blend_golden_and_n2_equals_attention_blend():
    rng = np.random.RandomState(0)
    content = rng.uniform(-1, 1, (2, 3, 3, 6)).astype("float32")  # n = 3: two content masks
    original = rng.uniform(-1, 1, (2, 3, 3, 3)).astype("float32")
    logits = rng.normal(size=(2, 3, 3, 3)).astype("float32")
    attention = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    got = np.asarray(MultiMaskBlend()([content, original, attention]))
    expected = (
        content[..., :3] * attention[..., :1] + content[..., 3:] * attention[..., 1:2] + original * attention[..., 2:]
    )
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # n = 2 with masks (a, 1 - a) is AttentionBlend with mask a
    a = attention[..., :1]
    two = np.asarray(MultiMaskBlend()([content[..., :3], original, np.concatenate([a, 1 - a], -1)]))
    np.testing.assert_allclose(two, np.asarray(AttentionBlend()([content[..., :3], original, a])), atol=1e-6)
    with pytest.raises(ValueError, match="content has 6 channels"):
        MultiMaskBlend()([content, original, attention[..., :2]])
