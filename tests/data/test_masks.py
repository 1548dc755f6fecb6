import numpy as np
import pytest
import tensorflow as tf

from tf_faceedit.config import MaskConfig
from tf_faceedit.data.masks import make_mask_fn, random_noise_mask, random_rectangle_mask

SIZE = 32


def seed(i):
    return tf.constant([7, i], tf.int64)


def bounding_box(mask):
    """(top, left, height, width) of the nonzero pixels of a [H, W, 1] mask, or None when empty."""
    rows = np.flatnonzero(mask[..., 0].any(axis=1))
    cols = np.flatnonzero(mask[..., 0].any(axis=0))
    if rows.size == 0:
        return None
    return rows[0], cols[0], rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


@pytest.mark.parametrize("mask_fn", [random_noise_mask, random_rectangle_mask])
def test_shape_dtype_and_binary_values(mask_fn):
    mask = mask_fn(SIZE, SIZE + 8, seed(0))
    assert mask.shape == (SIZE, SIZE + 8, 1)
    assert mask.dtype == tf.float32
    assert set(np.unique(mask.numpy())) <= {0.0, 1.0}


@pytest.mark.parametrize("min_ratio,max_ratio", [(0.25, 0.5), (0.1, 0.2), (0.5, 0.9)])
def test_rectangle_sizes_within_ratios(min_ratio, max_ratio):
    areas = []
    for i in range(40):
        mask = random_rectangle_mask(SIZE, SIZE, seed(i), min_ratio, max_ratio).numpy()
        top, left, h, w = bounding_box(mask)
        assert min_ratio * SIZE - 1e-6 <= h <= max_ratio * SIZE + 1e-6
        assert min_ratio * SIZE - 1e-6 <= w <= max_ratio * SIZE + 1e-6
        # A filled rectangle: every pixel of the bounding box is a hole, nothing outside it.
        assert mask.sum() == h * w
        assert mask[top : top + h, left : left + w].all()
        areas.append(h * w / SIZE**2)
    assert min_ratio**2 <= np.mean(areas) <= max_ratio**2
    # The sizes are random, not fixed.
    assert len(set(areas)) > 5


def test_noise_hole_inside_one_rectangle_of_allowed_size():
    min_ratio, max_ratio = 0.25, 0.5
    fractions, nonempty = [], 0
    for i in range(60):
        mask = random_noise_mask(SIZE, SIZE, seed(i), min_ratio, max_ratio).numpy()
        box = bounding_box(mask)
        fractions.append(mask.mean())
        if box is None:
            continue
        nonempty += 1
        _, _, h, w = box
        assert h <= max_ratio * SIZE and w <= max_ratio * SIZE
    assert nonempty >= 50
    # A hole covers part of its rectangle: about half of it at threshold 0.5.
    assert 0.1 * min_ratio**2 < np.mean(fractions) < max_ratio**2
    # Not a filled rectangle: noise leaves gaps in most masks.
    assert np.mean(fractions) < 0.9 * np.mean(
        [random_rectangle_mask(SIZE, SIZE, seed(i), min_ratio, max_ratio).numpy().mean() for i in range(60)]
    )


def test_noise_threshold_controls_hole_fraction():
    low = np.mean([random_noise_mask(SIZE, SIZE, seed(i), threshold=0.2).numpy().mean() for i in range(20)])
    high = np.mean([random_noise_mask(SIZE, SIZE, seed(i), threshold=0.8).numpy().mean() for i in range(20)])
    assert low > high


@pytest.mark.parametrize("mask_fn", [random_noise_mask, random_rectangle_mask])
def test_same_seed_same_mask_different_seed_different_mask(mask_fn):
    a = mask_fn(SIZE, SIZE, seed(3)).numpy()
    b = mask_fn(SIZE, SIZE, tf.constant([7, 3], tf.int32)).numpy()
    np.testing.assert_array_equal(a, b)
    others = [mask_fn(SIZE, SIZE, seed(i)).numpy() for i in range(4, 10)]
    assert all(not np.array_equal(a, other) for other in others)


def test_positions_cover_the_image():
    centres = []
    for i in range(60):
        top, left, h, w = bounding_box(random_rectangle_mask(SIZE, SIZE, seed(i)).numpy())
        assert top >= 0 and left >= 0 and top + h <= SIZE and left + w <= SIZE
        centres.append((top + h / 2, left + w / 2))
    centres = np.array(centres)
    assert centres[:, 0].min() < SIZE / 3 and centres[:, 0].max() > 2 * SIZE / 3
    assert centres[:, 1].min() < SIZE / 3 and centres[:, 1].max() > 2 * SIZE / 3


def test_in_tf_function_matches_eager():
    fn = tf.function(lambda s: random_noise_mask(SIZE, SIZE, s))
    np.testing.assert_array_equal(fn(seed(5)).numpy(), random_noise_mask(SIZE, SIZE, seed(5)).numpy())
    # Dynamic sizes work too.
    dyn = tf.function(
        lambda h, w, s: random_rectangle_mask(h, w, s),
        input_signature=[tf.TensorSpec([], tf.int32)] * 2 + [tf.TensorSpec([2], tf.int64)],
    )
    np.testing.assert_array_equal(
        dyn(tf.constant(SIZE), tf.constant(SIZE), seed(5)).numpy(), random_rectangle_mask(SIZE, SIZE, seed(5)).numpy()
    )


def test_in_dataset_map_reproducible():
    def masks():
        ds = tf.data.Dataset.range(6).map(
            lambda i: random_noise_mask(SIZE, SIZE, tf.stack([tf.constant(1, tf.int64), i])), num_parallel_calls=2
        )
        return np.stack(list(ds.as_numpy_iterator()))

    first, second = masks(), masks()
    assert first.shape == (6, SIZE, SIZE, 1)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first[0], first[1])


def test_make_mask_fn_follows_config():
    assert make_mask_fn(MaskConfig(kind="none"), SIZE) is None
    cfg = MaskConfig(kind="rect", min_ratio=0.5, max_ratio=0.5)
    mask = make_mask_fn(cfg, SIZE)(seed(0)).numpy()
    assert mask.shape == (SIZE, SIZE, 1)
    assert mask.sum() == (SIZE // 2) ** 2
    noise = make_mask_fn(MaskConfig(kind="noise", threshold=0.5), SIZE)(seed(0)).numpy()
    np.testing.assert_array_equal(noise, random_noise_mask(SIZE, SIZE, seed(0)).numpy())


def test_mixed_masks_are_noise_or_filled_rectangles_about_half_each():
    fn = make_mask_fn(MaskConfig(kind="mixed", min_ratio=0.5, max_ratio=0.5), SIZE)
    masks = [fn(seed(i)).numpy() for i in range(40)]
    full = [m.sum() == (SIZE // 2) ** 2 for m in masks]  # a filled 1/2 x 1/2 rectangle, else thresholded noise
    assert 10 <= sum(full) <= 30
    assert all(0 < m.sum() <= (SIZE // 2) ** 2 for m in masks)
    np.testing.assert_array_equal(fn(seed(3)).numpy(), masks[3])  # seeded


def test_numpy_masks_know_the_same_kinds():
    from tf_faceedit.data import numpy_masks

    rng = np.random.default_rng(0)
    fn = numpy_masks.make_mask_fn(MaskConfig(kind="mixed", min_ratio=0.5, max_ratio=0.5), SIZE)
    full = [fn(rng).sum() == (SIZE // 2) ** 2 for _ in range(40)]
    assert 10 <= sum(full) <= 30


@pytest.mark.parametrize("kind", ["parts", "noise+parts"])
def test_face_part_masks_in_both_pipelines(kind):
    from tf_faceedit.data import masks as tf_masks
    from tf_faceedit.data import numpy_masks
    from tf_faceedit.data.numpy_masks import FACE_PARTS

    cfg = MaskConfig(kind=kind)
    tf_fn, np_fn = tf_masks.make_mask_fn(cfg, 64), numpy_masks.make_mask_fn(cfg, 64)
    rng = np.random.default_rng(0)
    draws = [tf_fn(tf.constant([i, 1])).numpy()[..., 0] for i in range(40)] + [np_fn(rng)[..., 0] for _ in range(40)]
    solid = 0
    for mask in draws:
        rows, cols = np.nonzero(mask)
        box = mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        if not box.all():
            assert kind == "noise+parts"  # a noise mask
            continue
        solid += 1
        h, w = box.shape
        assert 19 <= h <= 28 and 19 <= w <= 28  # sides in [0.30, 0.45] * 64
        centre = ((rows.min() + rows.max() + 1) / 128, (cols.min() + cols.max() + 1) / 128)
        assert min(abs(centre[0] - r) + abs(centre[1] - c) for r, c in FACE_PARTS.values()) <= 0.1 + 2 / 64
    assert solid == len(draws) if kind == "parts" else 10 < solid < 70
