"""CelebA-format face datasets: attribute tables, partitions, and the tf.data input pipeline.

Folder formats (see `DataConfig`):
  * CelebA: `images/` (or `img_align_celeba/`, or the folder itself), `list_attr_celeba.txt` (count line, header of
    attribute names, then `filename v1 ... vK` rows of -1/1) and optionally `list_eval_partition.txt`
    (`filename 0|1|2` = train / val / test). CRLF line endings and runs of spaces are accepted.
  * CSV: images as above and `attributes.csv` with header `filename,attr1,...` and 0/1 or -1/1 values.
  * TFDS: `data_dir = "tfds:celeb_a[:DIR]"` reads a prepared TensorFlow Datasets dataset instead of a folder
    (`tfds_source`: official splits, the same steps from 2 on).

`build_dataset` yields dicts of batches:
  "image":      float32 [B, S, S, 3] in [-1, 1], RGB, S = `DataConfig.image_size`;
  "attributes": float32 [B, K] in {0, 1}, columns in `DataConfig.attributes` order;
  "mask":       float32 [B, S, S, 1] in {0, 1} (1 = hole), only when `DataConfig.mask.kind != "none"`.
B is the global batch size (under a distribution strategy Keras splits it across replicas).

Pipeline order (one element = one image):
  1. from_tensor_slices(path, attributes)
  2. parallel map: read, decode (JPEG/PNG/BMP/GIF, grayscale -> RGB), centre-crop a square of side
     round(min(h, w) * crop_fraction), resize to S x S (bilinear, antialiased), round to uint8
  3. ignore_errors: a file that fails to decode (e.g. truncated) is skipped with a logged warning
  4. cache() of the uint8 images when `cache` (before shuffling, so every epoch is still shuffled differently)
  5. shuffle (training only; buffer min(shuffle_buffer, N), seeded, reshuffled each iteration)
  6. repeat() when `repeat` (default: when training)
  7. enumerate + parallel map: random horizontal flip (training and `random_flip`), scale to [-1, 1], mask.
     Each element's flip and mask are drawn by stateless ops from the seed (seed, position in the stream): one
     seed gives the same batches, and since repeat comes before this step, every epoch gets new flips and masks.
  8. batch(B, drop_remainder), prefetch(AUTOTUNE)

Before the pipeline is built, a cheap scan (`records.drop_corrupt`) drops files that are empty, not JPEG/PNG/GIF/BMP,
whose header does not parse, or whose header declares more than `MAX_IMAGE_PIXELS` pixels (a decompression-bomb
guard: a tiny PNG may declare 20000x20000 and decode to 1.2 GB; the JPEG header is walked marker by marker up to its
frame header, however many comment bytes come first), with one counted warning, and fails when their share exceeds
`max_corrupt_fraction`. Headers are read by `tf_faceedit.images`, the parser every image reader uses. Files that pass
the scan but fail to decode are skipped by the pipeline (step 3); when none decodes, the first batch raises
DataError (`first_batch`).
"""

import csv
import logging
import os
import random
from pathlib import Path

import numpy as np

from tf_faceedit import images
from tf_faceedit.backend.lazy_tf import tf  # TensorFlow is imported on first use (the JAX path runs without it)
from tf_faceedit.data import tfds_source
from tf_faceedit.data.masks import make_mask_fn
from tf_faceedit.data.records import SPLITS, Records, drop_corrupt
from tf_faceedit.errors import DataError, suggest

logger = logging.getLogger(__name__)

CELEBA_ATTR_FILE = "list_attr_celeba.txt"
CSV_ATTR_FILE = "attributes.csv"
PARTITION_FILE = "list_eval_partition.txt"
IMAGE_DIR_CANDIDATES = ("images", "img_align_celeba")

_FILENAME_COLUMNS = ("filename", "file", "image", "image_id", "img", "name", "path", "file_name", "image_name")


# ---------------------------------------------------------------------------------------------------------------
# Attribute and partition files


def _read_lines(path, what):
    """Returns the lines of a text file (BOM, CRLF tolerated) or raises DataError if it is missing/unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} not found: {path}")
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        raise DataError(f"{what} {path} is not UTF-8 text ({err.reason} at byte {err.start})") from None


def _parse_values(tokens, path, line_no):
    """Parses -1/0/1 tokens of one row to a list of ints; raises DataError naming path:line otherwise."""
    values = []
    for token in tokens:
        try:
            number = float(token)
        except ValueError:
            raise DataError(f"{path}:{line_no}: attribute value {token!r} is not a number") from None
        if number not in (-1.0, 0.0, 1.0):
            raise DataError(f"{path}:{line_no}: attribute value {token!r} must be -1, 0 or 1")
        values.append(int(number))
    return values


def read_celeba_attributes(path):
    """Reads a CelebA attribute file (`list_attr_celeba.txt` format).

    Returns:
      (names, filenames, values): the attribute names (header order), the image filenames (row order) and an int8
      [N, K] array of -1/1 (a 0 is read as -1).

    Raises:
      DataError naming the file and line for a missing file, a bad count line, a row with the wrong number of columns,
      a non-numeric value, or a row count different from the count line.
    """
    path = Path(path)
    lines = _read_lines(path, "attribute file")
    numbered = [(i + 1, line.split()) for i, line in enumerate(lines) if line.strip()]
    if len(numbered) < 2:
        raise DataError(
            f"{path}: expected a count line and a header line of attribute names, "
            f"found {len(numbered)} non-empty line(s)"
        )
    (count_line, count_tokens), (_, header) = numbered[0], numbered[1]
    try:
        count = int(count_tokens[0]) if len(count_tokens) == 1 else None
    except ValueError:
        count = None
    if count is None:
        raise DataError(f"{path}:{count_line}: first line must be the number of images, got {' '.join(count_tokens)!r}")
    rows = numbered[2:]
    # The header may start with a filename column name ("image_id ...") or not (the official file).
    if header[0].lower() in _FILENAME_COLUMNS or (rows and len(rows[0][1]) == len(header) and len(header) > 1):
        header = header[1:]
    names = list(header)
    width = len(names) + 1
    filenames, cells = [], []
    for line_no, tokens in rows:
        if len(tokens) != width:
            raise DataError(
                f"{path}:{line_no}: expected a filename and {len(names)} attribute values, got {len(tokens)} column(s)"
            )
        filenames.append(tokens[0])
        cells.append(tokens[1:])
    if len(filenames) != count:
        raise DataError(f"{path}:{count_line}: count line says {count} images but the file has {len(filenames)} rows")
    _check_unique(path, numbered[1][0], names, filenames, [line_no for line_no, _ in rows])
    try:  # fast path: numpy parses every cell at once
        values = np.array(cells, dtype=np.float32).reshape(len(cells), len(names))
        ok = bool(np.isin(values, (-1.0, 0.0, 1.0)).all())
    except ValueError:
        ok = False
    if not ok:  # slow path, row by row, to name the bad line
        values = np.array(
            [_parse_values(tokens[1:], path, line_no) for line_no, tokens in rows], dtype=np.float32
        ).reshape(len(rows), len(names))
    values = np.where(values > 0, 1, -1).astype(np.int8)
    return names, filenames, values


def read_partition(path):
    """Reads `list_eval_partition.txt`: returns {filename: 0 (train) | 1 (val) | 2 (test)}.

    Raises DataError naming the file and line for a missing file or a malformed row.
    """
    path = Path(path)
    partition = {}
    for i, line in enumerate(_read_lines(path, "partition file")):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != 2 or tokens[1] not in ("0", "1", "2"):
            raise DataError(f"{path}:{i + 1}: expected '<filename> <0|1|2>', got {line.strip()!r}")
        partition[tokens[0]] = int(tokens[1])
    return partition


def _check_unique(path, header_line, names, filenames, line_numbers):
    """DataError naming the file and line when an attribute name or an image filename is listed twice."""
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise DataError(f"{path}:{header_line}: attribute name(s) listed twice in the header: {', '.join(twice)}")
    first = {}
    for name, line_no in zip(filenames, line_numbers):
        if name in first:
            raise DataError(f"{path}:{line_no}: image {name} is listed twice (first on line {first[name]})")
        first[name] = line_no


def write_celeba_attributes(path, names, filenames, values):
    """Writes a `list_attr_celeba.txt`-format file: count line, header, `filename v1 ... vK` rows of -1/1.

    values: [N, K] array; positive entries are written as 1, the others as -1.
    """
    lines = [str(len(filenames)), " ".join(names)]
    for name, row in zip(filenames, np.asarray(values)):
        lines.append(name + "".join(f" {1 if v > 0 else -1:2d}" for v in row))
    Path(path).write_text("\n".join(lines) + "\n")


def write_partition(path, partition):
    """Writes a `list_eval_partition.txt`-format file from {filename: 0|1|2} (in insertion order)."""
    Path(path).write_text("".join(f"{name} {split}\n" for name, split in partition.items()))


def read_csv_attributes(path):
    """Reads a CSV attribute table with header `filename,attr1,attr2,...` and 0/1 or -1/1 values.

    Returns:
      (names, filenames, values): the attribute names, the image filenames and an int8 [N, K] array of the raw values
      (-1/0/1; `value > 0` means present).

    Raises DataError naming the file and line for a missing file, a row with the wrong number of columns or a value
    that is not -1, 0 or 1. A UTF-8 BOM and CRLF line endings are accepted.
    """
    path = Path(path)
    lines = _read_lines(path, "attribute file")
    reader = csv.reader(lines)
    header, line_no = None, 0
    filenames, rows, line_numbers, header_line = [], [], [], 1
    for line_no, row in enumerate(reader, start=1):
        row = [cell.strip() for cell in row]
        if not any(row):
            continue
        if header is None:
            if len(row) < 2:
                raise DataError(f"{path}:{line_no}: header must be 'filename,attr1,attr2,...', got {','.join(row)!r}")
            header, header_line = row, line_no
            continue
        if len(row) != len(header):
            raise DataError(f"{path}:{line_no}: expected {len(header)} columns like the header, got {len(row)}")
        filenames.append(row[0])
        line_numbers.append(line_no)
        rows.append(_parse_values(row[1:], path, line_no))
    if header is None:
        raise DataError(f"{path}: file is empty; expected a header 'filename,attr1,attr2,...'")
    names = header[1:]
    _check_unique(path, header_line, names, filenames, line_numbers)
    values = np.array(rows, dtype=np.int8).reshape(len(rows), len(names))
    return names, filenames, values


# ---------------------------------------------------------------------------------------------------------------
# Records of a split


def _resolve(data_dir, value):
    path = Path(value).expanduser()
    return path if path.is_absolute() else data_dir / path


def _detect_format(cfg, data_dir):
    if cfg.format != "auto":
        return cfg.format
    if cfg.attr_file:
        return "csv" if cfg.attr_file.lower().endswith(".csv") else "celeba"
    if (data_dir / CELEBA_ATTR_FILE).is_file():
        return "celeba"
    if (data_dir / CSV_ATTR_FILE).is_file():
        return "csv"
    raise DataError(
        f"no attribute file in {data_dir}: looked for {CELEBA_ATTR_FILE} (CelebA format) and "
        f"{CSV_ATTR_FILE} (CSV format); set data.attr_file to use another file"
    )


def _image_dir(cfg, data_dir):
    if cfg.image_dir:
        image_dir = _resolve(data_dir, cfg.image_dir)
        if not image_dir.is_dir():
            raise DataError(f"image folder not found: {image_dir} (data.image_dir)")
        return image_dir
    for name in IMAGE_DIR_CANDIDATES:
        if (data_dir / name).is_dir():
            return data_dir / name
    return data_dir


def _split_ids(cfg, data_dir, filenames):
    """Returns (int array of split ids per row, -1 = in no split; description of where the split came from)."""
    if cfg.partition_file:
        partition_path = _resolve(data_dir, cfg.partition_file)
        if not partition_path.is_file():
            raise DataError(f"partition file not found: {partition_path} (data.partition_file)")
    else:
        partition_path = data_dir / PARTITION_FILE
    if partition_path.is_file():
        partition = read_partition(partition_path)
        ids = np.array([partition.get(name, -1) for name in filenames], dtype=np.int64)
        unlisted = int((ids < 0).sum())
        if unlisted:
            first = filenames[int(np.argmax(ids < 0))]
            logger.warning(
                "%d of %d images in the attribute file are not listed in %s and belong to no split "
                "except 'all' (first: %s)",
                unlisted,
                len(ids),
                partition_path,
                first,
            )
        return ids, str(partition_path)
    ids = np.zeros(len(filenames), dtype=np.int64)
    n_val = int(round(len(filenames) * cfg.val_fraction))
    if n_val:
        ids[len(filenames) - n_val :] = SPLITS["val"]
    return ids, f"no partition file ({partition_path}); data.val_fraction={cfg.val_fraction}"


def _existing(image_dir, filenames):
    """Boolean array: which filenames exist under image_dir (one directory listing, not one stat per file)."""
    try:
        listing = set(os.listdir(image_dir))
    except OSError:
        listing = set()
    return np.array(
        [name in listing or (("/" in name or os.sep in name) and (image_dir / name).is_file()) for name in filenames],
        dtype=bool,
    )


def read_attribute_table(cfg):
    """Finds and reads the attribute file of `cfg.data_dir` (either format).

    Returns (path, (names, filenames, values)) as `read_celeba_attributes`; DataError when it is missing.
    """
    if tfds_source.is_tfds(cfg.data_dir):
        return tfds_source.read_attribute_table(cfg)
    data_dir = Path(cfg.data_dir).expanduser()
    fmt = _detect_format(cfg, data_dir)
    attr_path = (
        _resolve(data_dir, cfg.attr_file)
        if cfg.attr_file
        else (data_dir / (CELEBA_ATTR_FILE if fmt == "celeba" else CSV_ATTR_FILE))
    )
    if not attr_path.is_file():
        flag = "data.attr_file" if cfg.attr_file else "data.data_dir"
        raise DataError(f"attribute file not found: {attr_path} ({flag}, format {fmt})")
    reader = read_celeba_attributes if fmt == "celeba" else read_csv_attributes
    return attr_path, reader(attr_path)


def load_records(cfg, split):
    """Returns the `Records` of `split` ("train", "val", "test" or "all") of the dataset described by `cfg`.

    Raises DataError for a missing folder or file, a malformed file, an unknown attribute name, an empty split, or a
    split whose image files are all missing. Rows whose image file is missing are dropped with one counted warning.
    """
    if split not in (*SPLITS, "all"):
        raise DataError(f"split must be one of train, val, test, all, got {split!r}{suggest(split, [*SPLITS, 'all'])}")
    if not cfg.data_dir:
        raise DataError("data folder not given (set data.data_dir or pass --data_dir=DIR)")
    if tfds_source.is_tfds(cfg.data_dir):  # --data_dir=tfds:NAME[:DIR]
        return tfds_source.load_records(cfg, split)
    data_dir = Path(cfg.data_dir).expanduser()
    if not data_dir.is_dir():
        raise DataError(f"data folder not found: {data_dir} (data.data_dir)")

    attr_path, (all_names, filenames, values) = read_attribute_table(cfg)

    columns = []
    for name in cfg.attributes:
        if name not in all_names:
            raise DataError(f"unknown attribute '{name}' in {attr_path}{suggest(name, all_names)}")
        columns.append(all_names.index(name))
    attributes = (values[:, columns] > 0).astype(np.float32)

    ids, split_source = _split_ids(cfg, data_dir, filenames)
    keep = np.ones(len(ids), dtype=bool) if split == "all" else ids == SPLITS[split]
    if not keep.any():
        raise DataError(f"split '{split}' is empty: {split_source} assigns no image of {attr_path} to it")

    image_dir = _image_dir(cfg, data_dir)
    selected = np.flatnonzero(keep)
    exists = _existing(image_dir, [filenames[i] for i in selected])
    missing = int((~exists).sum())
    if missing == len(selected):
        raise DataError(
            f"none of the {len(selected)} images of split '{split}' listed in {attr_path} exist in "
            f"{image_dir} (first: {filenames[selected[0]]}); set data.image_dir"
        )
    if missing:
        first = filenames[selected[int(np.argmin(exists))]]
        logger.warning(
            "skipping %d of %d images of split '%s' whose files are missing from %s (first: %s)",
            missing,
            len(selected),
            split,
            image_dir,
            first,
        )
    selected = selected[exists]
    return Records(
        paths=[str(image_dir / filenames[i]) for i in selected],
        attributes=attributes[selected],
        attribute_names=list(cfg.attributes),
        split=split,
    )


# ---------------------------------------------------------------------------------------------------------------
# Input pipeline


def decode_and_resize(contents, image_size, crop_fraction=1.0):
    """Decodes image bytes, centre-crops a square of side round(min(h, w) * crop_fraction), resizes to
    image_size x image_size (bilinear, antialiased) and returns uint8 [image_size, image_size, 3]."""
    image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    short = tf.minimum(height, width)
    side = tf.cast(tf.math.floor(tf.cast(short, tf.float32) * crop_fraction + 0.5), tf.int32)
    side = tf.clip_by_value(side, 1, short)
    image = tf.image.crop_to_bounding_box(image, (height - side) // 2, (width - side) // 2, side, side)
    image = tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True)
    image = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
    image.set_shape([image_size, image_size, 3])
    return image


def build_dataset(cfg, split, batch_size, training, seed=0, repeat=None, drop_remainder=True, records=None):
    """Builds the tf.data pipeline of `split` (see the module docstring for the order and the element format).

    Args:
      cfg: `DataConfig`.
      split: "train", "val", "test" or "all" (ignored when `records` is given).
      batch_size: global batch size.
      training: shuffle, and random flips when `cfg.random_flip`.
      seed: int seed of the shuffle, flips and masks; one seed gives the same batches. None: not reproducible.
      repeat: repeat forever; defaults to `training`.
      drop_remainder: drop the last incomplete batch (static batch dimension).
      records: `Records` to use instead of `load_records(cfg, split)`.

    Returns:
      tf.data.Dataset of {"image": [B,S,S,3], "attributes": [B,K]} (+ "mask": [B,S,S,1]) float32 dicts.
    """
    if int(batch_size) < 1:
        raise DataError(f"batch size must be >= 1, got {batch_size}")
    batch_size = int(batch_size)
    repeat = training if repeat is None else repeat
    if records is None:
        records = load_records(cfg, split)
    if len(records) == 0:
        raise DataError(f"split '{records.split}' has no images")
    from_tfds = tfds_source.is_tfds_records(records)  # TFDS examples, not files: no header scan
    if not from_tfds:
        records = drop_corrupt(records, cfg.max_corrupt_fraction)
    if drop_remainder and not repeat and len(records) < batch_size:
        raise DataError(
            f"split '{records.split}' has {len(records)} images, fewer than the batch size {batch_size}, "
            "so every batch would be dropped (use a smaller batch size, repeat, or drop_remainder=False)"
        )

    deterministic = seed is not None
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    seed = int(seed)
    parallel = tf.data.AUTOTUNE if cfg.num_parallel_calls == -1 else int(cfg.num_parallel_calls)
    size = int(cfg.image_size)
    crop_fraction = float(cfg.crop_fraction)
    flip = bool(training and cfg.random_flip)
    mask_fn = make_mask_fn(cfg.mask, size)
    n = len(records)

    def load(path, attributes):
        return decode_and_resize(tf.io.read_file(path), size, crop_fraction), attributes

    def augment(index, element):
        image, attributes = element
        element_seed = tf.stack([tf.constant(seed, tf.int64), index])
        flip_seed, mask_seed = tf.unstack(tf.random.experimental.stateless_split(element_seed, num=2))
        if flip:
            image = tf.image.stateless_random_flip_left_right(image, flip_seed)
        out = {"image": images.to_float_tf(image), "attributes": attributes}
        if mask_fn is not None:
            out["mask"] = mask_fn(mask_seed)
        return out

    def stream(keep=None):
        """Steps 1-4 over the records (or the subset where `keep`(attributes) holds)."""
        if from_tfds:  # steps 1-2 from the TFDS examples' encoded images (`tfds_source.encoded_dataset`)
            ds = tfds_source.encoded_dataset(cfg, records)
            if keep is not None:
                ds = ds.filter(lambda contents, attributes: keep(attributes))
            ds = ds.map(
                lambda contents, attributes: (decode_and_resize(contents, size, crop_fraction), attributes),
                num_parallel_calls=parallel,
            )
        else:
            attributes = records.attributes.astype(np.float32)
            chosen = np.ones(len(records), bool) if keep is None else keep(attributes)
            ds = tf.data.Dataset.from_tensor_slices((np.asarray(records.paths)[chosen], attributes[chosen]))
            ds = ds.map(load, num_parallel_calls=parallel)
        ds = ds.ignore_errors(log_warning=True)
        if cfg.cache:
            ds = ds.cache()
        if training:
            ds = ds.shuffle(min(int(cfg.shuffle_buffer), n), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        return ds

    fraction = float(getattr(cfg, "positive_fraction", 0.0))
    if training and repeat and fraction > 0:
        # two streams, drawn from with probability `fraction` / 1 - `fraction` (the first attribute present / absent)
        present = records.attributes[:, 0] > 0.5
        if not from_tfds and (present.all() or not present.any()):
            raise DataError(
                f"data.positive_fraction={fraction}: every training image has "
                f"{records.attribute_names[0]}={int(present[0])}, so there is nothing to balance"
            )
        positives = stream(lambda a: a[..., 0] > 0.5)
        negatives = stream(lambda a: a[..., 0] <= 0.5)
        ds = tf.data.Dataset.sample_from_datasets(
            [positives, negatives], weights=[fraction, 1.0 - fraction], seed=seed, stop_on_empty_dataset=True
        )
    else:
        ds = stream()
    ds = ds.enumerate().map(augment, num_parallel_calls=parallel)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = deterministic
    return ds.with_options(options)


def first_batch(dataset, records):
    """The first batch of a pipeline over `records`; DataError (one line) when it yields none: every file passed the
    header scan but none decodes (damaged image data), or fewer decode than one batch needs."""
    try:
        return next(iter(dataset))
    except StopIteration:
        paths = getattr(records, "paths", None) or getattr(getattr(records, "a", None), "paths", None) or ["?"]
        raise DataError(
            f"no batch could be made from the {len(records)} images of split '{records.split}': their "
            f"headers are valid but their image data does not decode (first: {paths[0]})"
        ) from None


denormalize = images.to_uint8  # [-1, 1] float images (numpy or tensors) -> uint8 numpy in [0, 255]
