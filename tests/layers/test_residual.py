"""tf_faceedit.layers.residual: the residual edit and the high-pass that removes a change's colour cast."""

import cv2
import numpy as np
import pytest
from keras import ops

from tests.helpers import tiny_config
from tf_faceedit.errors import ConfigError
from tf_faceedit.layers import residual


def _np(t):
    return np.asarray(ops.convert_to_numpy(t))


def test_blur_keeps_a_constant_image_constant_up_to_the_border():
    image = np.full((2, 16, 20, 3), 0.25, np.float32)
    np.testing.assert_allclose(_np(residual.gaussian_blur(image, 4.0)), image, atol=1e-6)


def test_blur_matches_opencv_away_from_the_border():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(1, 40, 40, 3)).astype(np.float32)
    sigma = 2.0
    radius = 6  # ceil(3 sigma)
    got = _np(residual.gaussian_blur(image, sigma))[0]
    expected = cv2.GaussianBlur(image[0], (2 * radius + 1, 2 * radius + 1), sigma)
    inner = slice(radius, -radius)
    np.testing.assert_allclose(got[inner, inner], expected[inner, inner], atol=1e-5)


def test_a_uniform_cast_is_removed_and_a_local_change_kept():
    cast = np.zeros((1, 32, 32, 3), np.float32) + np.array([0.1, -0.05, 0.0], np.float32)
    # chroma: the cast's deviation from its channel mean goes, its brightness stays
    np.testing.assert_allclose(_np(residual.highpass(cast, 4.0, "chroma")), np.full_like(cast, 0.05 / 3), atol=1e-6)
    np.testing.assert_allclose(_np(residual.highpass(cast, 4.0, "all")), np.zeros_like(cast), atol=1e-6)
    spot = np.zeros((1, 32, 32, 3), np.float32)
    spot[0, 15:17, 15:17] = [0.6, 0.2, 0.2]  # a 2x2 red change (a lip) far narrower than the blur
    kept = _np(residual.highpass(spot, 6.0, "chroma"))
    assert np.abs(kept[0, 15:17, 15:17] - spot[0, 15:17, 15:17]).max() < 0.05
    with pytest.raises(ValueError, match="highpass mode"):
        residual.highpass(spot, 4.0, "luma")


def test_the_edit_is_the_input_plus_the_change_clipped():
    rng = np.random.default_rng(1)
    x, edited, own = (rng.uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32) for _ in range(3))
    np.testing.assert_allclose(_np(residual.residual_edit(x, own, own, 2.0, 3.0)), x, atol=1e-6)
    np.testing.assert_allclose(
        _np(residual.residual_edit(x, edited, own, 1.5)), np.clip(x + 1.5 * (edited - own), -1, 1), atol=1e-6
    )


@pytest.mark.parametrize("method", ["fader", "icgan"])
def test_the_options_are_validated_naming_the_flag(method):
    with pytest.raises(ConfigError, match="model.residual_highpass must be one of chroma, all"):
        tiny_config(method, "/x", **{"model.residual_highpass": "luma"}).validate()
    with pytest.raises(ConfigError, match="model.residual_highpass_sigma must be >= 0"):
        tiny_config(method, "/x", **{"model.residual_highpass_sigma": -1.0}).validate()
