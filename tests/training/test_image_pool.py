"""The image pool (history buffer) in its per-example Bernoulli mode (CycleGAN's ImagePool)."""

import keras
import numpy as np
import pytest
from keras import ops

from tf_faceedit.training.image_pool import HistoryBuffer


def _np(x):
    return ops.convert_to_numpy(x)


def _images(values):
    return np.asarray(values, "float32").reshape(-1, 1, 1, 1) * np.ones((1, 2, 2, 3), "float32")


def test_bernoulli_pool_returns_stored_images_with_probability_half_once_full():
    pool = HistoryBuffer(16, (2, 2, 3), fraction=0.5, mode="bernoulli")
    seed = keras.random.SeedGenerator(3)
    first = _images(range(1, 17))
    np.testing.assert_array_equal(_np(pool.query(first, seed)), first)  # not full before: fakes pass through
    assert int(_np(pool.count)) == 16
    replaced, total = 0, 0
    for q in range(30):
        before = set(_np(pool.images)[:, 0, 0, 0].tolist())
        fakes = _images(1000 + 100 * q + np.arange(16))
        mixed = _np(pool.query(fakes, seed))
        assert np.all(mixed == mixed[:, :1, :1, :1])  # whole images, never mixed pixels
        is_old = mixed[:, 0, 0, 0] != fakes[:, 0, 0, 0]
        assert set(mixed[is_old, 0, 0, 0].tolist()) <= before  # replacements come from the pool's contents
        np.testing.assert_array_equal(mixed[~is_old], fakes[~is_old])
        replaced, total = replaced + int(is_old.sum()), total + 16
        # CycleGAN's swap: only the swapped fakes enter the pool, each taking the slot of the image it replaced;
        # the fakes passed through are not stored and the rest of the pool is unchanged
        after = set(_np(pool.images)[:, 0, 0, 0].tolist())
        swapped_in = set(fakes[is_old, 0, 0, 0].tolist())
        assert swapped_in <= after
        assert after - swapped_in == before - set(mixed[is_old, 0, 0, 0].tolist())
        assert not (set(fakes[~is_old, 0, 0, 0].tolist()) & after)
    assert 0.4 < replaced / total < 0.6  # 480 Bernoulli(0.5) draws: std 0.023
    assert 0 < replaced < total


@pytest.mark.parametrize("fraction, expected", [(0.0, 0), (1.0, 8)])
def test_bernoulli_extremes(fraction, expected):
    pool = HistoryBuffer(8, (2, 2, 3), fraction=fraction, mode="bernoulli")
    seed = keras.random.SeedGenerator(0)
    pool.query(_images(range(8)), seed)
    fakes = _images(100 + np.arange(8))
    mixed = _np(pool.query(fakes, seed))
    assert int((mixed[:, 0, 0, 0] != fakes[:, 0, 0, 0]).sum()) == expected


def test_pool_is_seeded_and_validates_mode():
    def run():
        pool = HistoryBuffer(4, (2, 2, 3), fraction=0.5, mode="bernoulli")
        seed = keras.random.SeedGenerator(7)
        pool.query(_images(range(4)), seed)
        return [_np(pool.query(_images(10 * k + np.arange(4)), seed)) for k in range(1, 4)]

    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="mode"):
        HistoryBuffer(4, (2, 2, 3), 0.5, mode="random")
