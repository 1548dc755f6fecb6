"""TensorFlow Datasets as a data source: `--data_dir=tfds:celeb_a` (or `tfds:celeb_a:DIR`).

    python -m tf_faceedit.train --config=sagan_quick --data_dir=tfds:celeb_a                    # ~/tensorflow_datasets
    python -m tf_faceedit.train --config=attentiongan_quick --data_dir=tfds:celeb_a:/data/tfds  # another TFDS folder

`data.data_dir = "tfds:NAME[:DIR]"` reads the prepared TFDS dataset NAME (e.g. `celeb_a`, `celeb_a:2.1.0`; any dataset
with an "image" feature and an "attributes" dict of booleans) from DIR (default: TFDS's own, `$TFDS_DATA_DIR` or
~/tensorflow_datasets). It needs the optional `tensorflow-datasets` package (`pip install tf_faceedit[tfds]`) and the
dataset prepared beforehand (`tfds build celeb_a`); nothing is downloaded here.

Everything else is the folder pipeline's (`celeba.build_dataset`): the same attribute names (TFDS's celeb_a uses
CelebA's own), attributes in {0, 1} (True -> 1), the same centre crop / resize / flip, masks, caching and shuffling.
The splits are TFDS's official ones: train -> "train", val -> "validation", test -> "test", all -> the three in
that order.

Records. `load_records` reads the attributes of a split once (image bytes are read but not decoded; the table is
kept for the process) and returns `records.Records` whose `paths` are keys `tfds:NAME/SPLIT_INDEX` (INDEX: position in
the split's file order), so subsets made by the callers (the unpaired domains, `max_images`) stay `Records`.
`encoded_dataset` turns such records back into a stream of (encoded image bytes, attributes): each split is read in
file order (sequentially, so the order does not depend on tf.data's determinism setting) and filtered to the
records' indices, and the attributes come from the same examples as the images.
"""

import functools
import re

import numpy as np

from tf_faceedit.backend.lazy_tf import tf
from tf_faceedit.data.records import SPLITS, Records
from tf_faceedit.errors import DataError, suggest

PREFIX = "tfds:"
SPLIT_NAMES = {"train": ("train",), "val": ("validation",), "test": ("test",), "all": ("train", "validation", "test")}
_SPEC = re.compile(r"^tfds:(?P<name>[A-Za-z0-9_]+(?:/[A-Za-z0-9_.-]+)?(?::\d+\.\d+\.\d+)?)(?::(?P<dir>.+))?$")
_KEY = re.compile(r"^tfds:(?P<name>.+)/(?P<split>[A-Za-z0-9]+)_(?P<index>\d+)$")
INSTALL_HINT = "pip install 'tf_faceedit[tfds]'"


def is_tfds(data_dir):
    """Whether `data.data_dir` names a TFDS dataset (`tfds:NAME[:DIR]`)."""
    return str(data_dir or "").startswith(PREFIX)


def is_tfds_records(records):
    return bool(records.paths) and str(records.paths[0]).startswith(PREFIX)


def parse_spec(data_dir):
    """ "tfds:NAME[:DIR]" -> (NAME, DIR or None). DataError for a malformed value."""
    match = _SPEC.match(str(data_dir))
    if not match:
        raise DataError(
            f"--data_dir={data_dir}: expected tfds:NAME or tfds:NAME:DIR (e.g. tfds:celeb_a, "
            "tfds:celeb_a:2.1.0:/data/tensorflow_datasets)"
        )
    return match.group("name"), match.group("dir") or None


def _tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataError(f"--data_dir=tfds:... needs tensorflow-datasets: {INSTALL_HINT}") from None
    return tfds


def _prepare_hint(name, data_dir):
    where = f" --data_dir={data_dir}" if data_dir else ""
    return (
        f"prepare it with `tfds build {name.split(':')[0]}{where}` (celeb_a downloads CelebA, about 1.4 GB; "
        "celeb_a_hq needs a manual download first, see its TFDS page) or point --data_dir=tfds:NAME:DIR at the "
        "folder that holds it"
    )


@functools.lru_cache(maxsize=8)
def _builder(name, data_dir):
    tfds = _tfds()
    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        known = tfds.list_builders(with_community_datasets=False)
        raise DataError(
            f"--data_dir=tfds:{name}: TFDS has no dataset {name.split(':')[0]!r}{suggest(name.split(':')[0], known)}"
        ) from None


def _split_stream(name, data_dir, split):
    """The examples of one TFDS split in file order, image bytes undecoded (a DataError when not prepared)."""
    tfds = _tfds()
    builder = _builder(name, data_dir)
    read_config = tfds.ReadConfig(interleave_cycle_length=1, shuffle_seed=None)
    try:
        return builder.as_dataset(
            split=split, shuffle_files=False, read_config=read_config, decoders={"image": tfds.decode.SkipDecoding()}
        )
    except AssertionError:  # TFDS: "could not find data in DIR. Please make sure to call download_and_prepare()"
        raise DataError(
            f"TFDS dataset {name} is not prepared in {data_dir or builder.data_dir}: {_prepare_hint(name, data_dir)}"
        ) from None
    except (ValueError, KeyError) as err:  # unknown split
        splits = ", ".join(builder.info.splits.keys()) or "unknown"
        raise DataError(f"TFDS dataset {name} has no split {split!r} (its splits: {splits}): {err}") from None


def _check_features(name, dataset, attributes):
    spec = dataset.element_spec
    if "image" not in spec or not isinstance(spec.get("attributes"), dict):
        raise DataError(
            f"TFDS dataset {name} has no per-image attribute labels (features: {', '.join(spec)}); "
            "use one with an 'attributes' feature, e.g. tfds:celeb_a"
        )
    names = list(spec["attributes"])
    for attribute in attributes:
        if attribute not in names:
            raise DataError(f"unknown attribute '{attribute}' in TFDS dataset {name}{suggest(attribute, names)}")
    return names


@functools.lru_cache(maxsize=16)
def _attribute_table(name, data_dir, split):
    """(attribute names, bool [N, K]) of one split, every attribute, in file order (read once per process)."""
    dataset = _split_stream(name, data_dir, split)
    names = _check_features(name, dataset, [])
    rows = dataset.map(
        lambda ex: tf.stack([ex["attributes"][n] for n in names]), num_parallel_calls=tf.data.AUTOTUNE
    ).batch(4096)
    values = [np.asarray(batch) for batch in rows.as_numpy_iterator()]
    values = np.concatenate(values) if values else np.zeros((0, len(names)), bool)
    return tuple(names), values.astype(bool)


def _key(name, split, index):
    return f"{PREFIX}{name}/{split}_{index:06d}"


def load_records(cfg, split):
    """The `records.Records` of `split` ("train", "val", "test" or "all") of the TFDS dataset in `cfg.data_dir`."""
    if split not in SPLIT_NAMES:
        raise DataError(f"split must be one of train, val, test, all, got {split!r}{suggest(split, [*SPLITS, 'all'])}")
    name, data_dir = parse_spec(cfg.data_dir)
    paths, attributes = [], []
    for tfds_split in SPLIT_NAMES[split]:
        names, values = _attribute_table(name, data_dir, tfds_split)
        missing = [a for a in cfg.attributes if a not in names]
        if missing:
            raise DataError(f"unknown attribute '{missing[0]}' in TFDS dataset {name}{suggest(missing[0], names)}")
        columns = [names.index(a) for a in cfg.attributes]
        paths += [_key(name, tfds_split, i) for i in range(len(values))]
        attributes.append(values[:, columns].astype(np.float32))
    if not paths:
        raise DataError(f"split '{split}' of TFDS dataset {name} is empty")
    return Records(
        paths=paths, attributes=np.concatenate(attributes), attribute_names=list(cfg.attributes), split=split
    )


def read_attribute_table(cfg):
    """`celeba.read_attribute_table` for a TFDS source: (data_dir, (names, keys, int8 -1/1 values)) of every split."""
    name, data_dir = parse_spec(cfg.data_dir)
    keys, values, names = [], [], None
    for tfds_split in SPLIT_NAMES["all"]:
        names, table = _attribute_table(name, data_dir, tfds_split)
        keys += [f"{tfds_split}_{i:06d}" for i in range(len(table))]
        values.append(np.where(table, 1, -1).astype(np.int8))
    return cfg.data_dir, (list(names), keys, np.concatenate(values))


def _runs(paths):
    """[(split, sorted index array)] of consecutive keys of one split with increasing indices."""
    runs, current, last = [], None, None
    for path in paths:
        match = _KEY.match(str(path))
        if not match:
            raise DataError(f"cannot mix TFDS examples and files in one split (got {path})")
        split, index = match.group("split"), int(match.group("index"))
        if current is None or split != current[0] or index <= last:
            current = (split, [])
            runs.append(current)
        current[1].append(index)
        last = index
    return [(split, np.asarray(indices, np.int64)) for split, indices in runs]


def encoded_dataset(cfg, records):
    """tf.data.Dataset of (encoded image bytes, float32 attributes [K] in {0, 1}), one element per record, in order."""
    name, data_dir = parse_spec(cfg.data_dir)
    attribute_names = list(records.attribute_names)
    parts = []
    for split, indices in _runs(records.paths):
        dataset = _split_stream(name, data_dir, split)
        _check_features(name, dataset, attribute_names)
        parts.append(_select(dataset, indices, attribute_names))
    out = parts[0]
    for part in parts[1:]:
        out = out.concatenate(part)
    return out


def _select(dataset, indices, attribute_names):
    """The examples at the increasing `indices` of a split stream, as (image bytes, attributes)."""
    last = int(indices[-1])
    dataset = dataset.enumerate().take(last + 1)
    if not np.array_equal(indices, np.arange(last + 1)):
        keep = np.zeros(last + 1, bool)
        keep[indices] = True
        keep = tf.constant(keep)
        dataset = dataset.filter(lambda i, ex: keep[i])

    def element(i, ex):
        values = tf.stack([tf.cast(ex["attributes"][n], tf.float32) for n in attribute_names])
        return ex["image"], values

    return dataset.map(element)


def clear_cache():
    """Forgets the builders and attribute tables read so far (tests that mock TFDS call it)."""
    _builder.cache_clear()
    _attribute_table.cache_clear()
