"""Golden-value tests of the total-variation loss."""

import numpy as np
import pytest

from tf_faceedit.losses import total_variation_loss


def test_golden_values():
    # example 0, one channel 2x3:  [[0, 1, 3],   vertical |d|: 2, 1, 1 -> 4 ; horizontal |d|: 1, 2, 2, 4 -> 9
    #                               [2, 0, 4]]
    # example 1, two channels 2x3: channel 0 constant 0.5 -> 0 ; channel 1 = [[1,0,1],[0,1,0]] -> vertical 3,
    #                              horizontal 4 -> 7
    ex0 = np.array([[0, 1, 3], [2, 0, 4]], "float32")[:, :, None]
    ex0 = np.concatenate([ex0, np.zeros_like(ex0)], axis=-1)
    ch1 = np.array([[1, 0, 1], [0, 1, 0]], "float32")
    ex1 = np.stack([np.full((2, 3), 0.5, "float32"), ch1], axis=-1)
    got = np.asarray(total_variation_loss(np.stack([ex0, ex1])))
    np.testing.assert_allclose(got, [13.0, 7.0], rtol=1e-6)


def test_constant_image_has_zero_tv_and_sum_scales_with_size():
    assert np.all(np.asarray(total_variation_loss(np.ones((2, 5, 5, 1), "float32"))) == 0)
    # a vertical step edge: one jump of 1 per row -> TV = H (width axis), times the channels
    step = np.zeros((1, 4, 6, 3), "float32")
    step[:, :, 3:] = 1.0
    np.testing.assert_allclose(np.asarray(total_variation_loss(step)), [4 * 3], rtol=1e-6)


def test_rank_error():
    with pytest.raises(ValueError, match="N, H, W, C"):
        total_variation_loss(np.zeros((2, 4, 4), "float32"))
