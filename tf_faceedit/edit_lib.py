"""Edit (or complete) the faces of your own photos with a trained model or an export.

    results = edit_photos("RUN", "photo.jpg", "edited.jpg", {"Smiling": 1})

Each photo: detect the faces (OpenCV Haar cascades, or YuNet with `detector_model`), align each to the CelebA framing
the model was trained on (`data.image_size`, `data.crop_fraction`), edit it, and paste the result back with the
inverse warp and a feathered blend (`tf_faceedit.data.align.edit_photo`); outside the faces the photo is unchanged.
Completion models take a `mask` image the size of the photo (nonzero = region to fill).

Attributes: a dict {name: target value}; names are checked against the model's. Attributes not given keep the value
the model predicts for the face when it can (SaGAN's discriminator, IcGAN's attribute encoder), else 0 (logged).
"""

import logging
from pathlib import Path

import cv2
import numpy as np

from tf_faceedit.data import align
from tf_faceedit.errors import ConfigError, DataError

log = logging.getLogger("tf_faceedit")


def _outputs(inputs, out, single_input):
    out = Path(out)
    if single_input and out.suffix.lower() in align.IMAGE_EXTENSIONS:
        return [out]
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} must be a folder when editing a folder of photos")
    return [out / f"{p.stem}_edited{p.suffix if p.suffix.lower() in align.IMAGE_EXTENSIONS else '.png'}"
            for p in inputs]


def _read_mask(path, shape):
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise DataError(f"cannot read mask image {path}")
    if mask.shape != shape[:2]:
        raise DataError(f"mask {path} is {mask.shape[1]}x{mask.shape[0]} but the photo is {shape[1]}x{shape[0]}")
    return (mask > 0).astype(np.uint8)


def edit_photos(model, image, out, attributes=None, face=None, mask=None, detector_model=None, feather=0.1):
    """Edits one photo or a folder of photos; see the module docstring.

    Args:
      model: a `FaceEditModel` or the path of a model_dir / export dir.
      image: photo file or folder of photos. out: output file (one photo) or folder.
      attributes: {name: value}. face: index (0-based, left to right) of the one face to edit; None = all.
      mask: mask image for completion models (one photo only).
    Returns:
      list of {"input", "output", "faces"} per written photo. Photos without a face are skipped with a warning in a
      folder; for a single photo that is an error and nothing is written.
    """
    from tf_faceedit import api

    if not hasattr(model, "edit"):
        model = api.load(model)
    attributes = dict(attributes or {})
    unknown = [name for name in attributes if name not in model.attribute_names]
    if unknown:
        raise ConfigError(f"--set {unknown[0]}: the model was not trained on {unknown[0]}; its attributes are "
                          f"{', '.join(model.attribute_names)}")
    inputs = align.list_images(image)
    single = Path(image).is_file()
    if model.task == "complete" and mask is None:
        raise ConfigError(f"method {model.method} completes faces: give --mask (nonzero = region to fill)")
    if mask is not None and (model.task != "complete" or not single):
        raise ConfigError("--mask applies to completion models and one --image")
    detector = align.load_detector(detector_model)
    outputs = _outputs(inputs, out, single)

    def edit_fn(faces, masks=None):
        if masks is None:
            return model.edit(faces, attributes)["image"]
        return model.complete(faces, (masks > 0.5).astype(np.uint8), attributes)["completed"]

    results = []
    for source, target in zip(inputs, outputs):
        photo = align.read_image(source)
        photo_mask = _read_mask(mask, photo.shape) if mask is not None else None
        try:
            edited, faces, _ = align.edit_photo(photo, edit_fn, model.image_size, model.crop_fraction, detector, face,
                                                photo_mask, feather=feather, source=str(source))
        except DataError as err:
            if single:
                raise
            log.warning("%s: skipped", err)
            continue
        align.write_image(target, edited)
        log.info("%s: %d face(s) edited -> %s", source, len(faces), target)
        results.append({"input": str(source), "output": str(target), "faces": len(faces)})
    if not results:
        raise DataError(f"no face found in any photo of {image}; nothing written")
    return results
