import dataclasses
import logging
import shutil

import cv2
import numpy as np
import pytest

from tf_faceedit.config import DataConfig, MaskConfig
from tf_faceedit.data import celeba
from tf_faceedit.data.celeba import (
    Records,
    build_dataset,
    decode_and_resize,
    denormalize,
    load_records,
    read_celeba_attributes,
    read_csv_attributes,
    read_partition,
)
from tf_faceedit.data.synthetic import ATTRIBUTE_NAMES, make_synthetic_celeba
from tf_faceedit.errors import ConfigError, DataError

# ---------------------------------------------------------------------------------------------------------------
# Helpers


@pytest.fixture(scope="module")
def celeba_178x218(tmp_path_factory):
    """A few images at the full aligned CelebA size."""
    return make_synthetic_celeba(
        tmp_path_factory.mktemp("celeba178"),
        num_images=6,
        width=178,
        height=218,
        seed=2,
        val_fraction=0.0,
        test_fraction=0.0,
    )


def copy_dataset(src, dst, num_images=None):
    """Copies a synthetic CelebA folder (optionally only its first images) so a test can modify it."""
    names, filenames, values = read_celeba_attributes(src / "list_attr_celeba.txt")
    keep = slice(None) if num_images is None else slice(0, num_images)
    (dst / "images").mkdir(parents=True)
    for name in filenames[keep]:
        shutil.copy(src / "images" / name, dst / "images" / name)
    write_attr_file(dst / "list_attr_celeba.txt", names, filenames[keep], values[keep])
    return dst


def write_attr_file(path, names, filenames, values, newline="\n", sep=" "):
    lines = [str(len(filenames)), sep.join(names)]
    lines += [name + "".join(f"{sep}{v:2d}" for v in row) for name, row in zip(filenames, values)]
    path.write_bytes((newline.join(lines) + newline).encode())


def config(data_dir, **kwargs):
    values = dict(
        data_dir=str(data_dir), attributes=["Eyeglasses", "Smiling"], image_size=16, cache=False, shuffle_buffer=64
    )
    values.update(kwargs)
    return DataConfig(**values)


def first_batch(ds):
    return {k: v.numpy() for k, v in next(iter(ds)).items()}


def all_images(ds):
    return np.concatenate([batch["image"].numpy() for batch in ds])


# ---------------------------------------------------------------------------------------------------------------
# Attribute and partition files


def test_read_celeba_attributes_crlf_double_spaces(tmp_path):
    path = tmp_path / "attrs.txt"
    path.write_bytes(b"3\r\nA_x  B_y C_z  \r\n1.jpg  -1  1  1\r\n2.jpg   1 -1 -1   \r\n3.jpg -1 -1  1\r\n\r\n")
    names, filenames, values = read_celeba_attributes(path)
    assert names == ["A_x", "B_y", "C_z"]
    assert filenames == ["1.jpg", "2.jpg", "3.jpg"]
    assert values.dtype == np.int8
    np.testing.assert_array_equal(values, [[-1, 1, 1], [1, -1, -1], [-1, -1, 1]])


def test_read_celeba_attributes_header_with_filename_column(tmp_path):
    path = tmp_path / "attrs.txt"
    path.write_text("2\nimage_id Smiling Male\na.png 1 -1\nb.png -1 1\n")
    names, filenames, values = read_celeba_attributes(path)
    assert names == ["Smiling", "Male"]
    np.testing.assert_array_equal(values, [[1, -1], [-1, 1]])


def test_read_celeba_attributes_matches_synthetic_labels(synthetic_celeba):
    names, filenames, values = read_celeba_attributes(synthetic_celeba / "list_attr_celeba.txt")
    assert names == ATTRIBUTE_NAMES
    assert len(filenames) == values.shape[0] == 48 and values.shape[1] == 40
    assert set(np.unique(values)) == {-1, 1}


@pytest.mark.parametrize(
    "content,line,words",
    [
        ("2\nA B\n1.jpg 1 -1\n2.jpg 1\n", 4, "got 2 column"),
        ("2\nA B\n1.jpg 1 -1\n2.jpg 1 yes\n", 4, "not a number"),
        ("2\nA B\n1.jpg 1 -1\n2.jpg 1 7\n", 4, "must be -1, 0 or 1"),
        ("3\nA B\n1.jpg 1 -1\n2.jpg 1 1\n", 1, "says 3 images but the file has 2"),
        ("many\nA B\n1.jpg 1 -1\n", 1, "number of images"),
    ],
)
def test_read_celeba_attributes_malformed_names_file_and_line(tmp_path, content, line, words):
    path = tmp_path / "list_attr_celeba.txt"
    path.write_text(content)
    with pytest.raises(DataError, match=words) as info:
        read_celeba_attributes(path)
    assert f"{path}:{line}:" in str(info.value)


def test_read_celeba_attributes_missing_file(tmp_path):
    with pytest.raises(DataError, match="attribute file not found") as info:
        read_celeba_attributes(tmp_path / "nope.txt")
    assert "nope.txt" in str(info.value)


def test_read_partition(tmp_path):
    path = tmp_path / "list_eval_partition.txt"
    path.write_bytes(b"1.jpg 0\r\n2.jpg  1\r\n3.jpg 2  \r\n\r\n")
    assert read_partition(path) == {"1.jpg": 0, "2.jpg": 1, "3.jpg": 2}
    path.write_text("1.jpg 0\n2.jpg 3\n")
    with pytest.raises(DataError, match=r"list_eval_partition.txt:2:"):
        read_partition(path)


def test_read_csv_attributes_with_bom_and_both_encodings(tmp_path):
    path = tmp_path / "attributes.csv"
    path.write_bytes("filename,Smiling,Eyeglasses\r\na.jpg,1,0\r\nb.jpg,-1,1\r\n\r\n".encode("utf-8-sig"))
    names, filenames, values = read_csv_attributes(path)
    assert names == ["Smiling", "Eyeglasses"]  # no BOM left in a name
    assert filenames == ["a.jpg", "b.jpg"]
    np.testing.assert_array_equal(values > 0, [[True, False], [False, True]])


def test_read_csv_attributes_malformed(tmp_path):
    path = tmp_path / "attributes.csv"
    path.write_text("filename,Smiling\na.jpg,1\nb.jpg,1,0\n")
    with pytest.raises(DataError, match=r"attributes.csv:3:"):
        read_csv_attributes(path)
    path.write_text("filename,Smiling\na.jpg,maybe\n")
    with pytest.raises(DataError, match=r"attributes.csv:2: .*'maybe'"):
        read_csv_attributes(path)


# ---------------------------------------------------------------------------------------------------------------
# Records


def test_load_records_selects_attributes_by_name_in_order(synthetic_celeba):
    names, filenames, values = read_celeba_attributes(synthetic_celeba / "list_attr_celeba.txt")
    cfg = config(synthetic_celeba, attributes=["Smiling", "Blond_Hair", "Eyeglasses"])
    records = load_records(cfg, "all")
    assert isinstance(records, Records) and records.split == "all"
    assert records.attribute_names == ["Smiling", "Blond_Hair", "Eyeglasses"]
    assert records.attributes.dtype == np.float32 and records.attributes.shape == (48, 3)
    expected = values[:, [names.index("Smiling"), names.index("Blond_Hair"), names.index("Eyeglasses")]] > 0
    np.testing.assert_array_equal(records.attributes, expected.astype(np.float32))
    assert records.paths == [str(synthetic_celeba / "images" / f) for f in filenames]


def test_load_records_partitions(synthetic_celeba):
    partition = read_partition(synthetic_celeba / "list_eval_partition.txt")
    cfg = config(synthetic_celeba)
    seen = []
    for split, code in (("train", 0), ("val", 1), ("test", 2)):
        records = load_records(cfg, split)
        names = [p.rsplit("/", 1)[-1] for p in records.paths]
        assert names == sorted(n for n, c in partition.items() if c == code)
        seen += names
    assert sorted(seen) == sorted(partition)
    assert len(load_records(cfg, "train")) == 38


def test_load_records_without_partition_uses_val_fraction(synthetic_celeba, tmp_path):
    data = copy_dataset(synthetic_celeba, tmp_path / "d", num_images=10)
    assert len(load_records(config(data), "train")) == 10
    with pytest.raises(DataError, match="split 'val' is empty.*val_fraction=0.0"):
        load_records(config(data), "val")
    cfg = config(data, val_fraction=0.2)
    train, val = load_records(cfg, "train"), load_records(cfg, "val")
    assert len(train) == 8 and len(val) == 2
    assert val.paths == [str(data / "images" / f"{i:06d}.jpg") for i in (9, 10)]


def test_load_records_csv_format_auto_detected(synthetic_celeba, tmp_path):
    data = tmp_path / "csvset"
    data.mkdir()
    for i in range(1, 5):  # images directly in the folder
        shutil.copy(synthetic_celeba / "images" / f"{i:06d}.jpg", data / f"{i:06d}.jpg")
    (data / "attributes.csv").write_bytes(
        "filename,Eyeglasses,Smiling\n000001.jpg,1,0\n000002.jpg,0,1\n000003.jpg,1,1\n000004.jpg,0,0\n".encode(
            "utf-8-sig"
        )
    )
    records = load_records(config(data, attributes=["Smiling", "Eyeglasses"]), "train")
    assert records.paths == [str(data / f"{i:06d}.jpg") for i in range(1, 5)]
    np.testing.assert_array_equal(records.attributes, [[0, 1], [1, 0], [1, 1], [0, 0]])
    batch = first_batch(build_dataset(config(data), "train", 4, training=False))
    assert batch["image"].shape == (4, 16, 16, 3)


def test_missing_data_folder(tmp_path):
    with pytest.raises(DataError, match="data folder not found: .*nowhere"):
        load_records(config(tmp_path / "nowhere"), "train")


def test_missing_attribute_file(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(DataError, match="list_attr_celeba.txt.*attributes.csv"):
        load_records(config(tmp_path), "train")
    with pytest.raises(DataError, match="attribute file not found: .*labels.txt .*data.attr_file"):
        load_records(config(tmp_path, attr_file="labels.txt"), "train")


def test_unknown_attribute_suggests_the_name(synthetic_celeba):
    with pytest.raises(DataError) as info:
        load_records(config(synthetic_celeba, attributes=["Eyeglases"]), "train")
    message = str(info.value)
    assert "unknown attribute 'Eyeglases'" in message
    assert "list_attr_celeba.txt" in message
    assert "did you mean: Eyeglasses" in message


def test_empty_split_names_split_and_partition_file(synthetic_celeba, tmp_path):
    data = copy_dataset(synthetic_celeba, tmp_path / "d", num_images=4)
    (data / "list_eval_partition.txt").write_text("".join(f"{i:06d}.jpg 0\n" for i in range(1, 5)))
    with pytest.raises(DataError) as info:
        load_records(config(data), "test")
    assert "split 'test' is empty" in str(info.value)
    assert "list_eval_partition.txt" in str(info.value)


def test_missing_images_dropped_with_one_counted_warning(synthetic_celeba, tmp_path, caplog):
    data = copy_dataset(synthetic_celeba, tmp_path / "d", num_images=6)
    (data / "images" / "000002.jpg").unlink()
    (data / "images" / "000005.jpg").unlink()
    with caplog.at_level(logging.WARNING, logger="tf_faceedit"):
        records = load_records(config(data), "train")
    assert len(records) == 4
    warnings = [r.getMessage() for r in caplog.records if "missing" in r.getMessage()]
    assert len(warnings) == 1 and "2 of 6" in warnings[0] and "000002.jpg" in warnings[0]
    for i in (1, 3, 4, 6):
        (data / "images" / f"{i:06d}.jpg").unlink()
    with pytest.raises(DataError, match="none of the 6 images"):
        load_records(config(data), "train")


# ---------------------------------------------------------------------------------------------------------------
# Dataset


@pytest.mark.parametrize("fixture", ["celeba_178x218", "synthetic_celeba"])
@pytest.mark.parametrize("mask", ["none", "noise"])
def test_dataset_shapes_dtypes_ranges(request, fixture, mask):
    data = request.getfixturevalue(fixture)
    cfg = config(data, image_size=32, attributes=["Eyeglasses", "Male", "Smiling"], mask=MaskConfig(kind=mask))
    ds = build_dataset(cfg, "train", batch_size=4, training=True, seed=1)
    batch = first_batch(ds)
    assert set(batch) == ({"image", "attributes", "mask"} if mask != "none" else {"image", "attributes"})
    assert batch["image"].shape == (4, 32, 32, 3) and batch["image"].dtype == np.float32
    assert batch["image"].min() >= -1.0 and batch["image"].max() <= 1.0
    assert batch["image"].min() < -0.5 and batch["image"].max() > 0.5  # uses the range, not a constant
    assert batch["attributes"].shape == (4, 3) and batch["attributes"].dtype == np.float32
    assert set(np.unique(batch["attributes"])) <= {0.0, 1.0}
    spec = ds.element_spec
    assert spec["image"].shape.as_list() == [4, 32, 32, 3]
    if mask != "none":
        assert batch["mask"].shape == (4, 32, 32, 1) and batch["mask"].dtype == np.float32
        assert set(np.unique(batch["mask"])) <= {0.0, 1.0} and batch["mask"].sum() > 0
        assert not np.array_equal(batch["mask"][0], batch["mask"][1])


def test_evaluation_dataset_is_ordered_and_matches_attributes(synthetic_celeba):
    cfg = config(synthetic_celeba)
    records = load_records(cfg, "test")
    ds = build_dataset(cfg, "test", batch_size=2, training=False, drop_remainder=False)
    batches = list(ds)
    assert [b["image"].shape[0] for b in batches] == [2, 2, 1]  # no repeat, remainder kept
    attributes = np.concatenate([b["attributes"].numpy() for b in batches])
    np.testing.assert_array_equal(attributes, records.attributes)


def test_center_crop_of_aligned_image(tmp_path):
    # 178x218: the centred 178x178 square excludes 20 rows at the top and bottom (red); inside is blue.
    image = np.zeros((218, 178, 3), np.uint8)
    image[:, :, 0] = 255  # blue (BGR)
    image[:20] = (0, 0, 255)
    image[-20:] = (0, 0, 255)
    ok, png = cv2.imencode(".png", image)
    out = decode_and_resize(png.tobytes(), 16).numpy()  # RGB
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert out[..., 0].max() == 0 and out[..., 2].min() == 255
    # A smaller crop_fraction keeps a centred sub-square: red border bands of 4 px on a 100x100 image disappear.
    image = np.full((100, 100, 3), 255, np.uint8)
    image[:, :4] = 0
    image[:, -4:] = 0
    ok, png = cv2.imencode(".png", image)
    assert decode_and_resize(png.tobytes(), 8, crop_fraction=0.9).numpy().min() == 255
    assert decode_and_resize(png.tobytes(), 8, crop_fraction=1.0).numpy().min() < 255


def test_decodes_grayscale_png_and_bmp(tmp_path):
    gray = np.tile(np.linspace(0, 255, 24, dtype=np.uint8), (30, 1))
    for ext in (".png", ".bmp"):
        ok, data = cv2.imencode(ext, gray)
        out = decode_and_resize(data.tobytes(), 8).numpy()
        assert out.shape == (8, 8, 3)
        np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_flip_only_when_training(synthetic_celeba):
    cfg = config(synthetic_celeba)
    plain = all_images(
        build_dataset(config(synthetic_celeba, random_flip=False), "train", 2, training=True, seed=3, repeat=False)
    )
    flipped = all_images(build_dataset(cfg, "train", 2, training=True, seed=3, repeat=False))
    # Same seed, same order: each image is either unchanged or mirrored, and both happen.
    same = np.all(flipped == plain, axis=(1, 2, 3))
    mirrored = np.all(flipped == plain[:, :, ::-1], axis=(1, 2, 3))
    assert (same | mirrored).all()
    assert 5 < mirrored.sum() < len(plain) - 5
    # Evaluation: no flip (and no shuffle), whatever random_flip says.
    evaluation = [
        all_images(build_dataset(config(synthetic_celeba, random_flip=f), "train", 2, training=False))
        for f in (True, False)
    ]
    np.testing.assert_array_equal(evaluation[0], evaluation[1])


def test_seeded_determinism(synthetic_celeba):
    cfg = config(synthetic_celeba, mask=MaskConfig(kind="noise"))

    def batches(seed):
        it = iter(build_dataset(cfg, "train", 4, training=True, seed=seed))
        return [{k: v.numpy() for k, v in next(it).items()} for _ in range(12)]  # crosses an epoch (38 images)

    a, b, c = batches(7), batches(7), batches(8)
    for x, y in zip(a, b):
        for key in ("image", "attributes", "mask"):
            np.testing.assert_array_equal(x[key], y[key])
    assert not np.array_equal(a[0]["image"], c[0]["image"])
    assert not np.array_equal(a[0]["mask"], c[0]["mask"])


def test_cache_keeps_content_and_reshuffles_each_epoch(synthetic_celeba):
    def epochs(cache):
        cfg = config(synthetic_celeba, cache=cache, random_flip=False)
        ds = build_dataset(cfg, "val", 5, training=True, seed=0, repeat=False)
        return [first_batch(ds)["image"] for _ in range(4)]

    cached, uncached = epochs(True), epochs(False)
    for x, y in zip(cached, uncached):
        np.testing.assert_array_equal(x, y)
    # Same set of images each epoch, in a different order in at least one later epoch.
    key = lambda batch: sorted(img.tobytes() for img in batch)  # noqa: E731
    assert all(key(e) == key(cached[0]) for e in cached)
    assert any(not np.array_equal(e, cached[0]) for e in cached[1:])


def test_batch_larger_than_split_without_repeat(synthetic_celeba):
    with pytest.raises(DataError, match="split 'val' has 5 images, fewer than the batch size 8"):
        build_dataset(config(synthetic_celeba), "val", 8, training=False)
    # With repeat the batch fills across epochs.
    batch = first_batch(build_dataset(config(synthetic_celeba), "val", 8, training=True))
    assert batch["image"].shape[0] == 8


def write_bad_images(synthetic_celeba, tmp_path, num_images=10):
    data = copy_dataset(synthetic_celeba, tmp_path / "bad", num_images=num_images)
    (data / "images" / "000003.jpg").write_bytes(b"")
    (data / "images" / "000007.jpg").write_text("not an image")
    return data


def test_corrupt_images_skipped_with_count(synthetic_celeba, tmp_path, caplog):
    data = write_bad_images(synthetic_celeba, tmp_path)
    cfg = config(data, max_corrupt_fraction=0.25)
    with caplog.at_level(logging.WARNING, logger="tf_faceedit"):
        ds = build_dataset(cfg, "train", 1, training=False)
    warnings = [r.getMessage() for r in caplog.records if "not JPEG" in r.getMessage()]
    assert len(warnings) == 1 and "2 of 10" in warnings[0] and "000003.jpg" in warnings[0]
    assert len(list(ds)) == 8


def test_corrupt_images_above_fraction_fail(synthetic_celeba, tmp_path):
    data = write_bad_images(synthetic_celeba, tmp_path)
    with pytest.raises(DataError) as info:
        build_dataset(config(data, max_corrupt_fraction=0.1), "train", 1, training=False)
    message = str(info.value)
    assert "2 of 10" in message and "000003.jpg" in message and "max_corrupt_fraction" in message


def test_truncated_image_is_skipped_by_the_pipeline(synthetic_celeba, tmp_path):
    data = copy_dataset(synthetic_celeba, tmp_path / "trunc", num_images=6)
    path = data / "images" / "000004.jpg"
    path.write_bytes(path.read_bytes()[:200])  # valid magic bytes, but cut short
    ds = build_dataset(config(data), "train", 1, training=False)
    assert len(list(ds)) == 5


def test_given_records_are_used(synthetic_celeba):
    cfg = config(synthetic_celeba)
    records = load_records(cfg, "train")
    subset = dataclasses.replace(records, paths=records.paths[:3], attributes=records.attributes[:3])
    batches = list(build_dataset(cfg, "ignored", 3, training=False, records=subset))
    assert len(batches) == 1
    np.testing.assert_array_equal(batches[0]["attributes"].numpy(), records.attributes[:3])


def test_denormalize():
    images = np.array([-1.0, -0.5, 0.0, 1.0, 1.5], np.float32)
    out = denormalize(images)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [0, 64, 128, 255, 255])


def test_positive_fraction_draws_the_first_attribute_that_often(synthetic_data_config):
    """data.positive_fraction: the training stream shows the first attribute present at the asked rate, whatever
    its frequency in the data; 0 keeps the data's own frequency; a split with only one value is refused."""
    natural = celeba.load_records(synthetic_data_config, "train").attributes[:, 0].mean()

    def drawn(fraction):
        cfg = dataclasses.replace(synthetic_data_config, positive_fraction=fraction)
        ds = celeba.build_dataset(cfg, "train", batch_size=16, training=True, seed=0)
        return np.concatenate([b["attributes"].numpy()[:, 0] for b in ds.take(40)]).mean()

    assert abs(drawn(0.0) - natural) < 0.1
    assert abs(drawn(0.8) - 0.8) < 0.06 and abs(drawn(0.2) - 0.2) < 0.06
    with pytest.raises(ConfigError, match="positive_fraction"):
        dataclasses.replace(synthetic_data_config, positive_fraction=1.0).validate()
