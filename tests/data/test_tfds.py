"""TensorFlow Datasets as a data source (`--data_dir=tfds:celeb_a`), on TFDS's own mock data (nothing downloaded).

`tfds.testing.mock_data` makes deterministic random celeb_a examples (218x178 JPEG noise images, random boolean
attributes) for every split. The tests check that the TFDS path gives exactly what the folder path gives for the
same images (crop, resize, flip, masks), the official splits, the unpaired domains of AttentionGAN, a short SaGAN
training run, and the one-line errors. Skipped when tensorflow-datasets is not installed (the `[tfds]` extra; the
`[test]` extra installs it, so CI runs these)."""

import dataclasses
import sys

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from tests import helpers  # noqa: E402
from tf_faceedit.config import DataConfig, MaskConfig  # noqa: E402
from tf_faceedit.data import celeba, tfds_source, unpaired  # noqa: E402
from tf_faceedit.errors import DataError  # noqa: E402
from tf_faceedit.training import driver  # noqa: E402

NUM_EXAMPLES = 12
SOURCE = "tfds:celeb_a"


@pytest.fixture
def mocked():
    tfds_source.clear_cache()
    with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
        yield
    tfds_source.clear_cache()


def _examples(split="train"):
    """The mocked examples of a split as TFDS gives them: [(JPEG bytes, {attribute: bool})]."""
    builder = tfds.builder("celeb_a")
    ds = builder.as_dataset(split=split, shuffle_files=False, decoders={"image": tfds.decode.SkipDecoding()})
    return [(ex["image"], {k: bool(v) for k, v in ex["attributes"].items()}) for ex in tfds.as_numpy(ds)]


def _as_folder(examples, folder, names):
    """The same examples as a CelebA-format folder (every image in the train split)."""
    (folder / "images").mkdir(parents=True)
    filenames = []
    for i, (data, _) in enumerate(examples):
        filenames.append(f"{i + 1:06d}.jpg")
        (folder / "images" / filenames[-1]).write_bytes(data)
    values = np.array([[1 if attributes[n] else -1 for n in names] for _, attributes in examples])
    celeba.write_celeba_attributes(folder / celeba.CELEBA_ATTR_FILE, names, filenames, values)
    celeba.write_partition(folder / celeba.PARTITION_FILE, {name: 0 for name in filenames})
    return folder


def test_spec_parsing():
    assert tfds_source.is_tfds("tfds:celeb_a") and not tfds_source.is_tfds("/data/celeba")
    assert tfds_source.parse_spec("tfds:celeb_a") == ("celeb_a", None)
    assert tfds_source.parse_spec("tfds:celeb_a:/data/tfds") == ("celeb_a", "/data/tfds")
    assert tfds_source.parse_spec("tfds:celeb_a:2.1.0:/data/tfds") == ("celeb_a:2.1.0", "/data/tfds")
    with pytest.raises(DataError, match="expected tfds:NAME or tfds:NAME:DIR"):
        tfds_source.parse_spec("tfds:")


def test_records_official_splits_and_attributes(mocked):
    cfg = DataConfig(data_dir=SOURCE, attributes=["Eyeglasses", "Smiling", "Male"], image_size=16)
    records = celeba.load_records(cfg, "train")
    assert len(records) == NUM_EXAMPLES and records.attribute_names == ["Eyeglasses", "Smiling", "Male"]
    assert records.attributes.dtype == np.float32 and set(np.unique(records.attributes)) <= {0.0, 1.0}
    truth = [[float(a[n]) for n in cfg.attributes] for _, a in _examples("train")]
    np.testing.assert_array_equal(records.attributes, truth)  # CelebA's attribute names, True -> 1
    assert records.paths[0] == "tfds:celeb_a/train_000000"
    assert celeba.load_records(cfg, "val").paths[0] == "tfds:celeb_a/validation_000000"
    assert len(celeba.load_records(cfg, "all")) == 3 * NUM_EXAMPLES  # train + validation + test
    names, keys, values = celeba.read_attribute_table(cfg)[1]
    assert len(names) == 40 and "Eyeglasses" in names and len(keys) == 3 * NUM_EXAMPLES
    assert set(np.unique(values)) <= {-1, 1}
    with pytest.raises(DataError, match="unknown attribute 'Eyeglass' in TFDS dataset celeb_a .*Eyeglasses"):
        celeba.load_records(dataclasses.replace(cfg, attributes=["Eyeglass"]), "train")


@pytest.mark.parametrize("training", [False, True])
def test_pipeline_equals_the_folder_pipeline(mocked, tmp_path, training):
    """The same images from TFDS and from a CelebA folder give identical batches: crop, resize, shuffle, flips and
    masks are the folder pipeline's."""
    names = ["Eyeglasses", "Smiling"]
    folder = _as_folder(_examples("train"), tmp_path / "celeba", names)
    mask = MaskConfig(kind="noise") if training else MaskConfig()  # pggan_completion's holes
    cfg = DataConfig(
        data_dir=SOURCE, attributes=names, image_size=32, crop_fraction=0.8, cache=False, shuffle_buffer=64, mask=mask
    )
    folder_cfg = dataclasses.replace(cfg, data_dir=str(folder))
    kwargs = dict(batch_size=4, training=training, seed=3, repeat=False)
    ours = list(celeba.build_dataset(cfg, "train", **kwargs).as_numpy_iterator())
    theirs = list(celeba.build_dataset(folder_cfg, "train", **kwargs).as_numpy_iterator())
    assert len(ours) == len(theirs) == NUM_EXAMPLES // 4
    for a, b in zip(ours, theirs):
        assert sorted(a) == sorted(b) == sorted(["image", "attributes"] + (["mask"] if training else []))
        assert a["image"].shape == (4, 32, 32, 3) and a["image"].min() >= -1.0 and a["image"].max() <= 1.0
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    if training:
        masks = np.concatenate([batch["mask"] for batch in ours])
        assert set(np.unique(masks)) == {0.0, 1.0}  # completion holes, 1 = hole


def test_unpaired_domains_of_attentiongan(mocked):
    """The attribute layout on a TFDS split: domain X = Smiling 0, Y = Smiling 1, the images those examples hold."""
    cfg = unpaired.UnpairedDataConfig(data_dir=SOURCE, domain_attribute="Smiling", image_size=16, cache=False)
    examples = _examples("train")
    smiling = np.array([a["Smiling"] for _, a in examples])
    assert 0 < smiling.sum() < NUM_EXAMPLES  # both domains are populated by the mock's 12 examples
    records = unpaired.load_unpaired_records(cfg, "train")
    assert len(records.a) == int((~smiling).sum()) and len(records.b) == int(smiling.sum())
    assert np.all(records.a.attributes == 0) and np.all(records.b.attributes == 1)
    batch = next(
        iter(unpaired.build_unpaired_dataset(cfg, "train", batch_size=1, training=False, repeat=False, records=records))
    )
    first_a = celeba.decode_and_resize(examples[int(np.argmin(smiling))][0], 16).numpy()
    first_b = celeba.decode_and_resize(examples[int(np.argmax(smiling))][0], 16).numpy()
    np.testing.assert_array_equal(celeba.denormalize(batch["image_a"].numpy())[0], first_a)
    np.testing.assert_array_equal(celeba.denormalize(batch["image_b"].numpy())[0], first_b)
    with pytest.raises(DataError, match="layout=folders needs trainA"):
        unpaired.load_unpaired_records(dataclasses.replace(cfg, layout="folders"), "train")


@pytest.mark.slow  # a training run (~13 s); the mock_data pipeline tests stay
def test_sagan_trains_on_tfds(mocked, tmp_path):
    cfg = helpers.tiny_config("sagan", SOURCE, **{"train.steps": 2, "train.batch_size": 4})
    summary = driver.run(cfg, tmp_path / "run")
    assert summary["step"] == 2 and summary["checkpoint"]
    assert all(np.isfinite(float(v)) for v in summary["logs"].values())
    assert (tmp_path / "run" / "config.yaml").read_text().count("tfds:celeb_a") == 1


def test_missing_dataset_is_a_one_line_error(tmp_path):
    tfds_source.clear_cache()
    cfg = DataConfig(data_dir=f"tfds:celeb_a:{tmp_path}", attributes=["Smiling"], image_size=16)
    with pytest.raises(DataError) as info:
        celeba.load_records(cfg, "train")
    message = str(info.value)
    assert "\n" not in message and f"not prepared in {tmp_path}" in message
    assert f"tfds build celeb_a --data_dir={tmp_path}" in message
    with pytest.raises(DataError, match="TFDS has no dataset 'celeb_aa' .*celeb_a"):
        celeba.load_records(dataclasses.replace(cfg, data_dir=f"tfds:celeb_aa:{tmp_path}"), "train")
    tfds_source.clear_cache()


def test_without_tensorflow_datasets_the_error_says_how_to_install(monkeypatch):
    tfds_source.clear_cache()
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import fails
    cfg = DataConfig(data_dir=SOURCE, attributes=["Smiling"], image_size=16)
    with pytest.raises(DataError, match=r"needs tensorflow-datasets: pip install 'tf_faceedit\[tfds\]'"):
        celeba.load_records(cfg, "train")
    tfds_source.clear_cache()
