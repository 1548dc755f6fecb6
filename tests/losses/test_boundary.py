import numpy as np
import pytest
from keras import ops

from tf_faceedit.losses import boundary_loss, boundary_weights


def _left_half_mask():
    """[2, 4, 4, 1]: example 0 has its two left columns as the hole, example 1 has no hole."""
    mask = np.zeros((2, 4, 4, 1), "float32")
    mask[0, :, :2] = 1.0
    return mask


def test_boundary_weights_golden():
    # k = 3, "same": a column's window covers columns c-1..c+1 inside the image (the border is not padded with
    # zeros), and every row has the same columns, so the blurred mask is the hole fraction of those columns:
    # col 0: {0,1} -> 1, col 1: {0,1,2} -> 2/3, col 2: {1,2,3} -> 1/3, col 3: {2,3} -> 0.
    # w = 1 - |2 m - 1| = 0, 2/3, 2/3, 0.
    w = ops.convert_to_numpy(boundary_weights(_left_half_mask(), kernel_size=3))
    assert w.shape == (2, 4, 4, 1)
    np.testing.assert_allclose(w[0, :, :, 0], np.tile([0.0, 2 / 3, 2 / 3, 0.0], (4, 1)), atol=1e-6)
    np.testing.assert_array_equal(w[1], np.zeros((4, 4, 1)))


def test_boundary_weights_vanish_far_from_the_boundary():
    mask = np.zeros((1, 16, 16, 1), "float32")
    mask[0, 4:12, 4:12] = 1.0  # an 8x8 square hole
    w = ops.convert_to_numpy(boundary_weights(mask, kernel_size=7))[0, :, :, 0]
    assert w.min() >= 0.0 and w.max() <= 1.0
    assert w[8, 8] == 0.0 and w[0, 0] == 0.0  # centre of the hole, far corner of the context
    assert w[8, 4] > 0.8 and w[8, 3] > 0.8  # on either side of the edge


def test_boundary_loss_golden():
    real = np.zeros((2, 4, 4, 3), "float32")
    fake = np.full((2, 4, 4, 3), 0.6, "float32")
    loss = ops.convert_to_numpy(boundary_loss(real, fake, _left_half_mask(), kernel_size=3))
    # mean of w over the 16 pixels (x 3 channels) = (0 + 2/3 + 2/3 + 0) / 4 = 1/3, times |d| = 0.6
    np.testing.assert_allclose(loss, [0.6 / 3, 0.0], rtol=1e-5)
    # an error only inside the hole, away from its edge, costs nothing
    fake = real.copy()
    fake[0, :, 0] = 5.0
    np.testing.assert_allclose(ops.convert_to_numpy(boundary_loss(real, fake, _left_half_mask(), 3)), [0.0, 0.0])


@pytest.mark.parametrize("k", [0, 2, 4.5])
def test_bad_kernel(k):
    with pytest.raises(ValueError, match="odd"):
        boundary_weights(_left_half_mask(), k)


def test_boundary_weights_of_a_soft_mask_are_those_of_its_support():
    # a pooled stage mask may be fractional everywhere in a region: no boundary inside it, so no weight there
    soft = np.full((1, 12, 12, 1), 0.5, "float32")
    np.testing.assert_array_equal(ops.convert_to_numpy(boundary_weights(soft, kernel_size=3)), 0.0)


@pytest.mark.parametrize("factor", [1, 2, 4])  # the stages 64, 32, 16 of a 64x64 binary mask
def test_boundary_weights_vanish_far_from_a_pooled_binary_mask_edge(factor):
    mask = np.zeros((1, 64, 64, 1), "float32")
    mask[:, 13:43, 9:50] = 1.0  # a solid box, not aligned to the pooling grid
    pooled = ops.convert_to_numpy(ops.average_pool(mask, factor, factor, "valid")) if factor > 1 else mask
    k = 3
    w = ops.convert_to_numpy(boundary_weights(pooled, kernel_size=k))[0, :, :, 0]
    support = pooled[0, :, :, 0] > 0
    size = support.shape[0]
    for i in range(size):
        for j in range(size):
            window = support[max(i - k // 2, 0) : i + k // 2 + 1, max(j - k // 2, 0) : j + k // 2 + 1]
            if window.all() or not window.any():  # no edge within k // 2: no weight
                assert w[i, j] == 0.0, (i, j)
            else:
                assert w[i, j] > 0.0, (i, j)
