"""The records of a face dataset, shared by every source (CelebA/CSV folders in `celeba`, TFDS in `tfds_source`):
`Records` (image paths or TFDS keys, {0, 1} attributes), the split names (`SPLITS`) and the cheap scan that drops
files that are not readable images (`drop_corrupt`, see `celeba`'s module docstring).
"""

import concurrent.futures
import dataclasses
import logging

import numpy as np

from tf_faceedit import images
from tf_faceedit.errors import DataError

logger = logging.getLogger(__name__)

SPLITS = {"train": 0, "val": 1, "test": 2}

# The image formats tf.io.decode_image reads (`images.parse_header` names).
_FORMATS = ("jpeg", "png", "gif", "bmp")


@dataclasses.dataclass
class Records:
    """The images of one split and their selected attributes.

    paths: full image paths; attributes: float32 [N, K] in {0, 1}; attribute_names: the K names, in column order;
    split: "train", "val", "test" or "all".
    """

    paths: list[str]
    attributes: np.ndarray
    attribute_names: list[str]
    split: str

    def __len__(self):
        return len(self.paths)


# The size guard and the header parser are `tf_faceedit.images` (one for every reader of images).
MAX_IMAGE_PIXELS = images.MAX_IMAGE_PIXELS


def _check_file(path):
    """Returns True when the file is a JPEG/PNG/GIF/BMP (what tf.io.decode_image reads) whose header parses
    (`images.parse_header`: the real header, not a fixed prefix) and declares at most MAX_IMAGE_PIXELS."""
    return images.check_file(path, MAX_IMAGE_PIXELS, formats=_FORMATS)


def _scan_images(paths):
    """Returns a boolean array: which files look like readable images (threaded; I/O bound)."""

    def check_chunk(chunk):
        return [_check_file(p) for p in chunk]

    chunk_size = 4096
    chunks = [paths[i : i + chunk_size] for i in range(0, len(paths), chunk_size)]
    if len(chunks) <= 1:
        return np.array(check_chunk(paths), dtype=bool)
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(chunks))) as pool:
        return np.array([ok for chunk in pool.map(check_chunk, chunks) for ok in chunk], dtype=bool)


def drop_corrupt(records, max_corrupt_fraction):
    """Returns `records` without empty or non-image files; raises DataError when more than the allowed share is bad."""
    ok = _scan_images(records.paths)
    bad = int((~ok).sum())
    if not bad:
        return records
    first = records.paths[int(np.argmin(ok))]
    if bad / len(ok) > max_corrupt_fraction:
        raise DataError(
            f"{bad} of {len(ok)} images of split '{records.split}' are empty, not JPEG/PNG/GIF/BMP or "
            f"over MAX_IMAGE_PIXELS (first: {first}); above "
            f"data.max_corrupt_fraction={max_corrupt_fraction}"
        )
    logger.warning(
        "skipping %d of %d images of split '%s' that are empty, not JPEG/PNG/GIF/BMP or too large (first: %s)",
        bad,
        len(ok),
        records.split,
        first,
    )
    keep = np.flatnonzero(ok)
    return Records(
        paths=[records.paths[i] for i in keep],
        attributes=records.attributes[keep],
        attribute_names=records.attribute_names,
        split=records.split,
    )
