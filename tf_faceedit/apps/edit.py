"""Edit (or complete) the faces of your own photos with a trained model or an export.

    report = edit_photos("RUN", "photo.jpg", "edited.jpg", {"Smiling": 1})   # report.written, report.skipped

Each photo: detect the faces (`detectors.load_detector(detector_model)`: MTCNN when installed, else Haar cascades),
align each to the CelebA framing the model was trained on (`data.image_size`, `data.crop_fraction`), edit it, and
paste the result back with the inverse warp and a feathered blend (`tf_faceedit.data.align.edit_photo`); outside the
faces the photo is unchanged.
Completion models take a `mask` image the size of the photo (nonzero = region to fill).

Attributes: a dict {name: target value}; names are checked against the model's, and values must be finite and
inside the method's `attribute_range` ([0, 1]; Fader [-1, 2]). Attributes not given keep the value the model
predicts for the face when it can (SaGAN's discriminator, IcGAN's attribute encoder), else 0 (logged).

Outputs (`--out`):
  * one photo: `--out NAME.EXT` with EXT one of `images.IMAGE_EXTENSIONS` (the format follows it; another extension
    is an error naming the supported ones), or an existing folder / a name without extension: a folder, where
    `<stem>_edited<ext>` is written.
  * a folder of photos: `--out` is a folder (an image-file name is an error); one `<stem>_edited<ext>` per photo
    (ext: the photo's own when writable, else .png).
  * an alpha channel (PNG, WebP, TIFF input) is copied unchanged to an output that keeps alpha (.png, .webp,
    .tif); a .jpg/.bmp output drops it with a warning. Files are written atomically (no partial file).
Bad photos in a folder: every photo is tried; one that cannot be read, or has no face, is skipped with a warning
and counted, the others are written, and a summary line gives the counts. `python -m tf_faceedit.edit` then exits
1 when any photo was unreadable (0 when the only skips were photos without a face); when no photo could be
written it is an error (exit 2). Flags (attributes, --out, --mask) are all checked before the first photo is read.
"""

import dataclasses
import logging
from pathlib import Path

import numpy as np

from tf_faceedit import images, io_util
from tf_faceedit.data import align, detectors
from tf_faceedit.errors import ConfigError, DataError

log = logging.getLogger("tf_faceedit")


@dataclasses.dataclass
class EditReport:
    """What `edit_photos` did. written: [{"input", "output", "faces"}] per written photo; skipped: [{"input",
    "reason", "kind"}] per photo of a folder that was not written, kind "unreadable" (the file cannot be read or
    decoded) or "no face" (no face found, or --face out of range)."""

    written: list
    skipped: list

    @property
    def unreadable(self):
        return [s for s in self.skipped if s["kind"] == "unreadable"]


def plan_outputs(inputs, image, out):
    """The output path of each input (see the module docstring); ConfigError for an unusable --out."""
    out = Path(out)
    single = Path(image).is_file()
    suffix = out.suffix.lower()
    if single and suffix and not out.is_dir():
        images.check_output_extension(out, "--out")
        io_util.check_output_dir(out.parent, "--out")
        if out.exists() and not out.is_file():
            raise ConfigError(f"--out {out} exists and is not a file")
        return [out]
    if not single and suffix in images.IMAGE_EXTENSIONS and not out.is_dir():
        raise ConfigError(
            f"--out {out} names an image file, but --image {image} is a folder of photos: give a "
            "folder for the edited photos"
        )
    io_util.check_output_dir(out, "--out")
    return [
        out / f"{p.stem}_edited{p.suffix if p.suffix.lower() in images.IMAGE_EXTENSIONS else '.png'}" for p in inputs
    ]


def _read_mask(path, shape):
    mask = images.read_mask(path, "--mask")
    if mask.shape != shape[:2]:
        raise DataError(f"mask {path} is {mask.shape[1]}x{mask.shape[0]} but the photo is {shape[1]}x{shape[0]}")
    return (mask > 0).astype(np.uint8)


def edit_photos(
    model,
    image,
    out,
    attributes=None,
    face=None,
    mask=None,
    detector_model=None,
    feather=0.1,
    precision="float32",
    engine="auto",
):
    """Edits one photo or a folder of photos; see the module docstring.

    Args:
      model: a `FaceEditModel` or the path of a model_dir / export dir.
      image: photo file or folder of photos. out: output file (one photo) or folder.
      attributes: {name: value}. face: index (0-based, left to right) of the one face to edit; None = all.
      mask: mask image for completion models (one photo only).
      precision: when `model` is a path or zoo name, the compute dtype `tf_faceedit.load` builds it with;
        engine: what runs its networks (see `tf_faceedit.load`).
    Returns:
      `EditReport`. A single photo that cannot be edited (unreadable, no face) is an error and nothing is written.
      In a folder such photos are skipped with a warning each and counted; the CLI then exits 1 when any was
      unreadable.
    Raises:
      FaceEditError before anything is written for a bad flag (unknown attribute, a value that is not finite or out
      of the method's range, an unusable --out), and when no photo of a folder could be written.
    """
    from tf_faceedit import api

    attributes = dict(attributes or {})
    inputs = align.list_images(image)
    single = Path(image).is_file()
    if single:
        images.read_header(inputs[0])  # a bad photo is reported before the model is loaded (seconds)
    if not hasattr(model, "edit"):
        model = api.load(model, precision=precision, engine=engine)
    unknown = [name for name in attributes if name not in model.attribute_names]
    if unknown:
        raise ConfigError(
            f"--set {unknown[0]}: the model was not trained on {unknown[0]}; its attributes are "
            f"{', '.join(model.attribute_names)}"
        )
    model.check_attribute_values(attributes, "--set")
    if model.task == "complete" and mask is None:
        raise ConfigError(f"method {model.method} completes faces: give --mask (nonzero = region to fill)")
    if mask is not None and (model.task != "complete" or not single):
        raise ConfigError("--mask applies to completion models and one --image")
    outputs = plan_outputs(inputs, image, out)
    detector = detectors.load_detector(detector_model)

    def edit_fn(faces, masks=None):
        if masks is None:
            return model.edit(faces, attributes)["image"]
        return model.complete(faces, (masks > 0.5).astype(np.uint8), attributes)["completed"]

    report = EditReport(written=[], skipped=[])
    for source, target in zip(inputs, outputs):
        kind = "unreadable"
        try:
            photo, alpha = images.read_image_alpha(source)
            photo_mask = _read_mask(mask, photo.shape) if mask is not None else None
            kind = "no face"
            edited, faces, _ = align.edit_photo(
                photo,
                edit_fn,
                model.image_size,
                model.crop_fraction,
                detector,
                face,
                photo_mask,
                feather=feather,
                source=str(source),
            )
        except DataError as err:
            if single:
                raise
            log.warning("%s: skipped", err)
            report.skipped.append({"input": str(source), "reason": str(err), "kind": kind})
            continue
        images.write_image(target, edited, alpha, what="--out")  # the alpha channel is copied unchanged
        log.info("%s: %d face(s) edited -> %s", source, len(faces), target)
        report.written.append({"input": str(source), "output": str(target), "faces": len(faces)})
    if not report.written:
        unreadable = len(report.unreadable)
        raise DataError(
            f"nothing written: of the {len(inputs)} photo(s) of {image}, {unreadable} could not be read "
            f"and {len(report.skipped) - unreadable} had no face found"
        )
    if report.skipped:
        log.warning(
            "%d of %d photo(s) of %s skipped (%d unreadable, %d without a face); %d written to %s",
            len(report.skipped),
            len(inputs),
            image,
            len(report.unreadable),
            len(report.skipped) - len(report.unreadable),
            len(report.written),
            out,
        )
    return report
