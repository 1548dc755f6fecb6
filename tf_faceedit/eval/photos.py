"""The photo benchmark: an editing model on photos larger than it, through the whole photo path.

    report = evaluate_photos("sagan-eyeglasses-64", "celeba-wild-500", classifier="classifier-celeba-64")
    python -m tf_faceedit.evaluate --model sagan-eyeglasses-64 --photos DIR --classifier classifier-celeba-64

DIR is a CelebA-format folder (its images and `list_attr_celeba.txt`; every image is used, whatever its partition
file says). `celeba-wild-500` of the shared data holds 500 unaligned test crops of CelebA's in-the-wild photos: a
benchmark set, never to be trained or tuned on.

Each photo is edited once per model attribute, that attribute flipped from its label, the way a user's photo is
(`tf_faceedit.data.align.edit_photo`: detect, align to the model's S x S, edit, paste only the change back at full
resolution). Of the largest face:

* success: the judge's reading of the edited photo's face, **re-detected and re-aligned** from the edited photo (as
  a person would meet it), per attribute and direction (0->1, 1->0), under the same accuracy gate as `evaluate`.
* identity: the face recognizer's distance between the photo and the edited photo at full resolution, the face box
  found on the photo (`tf_faceedit.eval.identity`; photos where it finds no face are left out and counted).
* outside the face: the share of pixels outside the aligned face square (the only region paste-back may write) that
  are exactly the photo's; it must be 1.
* colour shift in the face: `metrics.colour_shift` inside the face square (a tint the edit spreads over the face,
  0..1 units; a smile's own change scores near 0).
* seconds per photo and edit: the whole photo path (detection, alignment, the model, paste-back).
* `figures/photos.png`: 8 photos before and after each edit, at 100 % scale.

Photos where the detector finds no face are skipped and counted; an edited face the detector no longer finds counts
as a failed edit.
"""

import dataclasses
import json
import logging
import time
from pathlib import Path

import cv2
import keras
import numpy as np

from tf_faceedit import images as image_io
from tf_faceedit import model_source
from tf_faceedit.data import align, detectors
from tf_faceedit.errors import ConfigError, DataError
from tf_faceedit.eval import metrics
from tf_faceedit.eval.report import fmt, no_edit_lines, options_lines
from tf_faceedit.images import to_float

log = logging.getLogger("tf_faceedit")

NUM_FIGURE_PHOTOS = 8


def photo_records(model, photos_dir):
    """(paths, attributes [N, K] of the model's attributes) of every image of the CelebA-format folder."""
    from tf_faceedit import registry

    folder = Path(photos_dir)
    if not folder.is_dir():
        raise DataError(f"--photos {photos_dir}: no such folder")
    cfg = dataclasses.replace(
        model.config.data, data_dir=str(folder), partition_file="", image_dir="", attr_file="", positive_fraction=0.0
    )
    records = registry.get(model.method).trainer_class.load_records(cfg, "all")
    if hasattr(records, "a"):  # unpaired (AttentionGAN): both domains
        return records.a.paths + records.b.paths, np.concatenate([records.a.attributes, records.b.attributes])
    return list(records.paths), np.asarray(records.attributes)


def _largest(faces):
    return int(np.argmax([f.box[2] * f.box[3] for f in faces]))


def _nearest(faces, centre):
    return int(
        np.argmin([np.hypot(f.box[0] + f.box[2] / 2 - centre[0], f.box[1] + f.box[3] / 2 - centre[1]) for f in faces])
    )


def face_square(photo_shape, transform, size):
    """bool [H, W]: the pixels of the photo inside the aligned face square (where paste-back may write)."""
    height, width = photo_shape[:2]
    square = cv2.warpAffine(
        np.ones((size, size), np.float32),
        np.asarray(transform, np.float64),
        (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )
    return square > 0


def _pad_to(image, height, width):
    out = np.full((height, width, 3), 255, np.uint8)
    out[: image.shape[0], : image.shape[1]] = image
    return out


def photo_figure(rows, labels):
    """Photos at 100 % scale: one row per photo (original, then each edit), cells padded white to the largest."""
    height = max(im.shape[0] for row in rows for im in row)
    width = max(im.shape[1] for row in rows for im in row)
    header = np.full((18, width * len(labels), 3), 255, np.uint8)
    for j, label in enumerate(labels):
        cv2.putText(header, label, (j * width + 4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    body = [np.concatenate([_pad_to(im, height, width) for im in row], axis=1) for row in rows]
    return np.concatenate([header] + body, axis=0)


def evaluate_photos(
    model,
    photos_dir,
    classifier=None,
    min_classifier_accuracy=0.8,
    max_images=None,
    out_dir=None,
    identity="auto",
    detector=None,
    verbose=1,
):
    """Runs the photo benchmark (see the module docstring); writes metrics.json, metrics.md and figures/photos.png to
    `out_dir` and returns the report. `model`: a loaded model, a zoo name or a folder; `identity` as in
    `evaluation.evaluate`."""
    from tf_faceedit import api
    from tf_faceedit.eval import evaluation

    if not hasattr(model, "edit"):
        model = api.load(model)
    if model.task != "edit":
        raise ConfigError(f"--photos measures editing models; {model.method} is a {model.task!r} model")
    paths, labels = photo_records(model, photos_dir)
    if max_images:
        paths, labels = paths[: int(max_images)], labels[: int(max_images)]
    if not paths:
        raise DataError(f"--photos {photos_dir}: no labelled images")
    names = list(model.attribute_names)
    judge, judge_accuracy, refused = (None, None, {})
    if classifier:
        judge, judge_accuracy, refused = evaluation.load_judge(classifier, min_classifier_accuracy, names)
    judge_index = {n: i for i, n in enumerate(judge.attribute_names)} if judge is not None else {}
    judge_crop = float(getattr(getattr(judge, "config", None), "data", None).crop_fraction) if judge else 1.0

    def read(image, face):
        """The judge's reading (> 0.5) of `face` in `image`, aligned at the judge's size and crop."""
        crop, _ = align.align_face(image, face.eyes, judge.image_size, judge_crop, face.landmarks)
        return judge.predict(to_float(crop[None]))[0] > 0.5

    meter = evaluation.identity_meter(identity)
    if meter is not None:
        meter.aligned = False
    detector = detector or detectors.load_detector(None)
    acc = evaluation.Accumulator()
    out_dir = Path(out_dir or "eval/photos")
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    figure_rows, skipped, lost = [], [], {n: 0 for n in names}
    seconds, edits = 0.0, 0
    progress = keras.utils.Progbar(len(paths), verbose=verbose, unit_name="photo")
    started = time.perf_counter()
    for path, label in zip(paths, labels):
        try:
            photo = image_io.read_image(path)
            faces = detectors.detect_faces(photo, detector)
        except DataError as err:
            skipped.append({"photo": str(path), "reason": str(err)})
            progress.add(1)
            continue
        if not faces:
            skipped.append({"photo": str(path), "reason": "no face found"})
            progress.add(1)
            continue
        index = _largest(faces)
        box = faces[index].box
        centre = (box[0] + box[2] / 2, box[1] + box[3] / 2)
        reference = meter.reference(photo[None]) if meter is not None else None
        before = read(photo, faces[index]) if judge is not None else None  # the unedited photo's reading
        row = [photo]
        for i, name in enumerate(names):
            target = label.astype(np.float32).copy()
            target[i] = 1.0 - target[i]
            start = time.perf_counter()
            edited, aligned, _ = align.edit_photo(
                photo,
                lambda f, t=target: model.edit(f, np.repeat(t[None], len(f), 0))["image"],
                model.image_size,
                model.crop_fraction,
                detector,
                face_index=index,
                source=str(path),
            )
            seconds += time.perf_counter() - start
            edits += 1
            inside = face_square(photo.shape, aligned[0].transform, model.image_size)
            outside = ~inside
            if outside.any():
                same = np.all(edited == photo, axis=-1)[outside]
                acc.add(f"{name}/unchanged_outside", [same.mean()])
            if inside.any():  # a tint over the face at full resolution, blurred over a tenth of the face's side
                side = float(np.sqrt(inside.sum()))
                shift = metrics.colour_shift(photo[None], edited[None], side / 10.0, inside[None, ..., None])
                acc.add(f"{name}/colour_shift", shift / 255.0)
            if meter is not None:
                evaluation.add_identity(acc, name, meter.distances(reference, edited[None]), label[i : i + 1])
            if judge is not None and name in judge_index and name not in refused:
                again = detectors.detect_faces(edited, detector)
                if again:
                    hit = read(edited, again[_nearest(again, centre)])[judge_index[name]] == (target[i] > 0.5)
                else:
                    lost[name] += 1
                    hit = False
                evaluation.add_success(acc, name, np.array([hit]), label[i : i + 1])
                j = judge_index[name]
                evaluation.add_no_edit(acc, name, before[j : j + 1], target[i : i + 1] > 0.5, label[i : i + 1])
            row.append(edited)
        if len(figure_rows) < NUM_FIGURE_PHOTOS:
            figure_rows.append(row)
        progress.add(1)

    if len(skipped) == len(paths):
        raise DataError(f"--photos {photos_dir}: no face found in any of its {len(paths)} photos")
    per_attribute = {}
    for name in names:
        keys = ("success", "success 0->1", "success 1->0", "unchanged_outside", "colour_shift")
        entry = {k: acc.mean(f"{name}/{k}") for k in keys}
        entry["face_lost_after_edit"] = lost[name]
        entry["no_edit"] = evaluation.no_edit_summary(acc, name) or None
        if meter is not None:
            entry["identity"] = evaluation.identity_summary(acc, name, meter.threshold)
        entry.update(evaluation.success_counts(acc, name, judge, refused, judge_index))
        per_attribute[name] = {k: v for k, v in entry.items() if v is not None}
    report = {
        "kind": "photos",
        "model": getattr(model, "source", None) or model.method,
        "method": model.method,
        "photos_dir": str(photos_dir),
        "num_photos": len(paths),
        "num_edited": len(paths) - len(skipped),
        "skipped": skipped,
        "attributes": per_attribute,
        "seconds_per_edit": seconds / max(edits, 1),
        "seconds": time.perf_counter() - started,
        "detector": type(detector).__name__,
    }
    options = model_source.inference_options(getattr(model, "config", None))
    if options:
        report["inference_options"] = options
    if meter is not None:
        report["identity"] = {
            "recognizer": getattr(meter.recognizer, "name", type(meter.recognizer).__name__),
            "threshold": meter.threshold,
            "faces_missed": meter.missed,
        }
    if judge is not None:
        report["classifier"] = evaluation.judge_report(classifier, min_classifier_accuracy, judge_accuracy, names)
    if figure_rows:
        figure = photo_figure(figure_rows, ["photo"] + [f"{n} flipped" for n in names])
        path = out_dir / "figures" / "photos.png"
        cv2.imwrite(str(path), cv2.cvtColor(figure, cv2.COLOR_RGB2BGR))
        report["figures"] = [str(path)]
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=2, default=float))
    (out_dir / "metrics.md").write_text(markdown_report(report))
    return report


def markdown_report(report):
    """The photo benchmark's table as markdown."""
    lines = [
        f"# Photo benchmark of {report['model']} ({report['method']}) on {report['photos_dir']}",
        "",
        f"{report['num_edited']} of {report['num_photos']} photos with a face found ({report['detector']}); "
        f"{report['seconds_per_edit']:.2f} s per photo and edit (detect, align, edit, paste back)",
        "",
        *options_lines(report),
        "| attribute | success | 0->1 | 1->0 | same person | 0->1 | 1->0 | mean distance | pixels outside the face "
        "unchanged | colour shift in the face | face lost after the edit | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in report["attributes"].items():
        ident = entry.get("identity", {})
        cells = [name] + [fmt(entry.get(k)) for k in ("success", "success 0->1", "success 1->0")]
        cells += [fmt(ident.get(k)) for k in ("same_person", "same_person 0->1", "same_person 1->0", "distance")]
        cells += [fmt(entry.get("unchanged_outside"), 4), fmt(entry.get("colour_shift"), 4)]
        cells.append(str(entry.get("face_lost_after_edit", 0)))
        cells.append(entry.get("success_note", ""))
        lines.append("| " + " | ".join(cells) + " |")
    lines += no_edit_lines(report)
    if report.get("identity"):
        ident = report["identity"]
        lines += [
            "",
            f"Identity: {ident['recognizer']} at full resolution, same person below {ident['threshold']:g} "
            f"({ident['faces_missed']} photos where it found no face are left out)",
        ]
    if report.get("classifier"):
        lines += ["", f"Judge: {report['classifier']['run']} on the re-detected, re-aligned edited face"]
    return "\n".join(lines) + "\n"
