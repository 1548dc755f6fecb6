"""CelebA-format data without TensorFlow: OpenCV decode -> numpy batches (the input pipeline of `--backend=jax`).

`build_dataset` has the arguments of `celeba.build_dataset` and yields the same batches (as numpy dicts):
  "image": float32 [B, S, S, 3] in [-1, 1] RGB; "attributes": float32 [B, K] in {0, 1};
  "mask": float32 [B, S, S, 1] in {0, 1} (1 = hole), only when `DataConfig.mask.kind != "none"`.
`make_dataset(trainer_class, ...)` also handles the two-domain records of AttentionGAN ({"image_a", "image_b"}).

Same steps as the tf.data pipeline: records (`celeba`) and the corrupt-file scan (`records`), TensorFlow-free on import,
decode (JPEG/PNG/BMP/GIF via OpenCV, grayscale -> RGB), centre-crop a square of side round(min(h, w) *
crop_fraction), resize to S x S (area averaging when shrinking, which antialiases like `antialias=True`, bilinear
when enlarging), round to uint8; files that fail to decode are skipped with a logged warning; optional in-memory
cache of the uint8 images (`data.cache`, for the small sets); seeded shuffle each epoch (training); random flips
(training and `random_flip`) and masks drawn per element from (seed, position in the stream). Decoding runs on
`data.num_parallel_calls` worker threads (-1: min(8, CPUs)); the next batch is decoded while the current one trains.
Pixel values can differ from the TF pipeline by the resize kernel; shapes, ranges and statistics are the same.
"""

import concurrent.futures
import logging
import os
import random

import cv2
import numpy as np

from tf_faceedit.data import celeba
from tf_faceedit.data.numpy_masks import make_mask_fn
from tf_faceedit.data.records import drop_corrupt
from tf_faceedit.errors import DataError
from tf_faceedit.images import to_float

logger = logging.getLogger(__name__)


def decode_and_resize(path, image_size, crop_fraction=1.0):
    """Reads an image file -> uint8 RGB [image_size, image_size, 3], or None when it cannot be decoded."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        return None
    height, width = image.shape[:2]
    short = min(height, width)
    side = int(min(max(np.floor(short * crop_fraction + 0.5), 1), short))
    top, left = (height - side) // 2, (width - side) // 2
    image = image[top : top + side, left : left + side]
    interpolation = cv2.INTER_AREA if side > image_size else cv2.INTER_LINEAR
    image = cv2.resize(image, (image_size, image_size), interpolation=interpolation)
    return np.ascontiguousarray(image[..., ::-1])  # BGR -> RGB


def _workers(cfg):
    n = int(cfg.num_parallel_calls)
    return min(8, os.cpu_count() or 1) if n == -1 else max(1, n)


def _stream(cfg, records, batch_size, training, seed, repeat, drop_remainder):
    size, crop = int(cfg.image_size), float(cfg.crop_fraction)
    flip = bool(training and cfg.random_flip)
    mask_fn = make_mask_fn(cfg.mask, size)
    cache = {} if cfg.cache else None
    shuffle_rng = np.random.default_rng(seed)
    failed = set()
    n = len(records)

    def load(i):
        if cache is not None and i in cache:
            return cache[i]
        image = decode_and_resize(records.paths[i], size, crop)
        if image is None:
            if i not in failed:
                failed.add(i)
                logger.warning("skipping %s: it could not be decoded", records.paths[i])
        elif cache is not None:
            cache[i] = image
        return image

    def order():
        while True:
            yield from (shuffle_rng.permutation(n) if training else range(n))
            if not repeat:
                return

    indices = order()
    position = 0  # elements delivered so far: seeds each element's flip and mask
    with concurrent.futures.ThreadPoolExecutor(_workers(cfg)) as pool:

        def submit():
            chunk = [i for _, i in zip(range(batch_size), indices)]
            return chunk, [pool.submit(load, i) for i in chunk]

        pending = submit()
        while pending[0]:
            chunk, futures = pending
            loaded = [(i, f.result()) for i, f in zip(chunk, futures)]
            loaded = [(i, image) for i, image in loaded if image is not None]
            while len(loaded) < len(chunk) and len(failed) < n:  # refill the places of undecodable files
                extra = [i for _, i in zip(range(len(chunk) - len(loaded)), indices)]
                if not extra:
                    break
                loaded += [(i, image) for i, image in zip(extra, pool.map(load, extra)) if image is not None]
            if len(failed) >= n:
                raise DataError(f"no image of split '{records.split}' could be decoded (first: {records.paths[0]})")
            pending = submit()  # decode the next batch while this one is used
            if not loaded or (drop_remainder and len(loaded) < batch_size):
                break
            images, masks = [], []
            for _, image in loaded:
                rng = np.random.default_rng([seed, position])
                position += 1
                if flip and rng.random() < 0.5:
                    image = image[:, ::-1]
                images.append(image)
                if mask_fn is not None:
                    masks.append(mask_fn(rng))
            batch = {
                "image": to_float(np.stack(images)),
                "attributes": records.attributes[[i for i, _ in loaded]].astype(np.float32),
            }
            if mask_fn is not None:
                batch["mask"] = np.stack(masks)
            yield batch


def build_dataset(cfg, split, batch_size, training, seed=0, repeat=None, drop_remainder=True, records=None):
    """The numpy twin of `celeba.build_dataset` (same arguments): a generator of batch dicts."""
    if int(batch_size) < 1:
        raise DataError(f"batch size must be >= 1, got {batch_size}")
    batch_size = int(batch_size)
    repeat = training if repeat is None else repeat
    if records is None:
        records = celeba.load_records(cfg, split)
    if len(records) == 0:
        raise DataError(f"split '{records.split}' has no images")
    if str(records.paths[0]).startswith("tfds:"):
        raise DataError(f"--data_dir={cfg.data_dir}: TFDS input needs the tf.data pipeline (--backend=tensorflow)")
    records = drop_corrupt(records, cfg.max_corrupt_fraction)
    if drop_remainder and not repeat and len(records) < batch_size:
        raise DataError(
            f"split '{records.split}' has {len(records)} images, fewer than the batch size {batch_size}, "
            "so every batch would be dropped (use a smaller batch size, repeat, or drop_remainder=False)"
        )
    seed = random.SystemRandom().randrange(2**31) if seed is None else int(seed)
    return _stream(cfg, records, batch_size, training, seed, repeat, drop_remainder)


def _zip_domains(stream_a, stream_b):
    for a, b in zip(stream_a, stream_b):
        yield {"image_a": a["image"], "image_b": b["image"]}


def make_dataset(trainer_class, data_config, split, records=None, seed=0, **kwargs):
    """The numpy pipeline for a trainer's records (`trainer_class.load_records`): one CelebA-format stream, or two
    independently shuffled domains (records with `.a`/`.b`, as `unpaired.UnpairedRecords`) zipped into
    {"image_a", "image_b"} (seeds `seed` and `seed + 1`, as `unpaired.build_unpaired_dataset`)."""
    if records is None:
        records = trainer_class.load_records(data_config, split)
    if hasattr(records, "a") and hasattr(records, "b"):
        second = None if seed is None else int(seed) + 1
        return _zip_domains(
            build_dataset(data_config, split, records=records.a, seed=seed, **kwargs),
            build_dataset(data_config, split, records=records.b, seed=second, **kwargs),
        )
    return build_dataset(data_config, split, records=records, seed=seed, **kwargs)
