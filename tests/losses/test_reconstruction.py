"""Golden-value tests of the reconstruction and attribute losses."""

import math

import numpy as np
import pytest

from tf_faceedit.losses import attribute_bce_loss, l1_loss, l2_loss, masked_l1_loss

# [N=2, H=2, W=2, C=1 or 2]
TARGET = np.array(
    [[[[1.0, 0.0], [0.5, -1.0]], [[0.0, 0.0], [1.0, 1.0]]], [[[-1.0, -1.0], [0.0, 0.5]], [[0.2, 0.4], [0.6, 0.8]]]],
    "float32",
)  # shape (2, 2, 2, 2)
PREDICTION = np.array(
    [[[[0.0, 0.0], [0.5, 1.0]], [[0.5, -0.5], [1.0, 0.0]]], [[[-1.0, 1.0], [0.5, 0.5]], [[0.0, 0.0], [0.0, 0.0]]]],
    "float32",
)
# mask [N, H, W, 1]: example 0 hole at pixel (0, 0) and (1, 1); example 1 hole at pixel (0, 1).
MASK = np.array([[[[1.0], [0.0]], [[0.0], [1.0]]], [[[0.0], [1.0]], [[0.0], [0.0]]]], "float32")


def test_l1_and_l2():
    # Example 0 |d| = 1,0,0,2, .5,.5,0,1  -> sum 5;   example 1 |d| = 0,2,.5,0, .2,.4,.6,.8 -> sum 4.5
    np.testing.assert_allclose(np.asarray(l1_loss(TARGET, PREDICTION)), [5 / 8, 4.5 / 8], rtol=1e-6)
    # squares: 1,0,0,4,.25,.25,0,1 -> 6.5;   0,4,.25,0,.04,.16,.36,.64 -> 5.45
    np.testing.assert_allclose(np.asarray(l2_loss(TARGET, PREDICTION)), [6.5 / 8, 5.45 / 8], rtol=1e-6)


def test_masked_l1_without_hole_weight_divides_by_all_elements():
    # Example 0 hole pixels: (0,0) |d| = 1,0 and (1,1) |d| = 0,1 -> 2 ; example 1 hole (0,1): |d| = .5,0 -> .5
    got = np.asarray(masked_l1_loss(TARGET, PREDICTION, MASK))
    np.testing.assert_allclose(got, [2 / 8, 0.5 / 8], rtol=1e-6)


def test_masked_l1_with_hole_weight():
    a = 0.75
    # example 0: hole sum 2, valid sum 3 ; example 1: hole sum .5, valid sum 4
    expected = [(a * 2 + (1 - a) * 3) / 8, (a * 0.5 + (1 - a) * 4) / 8]
    got = np.asarray(masked_l1_loss(TARGET, PREDICTION, MASK, hole_weight=a))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # a = 0.5 is half of the plain L1.
    np.testing.assert_allclose(
        np.asarray(masked_l1_loss(TARGET, PREDICTION, MASK, hole_weight=0.5)),
        0.5 * np.asarray(l1_loss(TARGET, PREDICTION)),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="hole_weight"):
        masked_l1_loss(TARGET, PREDICTION, MASK, hole_weight=1.5)


def test_masked_l1_full_mask_equals_l1():
    np.testing.assert_allclose(
        np.asarray(masked_l1_loss(TARGET, PREDICTION, np.ones_like(MASK))),
        np.asarray(l1_loss(TARGET, PREDICTION)),
        rtol=1e-6,
    )


def bce(y, z):
    p = 1 / (1 + math.exp(-z))
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_attribute_bce_sums_over_attributes():
    labels = [[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    logits = [[2.0, -1.0, -0.5], [0.3, 1.5, 4.0]]
    expected = [sum(bce(y, z) for y, z in zip(ys, zs)) for ys, zs in zip(labels, logits)]
    got = np.asarray(attribute_bce_loss(np.array(labels, "float32"), np.array(logits, "float32")))
    assert got.shape == (2,)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_attribute_bce_stable_for_extreme_logits():
    labels = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
    logits = np.array([[500.0, -500.0], [500.0, -500.0]], "float32")
    np.testing.assert_allclose(np.asarray(attribute_bce_loss(labels, logits)), [0.0, 1000.0], atol=1e-4)
