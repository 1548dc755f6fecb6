"""Dataset augmentation with a trained editing model (SaGAN §4.3: edited faces as extra training data for face
recognisers).

    summary = augment("RUN", data_dir="celeba", out_dir="celeba_aug", attributes=["Eyeglasses"])

Every image of the source dataset (CelebA or CSV format) is edited once per chosen attribute with that attribute
flipped, and once to its own attributes (`include_identity`), at the model's resolution. `out_dir` becomes a
CelebA-format folder:
  images/<stem>_id.jpg, images/<stem>_<Attribute>_<0|1>.jpg   (the value is the edited attribute's new value)
  list_attr_celeba.txt       every attribute of the source file; the edited one changed
  list_eval_partition.txt    each copy keeps its source image's split
  augment.json               the source, the model and the variants
so it trains any method of this library directly (`--data_dir=out_dir`).
"""

import dataclasses
import json
import logging
from pathlib import Path

import cv2
import keras
import numpy as np

from tf_faceedit import images as images_lib
from tf_faceedit.data import celeba
from tf_faceedit.data.records import SPLITS, Records
from tf_faceedit.errors import ConfigError, DataError
from tf_faceedit.images import to_uint8

log = logging.getLogger("tf_faceedit")


def augment(
    model_dir,
    data_dir,
    out_dir,
    attributes=None,
    include_identity=True,
    batch_size=16,
    max_images=None,
    overwrite=False,
    quality=95,
    verbose=1,
    precision="float32",
    engine="auto",
):
    """Writes the augmented copy (see the module docstring). Returns a summary dict. `precision`: the compute dtype
    `tf_faceedit.load` builds the networks with ("float32" or "bfloat16"); `engine`: what runs them (see
    `tf_faceedit.load`)."""
    from tf_faceedit import api

    model = api.load(model_dir, precision=precision, engine=engine)
    if model.task != "edit":
        raise ConfigError(
            f"{model_dir} holds a {model.method} run (task {model.task}); augment needs an editing "
            "method (sagan, attentiongan, fader, icgan)"
        )
    attributes = list(attributes or model.attribute_names)
    unknown = [a for a in attributes if a not in model.attribute_names]
    if unknown:
        raise ConfigError(f"--attributes {', '.join(unknown)}: the model edits only {', '.join(model.attribute_names)}")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise DataError(f"--out_dir {out_dir} is not empty (use --overwrite to replace it)")
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)

    base_cfg = dataclasses.replace(model.config.data, data_dir=str(data_dir), random_flip=False, cache=False)
    names = celeba.read_attribute_table(base_cfg)[1][0]
    missing = [a for a in model.attribute_names if a not in names]
    if missing:
        raise DataError(f"{data_dir} has no attribute column {', '.join(missing)} that the model needs")
    all_cfg = dataclasses.replace(base_cfg, attributes=list(names))
    model_columns = [names.index(a) for a in model.attribute_names]

    filenames, rows, partition = [], [], {}
    written = 0
    for split, split_id in SPLITS.items():
        try:
            records = celeba.load_records(all_cfg, split)
        except DataError as err:
            log.info("augment: skipping split %s (%s)", split, err)
            continue
        if max_images:
            keep = max(0, int(max_images) - written)
            records = Records(records.paths[:keep], records.attributes[:keep], records.attribute_names, split)
        if not len(records):
            continue
        dataset = celeba.build_dataset(
            all_cfg, split, batch_size=batch_size, training=False, repeat=False, drop_remainder=False, records=records
        )
        progress = keras.utils.Progbar(len(records), verbose=verbose, unit_name="image")
        offset = 0
        for batch in dataset:
            images = to_uint8(batch["image"].numpy())
            source = batch["attributes"].numpy()  # all columns, {0, 1}
            stems = [Path(p).stem for p in records.paths[offset : offset + len(images)]]
            offset += len(images)
            variants = [("id", None)] if include_identity else []
            variants += [(a, model.attribute_names.index(a)) for a in attributes]
            for label, index in variants:
                target = source[:, model_columns].copy()
                if index is not None:
                    target[:, index] = 1.0 - target[:, index]
                edited = model.edit(images, target)["image"]
                for stem, image, row, goal in zip(stems, edited, source, target):
                    new_row = row.copy()
                    new_row[model_columns] = goal
                    suffix = "id" if index is None else f"{label}_{int(goal[index] > 0.5)}"
                    name = f"{stem}_{suffix}.jpg"
                    images_lib.write_image(
                        image_dir / name, image, what="--out_dir", params=[int(cv2.IMWRITE_JPEG_QUALITY), int(quality)]
                    )
                    filenames.append(name)
                    rows.append(np.where(new_row > 0.5, 1, -1))
                    partition[name] = split_id
            written += len(images)
            progress.add(len(images))
    if not filenames:
        raise DataError(f"no images found in {data_dir}")
    celeba.write_celeba_attributes(out_dir / celeba.CELEBA_ATTR_FILE, names, filenames, rows)
    celeba.write_partition(out_dir / celeba.PARTITION_FILE, partition)
    summary = {
        "source": str(data_dir),
        "model_dir": str(model_dir),
        "method": model.method,
        "image_size": model.image_size,
        "attributes": attributes,
        "include_identity": include_identity,
        "source_images": written,
        "images": len(filenames),
    }
    (out_dir / "augment.json").write_text(json.dumps(summary, indent=2))
    log.info("augment: wrote %d images from %d source images to %s", len(filenames), written, out_dir)
    return summary
