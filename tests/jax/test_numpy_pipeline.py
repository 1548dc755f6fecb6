"""The TensorFlow-free input pipeline and masks (numpy twins of data/celeba.py and data/masks.py)."""

import numpy as np
import pytest

from tf_faceedit.config import MaskConfig
from tf_faceedit.data import celeba, masks, numpy_masks, numpy_pipeline


def test_batches_have_the_tf_pipelines_format_and_are_seeded(synthetic_data_config):
    cfg = synthetic_data_config
    batches = numpy_pipeline.build_dataset(cfg, "train", batch_size=4, training=True, seed=3)
    first = [next(batches) for _ in range(3)]
    again = numpy_pipeline.build_dataset(cfg, "train", batch_size=4, training=True, seed=3)
    for batch, other in zip(first, [next(again) for _ in range(3)]):
        np.testing.assert_array_equal(batch["image"], other["image"])
    batch = first[0]
    assert batch["image"].shape == (4, 16, 16, 3) and batch["image"].dtype == np.float32
    assert batch["image"].min() >= -1.0 and batch["image"].max() <= 1.0
    assert batch["attributes"].shape == (4, 2) and set(np.unique(batch["attributes"])) <= {0.0, 1.0}
    other_seed = next(numpy_pipeline.build_dataset(cfg, "train", batch_size=4, training=True, seed=4))
    assert not np.array_equal(other_seed["image"], batch["image"])


def test_eval_batches_match_the_tf_pipeline_closely(synthetic_data_config):
    cfg = synthetic_data_config
    ours = next(numpy_pipeline.build_dataset(cfg, "test", batch_size=4, training=False, repeat=False))
    theirs = next(iter(celeba.build_dataset(cfg, "test", batch_size=4, training=False, repeat=False)))
    np.testing.assert_array_equal(ours["attributes"], np.asarray(theirs["attributes"]))
    # same crop; the resize kernels differ slightly (area vs antialiased bilinear)
    assert np.abs(ours["image"] - np.asarray(theirs["image"])).mean() < 0.05


def test_undecodable_files_are_skipped(synthetic_data_config, tmp_path):
    records = celeba.load_records(synthetic_data_config, "train")
    from tests import hostile

    bad = tmp_path / "bad.png"
    bad.write_bytes(hostile.undecodable_png())  # a valid PNG header over damaged data: passes the scan, fails to decode
    records.paths[0] = str(bad)
    batches = numpy_pipeline.build_dataset(
        synthetic_data_config, "train", batch_size=len(records) - 1, training=False, repeat=False, records=records
    )
    assert next(batches)["image"].shape[0] == len(records) - 1


@pytest.mark.parametrize("kind", ["noise", "rect"])
def test_numpy_masks_have_the_statistics_of_the_tf_masks(kind):
    import tensorflow as tf

    cfg = MaskConfig(kind=kind)
    size, n = 32, 400
    tf_fn, np_fn = masks.make_mask_fn(cfg, size), numpy_masks.make_mask_fn(cfg, size)
    ours = np.stack([np_fn(np.random.default_rng([7, i])) for i in range(n)])
    theirs = np.stack([tf_fn(tf.constant([7, i])).numpy() for i in range(n)])
    assert ours.shape == theirs.shape == (n, size, size, 1)
    assert set(np.unique(ours)) <= {0.0, 1.0}

    def stats(m):
        rows, cols = m[..., 0].any(axis=2), m[..., 0].any(axis=1)
        return (m.mean(), rows.sum(1).mean(), cols.sum(1).mean(), (rows * np.arange(size)).sum(1).mean())

    for a, b in zip(stats(ours), stats(theirs)):
        assert abs(a - b) <= 0.08 * max(abs(b), 1e-3) + 0.01, (stats(ours), stats(theirs))
    # boxes of height within [ceil(0.25*32), floor(0.5*32)] = [8, 16] (noise masks: at most that)
    heights = ours[..., 0].any(axis=2).sum(1)
    assert heights.max() <= 16 and (kind == "noise" or heights.min() >= 8)
