"""Unpaired two-domain data (X, Y) for image-to-image translation (AttentionGAN, CycleGAN-style training).

Two layouts (`UnpairedDataConfig.layout`):
  * "attribute": a CelebA-format (or CSV) folder split by one attribute: domain X = the images whose
    `domain_attribute` equals `domain_a_value`, domain Y = the others (e.g. `Smiling` 0 -> 1, `Male` 1 -> 0).
    The official partition file (or `val_fraction`) gives the splits, as for every other method. A TFDS source
    (`data_dir = "tfds:celeb_a"`) is split the same way, on TFDS's official splits.
  * "folders": CycleGAN-style `trainA/`, `trainB/`, `testA/`, `testB/` (and optionally `valA/`, `valB/`; the val split
    falls back to test). No attribute file is needed; `domain_attribute` only names the Y domain (e.g. "anime").
  * "auto" (default): "folders" when `data_dir/trainA` exists, else "attribute".

`build_unpaired_dataset` yields dicts of batches:
  "image_a": float32 [B, S, S, 3] in [-1, 1], images of domain X;
  "image_b": float32 [B, S, S, 3] in [-1, 1], images of domain Y.
The two streams are shuffled independently (seeds `seed` and `seed + 1`), so pairs are random, as the methods assume.
Decoding, cropping, resizing, flips and caching are those of `celeba.build_dataset`.

The model's single condition attribute is the domain: `attributes = [domain_attribute]`, value `1 - domain_a_value`
meaning "translate to Y" and `domain_a_value` meaning "translate to X".
"""

import dataclasses
from pathlib import Path

import numpy as np

from tf_faceedit.backend.lazy_tf import tf  # TensorFlow is imported on first use (the JAX path runs without it)
from tf_faceedit.config import DataConfig, check, check_choice
from tf_faceedit.data import celeba, tfds_source
from tf_faceedit.data.records import Records
from tf_faceedit.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


@dataclasses.dataclass
class UnpairedDataConfig(DataConfig):
    """`DataConfig` plus the domain split (see the module docstring).

    layout: "auto", "attribute" or "folders".
    domain_attribute: attribute that separates the domains (attribute layout) / name of domain Y (folders layout).
      It is also the model's one condition attribute: `attributes` is always `[domain_attribute]`.
    domain_a_value: value of `domain_attribute` in domain X (0 or 1).
    """

    layout: str = "auto"
    domain_attribute: str = "Smiling"
    domain_a_value: int = 0

    def __post_init__(self):
        self.attributes = [self.domain_attribute]

    def validate(self, prefix="data"):
        check(
            bool(self.domain_attribute), f"{prefix}.domain_attribute", "must name the attribute that splits the domains"
        )
        check_choice(self.layout, f"{prefix}.layout", ["auto", "attribute", "folders"])
        check_choice(self.domain_a_value, f"{prefix}.domain_a_value", [0, 1])
        self.attributes = [self.domain_attribute]
        super().validate(prefix)
        check(self.mask.kind == "none", f"{prefix}.mask.kind", "must be none for unpaired translation")


@dataclasses.dataclass
class UnpairedRecords:
    """The two domains' `Records` of one split."""

    a: Records
    b: Records
    split: str

    def __len__(self):
        return min(len(self.a), len(self.b))

    def describe(self):
        return f"{len(self.a)} X + {len(self.b)} Y images"


def resolve_layout(cfg):
    if cfg.layout != "auto":
        return cfg.layout
    return "folders" if (Path(cfg.data_dir).expanduser() / "trainA").is_dir() else "attribute"


def _folder_records(cfg, split, suffix, value):
    data_dir = Path(cfg.data_dir).expanduser()
    names = {"train": ["train"], "val": ["val", "test"], "test": ["test"], "all": ["train", "val", "test"]}[split]
    paths = []
    for name in names:
        folder = data_dir / f"{name}{suffix}"
        if folder.is_dir():
            paths.extend(sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
            if split == "val":
                break
    if not paths:
        wanted = " or ".join(f"{data_dir / (n + suffix)}/" for n in names)
        raise DataError(f"no images for split '{split}' of domain {suffix}: looked in {wanted}")
    attributes = np.full((len(paths), 1), float(value), dtype=np.float32)
    return Records(paths=paths, attributes=attributes, attribute_names=list(cfg.attributes), split=split)


def load_unpaired_records(cfg, split):
    """Returns the `UnpairedRecords` of `split`; DataError when a domain is empty or a folder is missing."""
    if not cfg.data_dir:
        raise DataError("data folder not given (set data.data_dir or pass --data_dir=DIR)")
    data_dir = Path(cfg.data_dir).expanduser()
    from_tfds = tfds_source.is_tfds(cfg.data_dir)  # tfds:NAME[:DIR]: the attribute layout on TFDS's splits
    if not from_tfds and not data_dir.is_dir():
        raise DataError(f"data folder not found: {data_dir} (data.data_dir)")
    a_value, b_value = cfg.domain_a_value, 1 - cfg.domain_a_value
    if from_tfds and cfg.layout == "folders":
        raise DataError(f"data.layout=folders needs trainA/ and trainB/ folders, not the TFDS dataset {cfg.data_dir}")
    if not from_tfds and resolve_layout(cfg) == "folders":
        return UnpairedRecords(
            _folder_records(cfg, split, "A", a_value), _folder_records(cfg, split, "B", b_value), split
        )
    records = celeba.load_records(cfg, split)
    in_a = records.attributes[:, 0] == a_value
    parts = []
    for keep, value in ((in_a, a_value), (~in_a, b_value)):
        index = np.flatnonzero(keep)
        if not len(index):
            raise DataError(
                f"split '{split}' has no image with {cfg.domain_attribute}={value}: domain "
                f"{'X' if value == a_value else 'Y'} is empty (data.domain_attribute)"
            )
        parts.append(
            Records(
                paths=[records.paths[i] for i in index],
                attributes=records.attributes[index],
                attribute_names=records.attribute_names,
                split=split,
            )
        )
    return UnpairedRecords(parts[0], parts[1], split)


def build_unpaired_dataset(cfg, split, batch_size, training, seed=0, repeat=None, drop_remainder=True, records=None):
    """The zipped two-domain pipeline: {"image_a", "image_b"} batches (arguments as `celeba.build_dataset`)."""
    if records is None:
        records = load_unpaired_records(cfg, split)
    second_seed = None if seed is None else int(seed) + 1
    ds_a = celeba.build_dataset(cfg, split, batch_size, training, seed, repeat, drop_remainder, records=records.a)
    ds_b = celeba.build_dataset(
        cfg, split, batch_size, training, second_seed, repeat, drop_remainder, records=records.b
    )
    return tf.data.Dataset.zip(ds_a, ds_b).map(lambda a, b: {"image_a": a["image"], "image_b": b["image"]})
