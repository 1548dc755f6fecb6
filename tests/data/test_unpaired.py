"""Tests of the unpaired two-domain pipeline (attribute split and trainA/trainB folders)."""

import shutil

import cv2
import numpy as np
import pytest

from tf_faceedit.config import ConfigError
from tf_faceedit.data.celeba import read_celeba_attributes, read_partition
from tf_faceedit.data.unpaired import UnpairedDataConfig, build_unpaired_dataset, load_unpaired_records, resolve_layout
from tf_faceedit.errors import DataError


def _config(data_dir, **kwargs):
    cfg = UnpairedDataConfig(data_dir=str(data_dir), image_size=16, cache=False, shuffle_buffer=64, **kwargs)
    return cfg


def test_attribute_layout_splits_by_the_domain_attribute(synthetic_celeba):
    cfg = _config(synthetic_celeba, domain_attribute="Smiling", domain_a_value=0)
    cfg.validate()
    assert resolve_layout(cfg) == "attribute" and cfg.attributes == ["Smiling"]
    records = load_unpaired_records(cfg, "train")
    names, filenames, values = read_celeba_attributes(synthetic_celeba / "list_attr_celeba.txt")
    partition = read_partition(synthetic_celeba / "list_eval_partition.txt")
    smiling = {f: v[names.index("Smiling")] == 1 for f, v in zip(filenames, values) if partition.get(f, 0) == 0}
    got_a = {p.split("/")[-1] for p in records.a.paths}
    got_b = {p.split("/")[-1] for p in records.b.paths}
    assert got_a == {f for f, s in smiling.items() if not s} and got_b == {f for f, s in smiling.items() if s}
    assert np.all(records.a.attributes == 0) and np.all(records.b.attributes == 1)
    assert len(records) == min(len(got_a), len(got_b)) > 0
    # the other direction swaps the domains
    swapped = load_unpaired_records(_config(synthetic_celeba, domain_attribute="Smiling", domain_a_value=1), "train")
    assert set(swapped.a.paths) == set(records.b.paths)
    batch = next(iter(build_unpaired_dataset(cfg, "train", batch_size=3, training=True, seed=0, records=records)))
    assert set(batch) == {"image_a", "image_b"}
    for key in ("image_a", "image_b"):
        images = batch[key].numpy()
        assert images.shape == (3, 16, 16, 3) and images.min() >= -1 and images.max() <= 1


def _write_images(folder, n, value):
    folder.mkdir(parents=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((20, 20, 3), value, np.uint8))


def test_folders_layout(tmp_path):
    _write_images(tmp_path / "trainA", 5, 0)  # domain X black
    _write_images(tmp_path / "trainB", 4, 255)  # domain Y white
    _write_images(tmp_path / "testA", 2, 0)
    _write_images(tmp_path / "testB", 2, 255)
    cfg = _config(tmp_path, domain_attribute="anime")
    cfg.validate()
    assert resolve_layout(cfg) == "folders"
    records = load_unpaired_records(cfg, "train")
    assert (len(records.a), len(records.b), len(records)) == (5, 4, 4)
    assert len(load_unpaired_records(cfg, "val").a) == 2  # val falls back to test
    batch = next(iter(build_unpaired_dataset(cfg, "train", batch_size=2, training=False, seed=0, repeat=False)))
    np.testing.assert_allclose(batch["image_a"].numpy(), -1.0, atol=1e-6)
    np.testing.assert_allclose(batch["image_b"].numpy(), 1.0, atol=1e-6)
    shutil.rmtree(tmp_path / "trainB")
    with pytest.raises(DataError, match="trainB"):
        load_unpaired_records(_config(tmp_path, layout="folders"), "train")


def test_empty_domain_names_the_attribute(synthetic_celeba):
    # No synthetic face has Bald = 1: domain Y is empty
    cfg = _config(synthetic_celeba, domain_attribute="Bald", domain_a_value=0)
    with pytest.raises(DataError, match=r"no image with Bald=1.*domain Y is empty \(data.domain_attribute\)"):
        load_unpaired_records(cfg, "train")


def test_validation_errors(tmp_path):
    with pytest.raises(ConfigError, match="data.domain_a_value"):
        _config(tmp_path, domain_a_value=2).validate()
    with pytest.raises(ConfigError, match="data.layout"):
        _config(tmp_path, layout="pairs").validate()
    with pytest.raises(DataError, match="data folder not found"):
        load_unpaired_records(_config(tmp_path / "missing"), "train")
