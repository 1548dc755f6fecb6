"""Evaluation of a trained run: edit success, preservation, reconstruction, completion quality, FID/KID, speed.

    report = evaluate("RUN", data_dir="DIR", split="test", classifier="CLS_RUN")

writes `RUN/eval/<split>/metrics.json` (everything), `metrics.md` (the tables) and `figures/*.png`, and returns the
metrics dict. What is measured depends on the method's task:

* editing methods (sagan, attentiongan, fader, icgan): every image is edited once per attribute with that attribute
  flipped (the AttGAN/STGAN protocol), and once to its own attributes.
  - edit success: share of edits the attribute classifier (`--classifier`, a run of `--method=classifier`) gives the
    target value, per attribute and direction (0->1, 1->0). An attribute on which the classifier's balanced
    validation accuracy ((TPR + TNR) / 2, so a rare attribute cannot pass by always answering "no") is below
    `min_classifier_accuracy` is not scored (the report says why).
  - preservation: PSNR and L1 between input and edit outside the attention mask (methods with attention; the mask is
    the foreground attention: `attention` itself when it has one channel, 1 - the last (background) channel when it
    has several), weighted by 1 - mask; mean attention area per attribute.
  - reconstruction: PSNR/SSIM of the edit to the image's own attributes (for Fader/IcGAN that is encode -> decode),
    as the network draws it: a residual edit (`model.residual_edit`, which returns the input exactly there) is
    switched off for it (`reconstruction.network_only`); the identity reference "reconstruction" likewise.
  - unchanged: with a judge, for each edit, the share of images on which the judge's reading of each other attribute
    (`UNCHANGED_ATTRIBUTES` it predicts, the model's other attributes included) is the same on the edit as on the input;
    and its floor, `unchanged_reference`: the same share for the input re-encoded as JPEG at quality 50, nothing
    edited (a judge near its decision boundary flips on a re-encode: an edit cannot be expected to do better).
  - no_edit: with a judge, per attribute and direction, the share of unedited inputs the judge already reads as the
    edit's target (a judge's error on the inputs): the success an edit that changes nothing would score.
* completion (pggan_completion): the split's images with fixed seeded masks (`data.mask` of the run, seed `seed`):
  PSNR/SSIM/L1 inside the hole and whole-image SSIM for the model and for OpenCV's `cv2.inpaint` (Telea,
  Navier-Stokes) on the same masks; preservation outside the hole of the raw generator output. With a judge,
  attribute control: a fixed hole over the mouth (`MOUTH_BOX`) filled with each attribute flipped, scored by the
  judge per direction, beside how often the judge agrees with the labels on the own-attribute fill.
* distribution distance: FID and KID between the real images and the edits (completions). With
  `inception_weights` the features are InceptionV3's; otherwise the classifier's penultimate features, reported as
  "FID*"/"KID*" (not comparable with published FID). Without either, skipped.
* speed: images per second of the model's forward passes (pre/post-processing included).

PSNR values are in dB over uint8 images, capped at 100 dB (identical images); SSIM over uint8 images (not reported
for images smaller than its 11x11 window).
"""

import dataclasses
import json
import logging
import time
from pathlib import Path

import cv2
import keras
import numpy as np

from tf_faceedit.data import celeba
from tf_faceedit.data.records import Records
from tf_faceedit.errors import ConfigError, DataError, EvaluationError
from tf_faceedit.eval import identity as face_identity
from tf_faceedit.eval import metrics
from tf_faceedit.eval.report import (
    CONTROL_METRICS,
    EDIT_METRICS,
    markdown_report,
    write_completion_figures,
    write_edit_figures,
)
from tf_faceedit.images import foreground_attention, to_float, to_uint8
from tf_faceedit.layers import residual

log = logging.getLogger("tf_faceedit")

PSNR_CAP = 100.0
NUM_FIGURE_IMAGES = 8


# ---------------------------------------------------------------------------------------------------------------
# Inputs


def _records(model, split, data_dir, extra_attributes=()):
    """The split's records with the run's attributes (both domains for unpaired data) followed by
    `extra_attributes` (labels the evaluation needs beyond the model's), and the data config used."""
    from tf_faceedit import registry

    data_cfg = model.config.data
    if data_dir:
        data_cfg = dataclasses.replace(data_cfg, data_dir=str(data_dir))
    extra = [name for name in extra_attributes if name not in data_cfg.attributes]
    if extra:
        data_cfg = dataclasses.replace(data_cfg, attributes=list(data_cfg.attributes) + extra)
    records = registry.get(model.method).trainer_class.load_records(data_cfg, split)
    if hasattr(records, "a"):  # unpaired: both directions, the domains interleaved (so --max_images takes both)
        paths = records.a.paths + records.b.paths
        attributes = np.concatenate([records.a.attributes, records.b.attributes])
        n_a, n_b = len(records.a), len(records.b)
        order = sorted(range(n_a + n_b), key=lambda i: (i / n_a) if i < n_a else ((i - n_a) + 0.5) / n_b)
        records = Records(
            paths=[paths[i] for i in order],
            attributes=attributes[order],
            attribute_names=records.a.attribute_names,
            split=split,
        )
    return data_cfg, records


def _batches(data_cfg, records, batch_size, max_images, seed):
    """Yields (uint8 images [B,S,S,3], attributes [B,K], masks uint8 [B,S,S,1] or None); no flips, no shuffling."""
    n = len(records) if not max_images else min(len(records), int(max_images))
    if n < len(records):
        records = Records(
            paths=records.paths[:n],
            attributes=records.attributes[:n],
            attribute_names=records.attribute_names,
            split=records.split,
        )
    dataset = celeba.build_dataset(
        data_cfg,
        records.split,
        batch_size=batch_size,
        training=False,
        seed=seed,
        repeat=False,
        drop_remainder=False,
        records=records,
    )
    for batch in dataset:
        images = to_uint8(batch["image"].numpy())
        masks = batch["mask"].numpy().astype(np.uint8) if "mask" in batch else None
        yield images, batch["attributes"].numpy(), masks


def load_judge(classifier, min_accuracy, attributes):
    """Loads the classifier run and its balanced validation accuracy (on its own data's val split); returns
    (judge, accuracy, {attribute: reason it is not scored})."""
    from tf_faceedit.eval import classifier as classifier_lib

    judge = classifier_lib.load_classifier(classifier)
    accuracy = classifier_lib.load_or_evaluate_accuracy(classifier, metric="balanced_accuracy")
    refused = {}
    for name in attributes:
        try:
            classifier_lib.check_accuracy(accuracy, name, min_accuracy)
        except EvaluationError as err:  # below the minimum: the reason goes into the report
            refused[name] = str(err)
    return judge, accuracy, refused


def _feature_extractor(inception_weights, judge):
    if inception_weights:
        return metrics.InceptionFeatures(inception_weights)
    if judge is not None:
        return metrics.ClassifierFeatures(judge)
    return None


# ---------------------------------------------------------------------------------------------------------------
# Helpers


def _resize_masks(masks, size):
    if masks.shape[1] == size:
        return masks
    return np.stack([cv2.resize(m, (size, size), interpolation=cv2.INTER_LINEAR)[..., None] for m in masks])


def _psnr(a, b, mask=None):
    return np.minimum(metrics.psnr(a, b, data_range=255.0, mask=mask), PSNR_CAP)


def _ssim(a, b, mask=None):
    """SSIM over uint8 images, or None for images smaller than the SSIM window (e.g. a 4x4 progressive stage)."""
    if min(a.shape[1:3]) < metrics.SSIM_WINDOW:
        return None
    if mask is None:
        return metrics.ssim(a, b, data_range=255.0)
    return metrics.masked_ssim(a, b, mask, data_range=255.0)


def _mean(values):
    """Mean over every image; NaN entries (a masked metric of an image whose mask is empty) are left out."""
    values = np.concatenate([np.ravel(v) for v in values if v is not None]) if values else np.zeros(0)
    values = values[~np.isnan(values)]
    return float(np.mean(values)) if values.size else None


class Accumulator:
    """Collects per-image arrays under keys; `mean(key)` averages them all."""

    def __init__(self):
        self.values = {}

    def add(self, key, value):
        if value is None:
            return
        self.values.setdefault(key, []).append(np.ravel(np.asarray(value, np.float64)))

    def mean(self, key):
        return _mean(self.values.get(key, []))

    def count(self, key):
        return int(sum(len(v) for v in self.values.get(key, [])))


def _distribution(extractor, real_features, fake_features, seed):
    if extractor is None or not real_features:
        return None
    real, fake = np.concatenate(real_features), np.concatenate(fake_features)
    subset = max(2, min(1000, len(real) // 2, len(fake) // 2))
    kid_mean, kid_std = metrics.kid_from_features(real, fake, subsets=10, subset_size=subset, seed=seed)
    star = "" if isinstance(extractor, metrics.InceptionFeatures) else "*"
    return {
        "features": extractor.feature_label,
        "fid_name": f"FID{star}",
        "fid": float(metrics.fid_from_features(real, fake)),
        "kid_name": f"KID{star}",
        "kid_mean": float(kid_mean),
        "kid_std": float(kid_std),
        "num_real": int(len(real)),
        "num_fake": int(len(fake)),
    }


# ---------------------------------------------------------------------------------------------------------------
# Editing methods


def add_success(acc, key, hit, source):
    """Records edit hits under `key/success`, and per direction (`key/success 0->1`, `1->0`) by the source value."""
    acc.add(f"{key}/success", hit)
    for direction, value in (("0->1", 0.0), ("1->0", 1.0)):
        selected = source == value
        if selected.any():
            acc.add(f"{key}/success {direction}", hit[selected])


def add_no_edit(acc, name, reading, target, source):
    """The success of no edit at all: the share of unedited inputs the judge already reads as the edit's target value
    (`reading`, `target`: booleans [N]; per direction by the `source` value). Success is read against it."""
    add_success(acc, f"no_edit/{name}", reading == target, source)


def no_edit_summary(acc, name):
    """{"0->1", "1->0"} of `add_no_edit`'s shares (directions without inputs left out)."""
    out = {d: acc.mean(f"no_edit/{name}/success {d}") for d in ("0->1", "1->0")}
    return {d: v for d, v in out.items() if v is not None}


# The JPEG re-encode reference row (nothing edited) of "unchanged" and of identity: the key both report it under.
JPEG_REFERENCE = f"jpeg{face_identity.JPEG_QUALITY}"

# Attributes whose judged reading an edit of another attribute should leave unchanged (issue 15's Fader check:
# Male, Young, Eyeglasses; its multi-attribute SaGAN check: the model's other attributes), reported for those the
# judge predicts, under every edit but their own.
UNCHANGED_ATTRIBUTES = ("Male", "Young", "Eyeglasses", "Smiling", "Mouth_Slightly_Open", "Blond_Hair")


def add_identity(acc, key, distances, source=None):
    """Records identity distances under `key/identity` (and per direction by the source value, when given)."""
    acc.add(f"{key}/identity", distances)
    if source is not None:
        for direction, value in (("0->1", 0.0), ("1->0", 1.0)):
            selected = source == value
            if selected.any():
                acc.add(f"{key}/identity {direction}", distances[selected])


def success_counts(acc, name, judge, refused, judge_index):
    """{"count 0->1", "count 1->0"} of an attribute's scored edits, and "success_note" when it was not scored."""
    out = {"count 0->1": acc.count(f"{name}/success 0->1"), "count 1->0": acc.count(f"{name}/success 1->0")}
    if judge is None:
        out["success_note"] = "no --classifier given"
    elif name in refused:
        out["success_note"] = refused[name]
    elif name not in judge_index:
        out["success_note"] = f"the classifier does not predict {name}"
    return out


def judge_report(classifier, min_accuracy, judge_accuracy, names):
    """The report's "classifier" block: which judge, its gate and its balanced val accuracy per attribute."""
    return {
        "run": str(classifier),
        "min_accuracy": min_accuracy,
        "mean_accuracy": judge_accuracy.get("mean"),
        "accuracy": {n: judge_accuracy.get(n) for n in names},
    }


def identity_summary(acc, key, threshold):
    entry = {}
    for suffix in ("", " 0->1", " 1->0"):
        values = acc.values.get(f"{key}/identity{suffix}")
        if values:
            s = face_identity.summary(np.concatenate(values), threshold)
            entry[f"distance{suffix}"], entry[f"same_person{suffix}"] = s["distance"], s["same_person"]
    return entry


def _evaluate_edit(model, batches, judge, refused, extractor, seed, progress, meter=None, network=None):
    network = model if network is None else network
    names = list(model.attribute_names)
    judge_index = {name: i for i, name in enumerate(judge.attribute_names)} if judge is not None else {}
    judged = [other for other in UNCHANGED_ATTRIBUTES if other in judge_index]
    others_of = {name: [other for other in judged if other != name] for name in names}
    acc = Accumulator()
    real_features, fake_features, figures, model_seconds, num_images = [], [], {}, 0.0, 0
    any_others = any(others_of.values())
    scored_any = any(name in judge_index and name not in refused for name in names)
    for images, attributes, _ in batches:
        # the judge's reading of the inputs: for "unchanged" and for the success of no edit
        input_reading = judge.predict(to_float(images)) > 0.5 if (any_others or scored_any) else None
        if any_others:  # the floor of "unchanged": the same faces re-encoded, nothing edited
            jpeg_reading = judge.predict(to_float(face_identity.jpeg(images))) > 0.5
            for other in judged:
                j = judge_index[other]
                acc.add(f"unchanged_reference/{JPEG_REFERENCE}/{other}", jpeg_reading[:, j] == input_reading[:, j])
        start = time.perf_counter()
        reconstruction = model.edit(images, attributes)["image"]
        model_seconds += time.perf_counter() - start
        if network is not model:  # the residual edit returns the input here: score what the network draws
            reconstruction = network.edit(images, attributes)["image"]
        faces = meter.reference(images) if meter is not None else None
        if faces is not None:
            for key, distances in meter.reference_distances(faces, images).items():
                add_identity(acc, f"identity_reference/{key}", distances)
            add_identity(acc, "identity_reference/reconstruction", meter.distances(faces, reconstruction))
        acc.add("reconstruction_psnr", _psnr(images, reconstruction))
        acc.add("reconstruction_ssim", _ssim(images, reconstruction))
        if extractor is not None:
            real_features.append(extractor(to_float(images)))
        for i, name in enumerate(names):
            target = attributes.copy()
            target[:, i] = 1.0 - target[:, i]
            start = time.perf_counter()
            out = model.edit(images, target)
            model_seconds += time.perf_counter() - start
            edited = out["image"]
            if "attention" in out:
                attention = np.asarray(out["attention"], np.float32)
                foreground = _resize_masks(foreground_attention(attention), images.shape[1])
                acc.add(f"{name}/attention_area", foreground.mean(axis=(1, 2, 3)))
                acc.add(f"{name}/preservation_psnr", _psnr(images, edited, mask=1.0 - foreground))
                acc.add(f"{name}/preservation_l1", metrics.l1(images, edited, mask=1.0 - foreground) / 255.0)
            else:
                foreground = None
            acc.add(f"{name}/l1_to_input", metrics.l1(images, edited) / 255.0)
            acc.add(f"{name}/colour_shift", metrics.colour_shift(images, edited) / 255.0)
            if faces is not None:
                add_identity(acc, name, meter.distances(faces, edited), attributes[:, i])
            scored = name in judge_index and name not in refused
            reading = judge.predict(to_float(edited)) > 0.5 if (others_of[name] or scored) else None  # once per edit
            for other in others_of[name]:
                j = judge_index[other]
                acc.add(f"{name}/unchanged/{other}", reading[:, j] == input_reading[:, j])
            if scored:
                hit = reading[:, judge_index[name]] == (target[:, i] > 0.5)
                add_success(acc, name, hit, attributes[:, i])
                add_no_edit(acc, name, input_reading[:, judge_index[name]], target[:, i] > 0.5, attributes[:, i])
            if extractor is not None:
                fake_features.append(extractor(to_float(edited)))
            if name not in figures:
                figures[name] = (
                    images[:NUM_FIGURE_IMAGES],
                    edited[:NUM_FIGURE_IMAGES],
                    None if foreground is None else foreground[:NUM_FIGURE_IMAGES],
                )
        num_images += len(images)
        progress.add(len(images))

    per_attribute = {}
    for name in names:
        entry = {key: acc.mean(f"{name}/{key}") for key in EDIT_METRICS}
        if meter is not None:
            entry["identity"] = identity_summary(acc, name, meter.threshold)
        if others_of[name]:
            entry["unchanged"] = {other: acc.mean(f"{name}/unchanged/{other}") for other in others_of[name]}
        entry["no_edit"] = no_edit_summary(acc, name) or None
        entry.update(success_counts(acc, name, judge, refused, judge_index))
        per_attribute[name] = {k: v for k, v in entry.items() if v is not None}
    areas = {
        name: np.concatenate(acc.values[f"{name}/attention_area"])
        for name in names
        if f"{name}/attention_area" in acc.values
    }
    report = {
        "attributes": per_attribute,
        "reconstruction": {
            "psnr": acc.mean("reconstruction_psnr"),
            "ssim": acc.mean("reconstruction_ssim"),
            "network_only": network is not model,
        },
        "distribution": _distribution(extractor, real_features, fake_features, seed),
        "speed": {
            "images_per_second": (num_images * (len(names) + 1)) / max(model_seconds, 1e-9),
            "forward_passes": num_images * (len(names) + 1),
        },
        "num_images": num_images,
    }
    if any_others and num_images:  # the judge read the inputs (and their re-encodes) above
        report["unchanged_reference"] = {
            JPEG_REFERENCE: {other: acc.mean(f"unchanged_reference/{JPEG_REFERENCE}/{other}") for other in judged}
        }
    if meter is not None:
        report["identity"] = {
            "recognizer": getattr(meter.recognizer, "name", type(meter.recognizer).__name__),
            "threshold": meter.threshold,
            "faces_detected": meter.detected,
            "faces_on_fixed_box": meter.fallback,
            "reference": {
                key: identity_summary(acc, f"identity_reference/{key}", meter.threshold)
                for key in (JPEG_REFERENCE, "other_person", "reconstruction")
            },
        }
    return report, figures, areas


# ---------------------------------------------------------------------------------------------------------------
# Completion


# The fixed hole of the attribute-control check: a box over the mouth and chin of an aligned CelebA face (fractions
# of the model's square input; rows, then columns). Smiling and Mouth_Slightly_Open live inside it.
MOUTH_BOX = ((0.62, 0.88), (0.28, 0.72))


def mouth_mask(size, box=MOUTH_BOX):
    """uint8 [size, size, 1] mask: 1 inside `box` ((top, bottom), (left, right) as fractions of the side)."""
    (top, bottom), (left, right) = box
    mask = np.zeros((size, size, 1), np.uint8)
    mask[int(round(top * size)) : int(round(bottom * size)), int(round(left * size)) : int(round(right * size))] = 1
    return mask


# The hole sets every completion is scored on besides the run's own masks: the paper's noise-in-rectangle masks and a
# solid box over each face part (sides 30-45% of the image; data/numpy_masks.FACE_PARTS), each seeded per image.
HOLE_KINDS = ("noise", "eyes", "nose", "mouth")
# The attributes a face-part box hides: with the true attributes given, a completion that draws the part lets the
# judge read them as on the real face; a skin-coloured blob does not.
HIDDEN_ATTRIBUTES = {"eyes": ("Eyeglasses",), "mouth": ("Smiling", "Mouth_Slightly_Open")}
HOLE_METHODS = ("model", "cv2.inpaint (telea)", "cv2.inpaint (ns)")


HOLE_METRICS = ("psnr", "ssim", "l1", "ssim_whole")


def _score_fills(acc, prefix, images, masks, completed_by_model):
    """Adds `HOLE_METRICS` under "<prefix><label>/<metric>" for the model's completion and both `cv2.inpaint`
    methods on the same masks; returns {label: completed uint8 images}."""
    hole = masks.astype(np.float32)
    results = {"model": completed_by_model}
    for method in ("telea", "ns"):
        results[f"cv2.inpaint ({method})"] = metrics.inpaint_baseline(images, masks, method=method)
    for label, completed in results.items():
        acc.add(f"{prefix}{label}/psnr", _psnr(images, completed, mask=hole))
        acc.add(f"{prefix}{label}/ssim", _ssim(images, completed, hole))
        acc.add(f"{prefix}{label}/ssim_whole", _ssim(images, completed))
        acc.add(f"{prefix}{label}/l1", metrics.l1(images, completed, mask=hole) / 255.0)
    return results


def _fills_report(acc, prefix):
    """{label: {metric: mean}} of what `_score_fills` added under `prefix`."""
    return {label: {key: acc.mean(f"{prefix}{label}/{key}") for key in HOLE_METRICS} for label in HOLE_METHODS}


def hole_masks(kind, n, size, mask_cfg, rng):
    """uint8 [n, size, size, 1] masks of one hole set (`HOLE_KINDS`), drawn from `rng`."""
    from tf_faceedit.data import numpy_masks

    if kind == "noise":
        masks = [
            numpy_masks.random_noise_mask(
                size, size, rng, mask_cfg.min_ratio, mask_cfg.max_ratio, mask_cfg.noise_resolution, mask_cfg.threshold
            )
            for _ in range(n)
        ]
    else:
        masks = [
            numpy_masks.face_part_mask(size, rng, kind, mask_cfg.part_min_ratio, mask_cfg.part_max_ratio)
            for _ in range(n)
        ]
    return np.stack(masks).astype(np.uint8)


def _score_holes(model, images, attributes, hidden_labels, mask_cfg, rng, acc, judge, judge_index, figure):
    """Every `HOLE_KINDS` set on one batch: hole PSNR/SSIM/L1 and whole-image SSIM of the model and cv2.inpaint,
    and, with a judge, its reading of the hidden attributes on each completion and on the real face."""
    n, size = len(images), images.shape[1]
    for kind in HOLE_KINDS:
        masks = hole_masks(kind, n, size, mask_cfg, rng)
        completed = model.complete(images, masks, attributes)["completed"]
        results = _score_fills(acc, f"holes/{kind}/", images, masks, completed)
        acc.add(f"holes/{kind}/area", masks.astype(np.float32).mean(axis=(1, 2, 3)))
        hidden = [name for name in HIDDEN_ATTRIBUTES.get(kind, ()) if name in judge_index and name in hidden_labels]
        if judge is not None and hidden:
            readings = {label: judge.predict(to_float(done)) > 0.5 for label, done in results.items()}
            readings["real face"] = judge.predict(to_float(images)) > 0.5
            for name in hidden:
                truth = hidden_labels[name] > 0.5
                acc.add(f"structure/{kind}/{name}/positive", truth)
                for label, reading in readings.items():
                    agree = reading[:, judge_index[name]] == truth
                    acc.add(f"structure/{kind}/{name}/{label}/agreement", agree)
                    acc.add(f"structure/{kind}/{name}/{label}/tpr", np.where(truth, agree, np.nan))
                    acc.add(f"structure/{kind}/{name}/{label}/tnr", np.where(~truth, agree, np.nan))
        if figure is not None and kind not in figure:
            k = NUM_FIGURE_IMAGES
            figure[kind] = [
                (f"{kind} hole", np.where(masks[:k] > 0, 255, images[:k]).astype(np.uint8)),
                ("model", results["model"][:k]),
                ("cv2 NS", results["cv2.inpaint (ns)"][:k]),
            ]


def _mean_or_none(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _gain(model, baseline):
    return None if model is None or baseline is None else model - baseline


def _holes_report(acc):
    report = {}
    for kind in HOLE_KINDS:
        entry = _fills_report(acc, f"holes/{kind}/")
        entry["mean_hole_area"] = acc.mean(f"holes/{kind}/area")
        entry["psnr_gain_over_ns"] = _gain(entry["model"]["psnr"], entry["cv2.inpaint (ns)"]["psnr"])
        report[kind] = entry
    boxes = [k for k in HOLE_KINDS if k != "noise"]
    report["boxes"] = {
        label: {key: _mean_or_none([report[k][label][key] for k in boxes]) for key in ("psnr", "ssim", "ssim_whole")}
        for label in HOLE_METHODS
    }
    report["boxes"]["mean_hole_area"] = _mean_or_none([report[k]["mean_hole_area"] for k in boxes])
    report["boxes"]["psnr_gain_over_ns"] = _gain(
        report["boxes"]["model"]["psnr"], report["boxes"]["cv2.inpaint (ns)"]["psnr"]
    )
    return report


def _structure_report(acc):
    report = {}
    for kind, names in HIDDEN_ATTRIBUTES.items():
        for name in names:
            rows = {}
            for label in (*HOLE_METHODS, "real face"):
                key = f"structure/{kind}/{name}/{label}"
                if not acc.count(f"{key}/agreement"):
                    continue
                tpr, tnr = acc.mean(f"{key}/tpr"), acc.mean(f"{key}/tnr")
                balanced = None if tpr is None or tnr is None else (tpr + tnr) / 2.0
                rows[label] = {"agreement": acc.mean(f"{key}/agreement"), "balanced": balanced}
            if rows:
                rows["positive_rate"] = acc.mean(f"structure/{kind}/{name}/positive")
                report.setdefault(kind, {})[name] = rows
    return report


def _evaluate_completion(
    model, batches, extractor, seed, progress, judge=None, refused=None, hidden_names=(), mask_cfg=None
):
    """Hole metrics of the model and cv2.inpaint on the run's seeded masks; with a judge, attribute control: every
    image's MOUTH_BOX hole completed with each judged attribute flipped, and the judge's reading of the result."""
    refused = refused or {}
    names = list(model.attribute_names)
    judge_index = {name: i for i, name in enumerate(judge.attribute_names)} if judge is not None else {}
    controlled = [name for name in names if name in judge_index and name not in refused]
    acc = Accumulator()
    real_features, fake_features, figure, model_seconds, num_images = [], [], None, 0.0, 0
    control_figure, holes_figure = {}, {}
    k_model = len(names)
    mask_cfg = mask_cfg or model.config.data.mask
    for batch_index, (images, all_attributes, masks) in enumerate(batches):
        if masks is None:
            raise DataError("the run's data.mask.kind is none: completion needs masks (set data.mask.kind)")
        attributes = all_attributes[:, :k_model]
        hidden_labels = {name: all_attributes[:, k_model + i] for i, name in enumerate(hidden_names)}
        hidden_labels.update({name: attributes[:, i] for i, name in enumerate(names)})
        rng = np.random.default_rng([seed, batch_index])
        _score_holes(model, images, attributes, hidden_labels, mask_cfg, rng, acc, judge, judge_index, holes_figure)
        start = time.perf_counter()
        out = model.complete(images, masks, attributes)
        model_seconds += time.perf_counter() - start
        hole = masks.astype(np.float32)
        results = _score_fills(acc, "", images, masks, out["completed"])
        acc.add("raw_preservation_psnr", _psnr(images, out["raw"], mask=1.0 - hole))
        acc.add("hole_area", hole.mean(axis=(1, 2, 3)))
        if extractor is not None:
            real_features.append(extractor(to_float(images)))
            fake_features.append(extractor(to_float(out["completed"])))
        if figure is None:
            k = NUM_FIGURE_IMAGES
            first_images = images
            figure = [("input", images[:k]), ("masked", np.where(masks[:k] > 0, 255, images[:k]).astype(np.uint8))]
            figure += [(label, completed[:k]) for label, completed in results.items()]
        if controlled:
            box = np.broadcast_to(mouth_mask(images.shape[1]), masks.shape).copy()
            own = model.complete(images, box, attributes)["completed"]
            own_reading = judge.predict(to_float(own)) > 0.5
            for name in controlled:
                i, j = names.index(name), judge_index[name]
                acc.add(f"control/{name}/agreement_own", own_reading[:, j] == (attributes[:, i] > 0.5))
                target = attributes.copy()
                target[:, i] = 1.0 - target[:, i]
                flipped = model.complete(images, box, target)["completed"]
                hit = (judge.predict(to_float(flipped))[:, j] > 0.5) == (target[:, i] > 0.5)
                add_success(acc, f"control/{name}", hit, attributes[:, i])
                if name not in control_figure:
                    k = NUM_FIGURE_IMAGES
                    control_figure[name] = [
                        ("input", images[:k]),
                        ("mouth hole", np.where(box[:k] > 0, 255, images[:k]).astype(np.uint8)),
                        ("own attributes", own[:k]),
                        (f"{name} flipped", flipped[:k]),
                    ]
        num_images += len(images)
        progress.add(len(images))
    report = {
        "completion": _fills_report(acc, ""),
        "preservation": {"raw_psnr_outside_hole": acc.mean("raw_preservation_psnr")},
        "mean_hole_area": acc.mean("hole_area"),
        "distribution": _distribution(extractor, real_features, fake_features, seed),
        "speed": {"images_per_second": num_images / max(model_seconds, 1e-9), "forward_passes": num_images},
        "num_images": num_images,
    }
    report["holes"] = _holes_report(acc)
    if judge is not None:
        report["structure"] = _structure_report(acc)
    if holes_figure:
        k = NUM_FIGURE_IMAGES
        control_figure["holes"] = [("input", first_images[:k])] + [
            row for kind in HOLE_KINDS for row in holes_figure.get(kind, [])
        ]
    if controlled:
        report["control"] = {"hole": {"rows": list(MOUTH_BOX[0]), "columns": list(MOUTH_BOX[1])}}
        for name in controlled:
            report["control"][name] = {key: acc.mean(f"control/{name}/{key}") for key in CONTROL_METRICS}
    for name in names:
        if name in refused:
            report.setdefault("control_not_scored", {})[name] = refused[name]
    return report, figure, control_figure


def identity_meter(identity):
    """The `IdentityMeter` that `evaluate(identity=...)` asks for, or None: "auto", "on" / True, "off" / False /
    None, or a recognizer."""
    identity = {"on": True, "off": False}.get(identity, identity) if isinstance(identity, str) else identity
    if identity is False or identity is None:
        return None
    if identity == "auto":
        if not face_identity.available():
            log.info("identity not measured: %s", face_identity.EXTRA)
            return None
        identity = True
    if identity is True:
        return face_identity.IdentityMeter(face_identity.load_recognizer())
    if isinstance(identity, str):
        raise ConfigError(f"--identity must be auto, on or off, got {identity!r}")
    return face_identity.IdentityMeter(identity)


def _is_classifier_run(model_dir):
    from tf_faceedit import registry
    from tf_faceedit.training import run_dir

    try:
        saved = run_dir.saved_config_dict(model_dir)
    except (OSError, ValueError, ConfigError):
        return False
    spec = registry.METHODS.get((saved or {}).get("method", ""))
    return spec is not None and spec.capabilities.task == "classify"


def evaluate_judge(model_dir, data_dir=None, split="test", out_dir=None):
    """A classifier run (the judge): per-attribute accuracy, balanced accuracy ((TPR + TNR) / 2), the majority
    baseline and the positive rate on `split`, written to `out_dir` (default RUN/eval/<split>) as metrics.json and
    metrics.md. The val accuracy the edit evaluation gates on (RUN/eval/classifier_accuracy.json) is not replaced."""
    from tf_faceedit.eval import classifier as classifier_lib

    out_dir = Path(out_dir) if out_dir else Path(model_dir) / "eval" / split
    path = out_dir / "metrics.json"
    classifier_lib.evaluate_classifier(model_dir, data_dir=data_dir, split=split, out_path=path)
    report = json.loads(path.read_text())
    report.update({"model_dir": str(model_dir), "method": "classifier"})
    path.write_text(json.dumps(report, indent=2))
    (out_dir / "metrics.md").write_text(markdown_report(report))
    return report


def evaluate(
    model_dir,
    data_dir=None,
    split="test",
    classifier=None,
    inception_weights=None,
    max_images=None,
    batch_size=16,
    min_classifier_accuracy=0.8,
    seed=0,
    out_dir=None,
    verbose=1,
    mask_kind=None,
    identity="auto",
):
    """Evaluates the run in `model_dir` (see the module docstring). Returns the metrics dict. `mask_kind` replaces
    the run's `data.mask.kind` for the completion masks (e.g. "noise" to compare runs trained on other masks).
    `identity`: "auto" (measure it when `tf_faceedit[identity]` is installed), True (a one-line error when it is
    not), False, or a recognizer object (see `tf_faceedit.eval.identity`)."""
    from tf_faceedit import api, model_source

    if not 0.0 <= min_classifier_accuracy <= 1.0:
        raise ConfigError(f"--min_classifier_accuracy must be in [0, 1], got {min_classifier_accuracy}")
    if _is_classifier_run(model_dir):
        return evaluate_judge(model_dir, data_dir=data_dir, split=split, out_dir=out_dir)
    model = api.load(model_dir)
    hidden = []
    if model.task == "complete" and classifier:  # the labels of what a face-part box hides, for the judge
        hidden = [n for names in HIDDEN_ATTRIBUTES.values() for n in names if n not in model.attribute_names]
    data_cfg, records = _records(model, split, data_dir, hidden)
    if mask_kind:
        data_cfg = dataclasses.replace(data_cfg, mask=dataclasses.replace(data_cfg.mask, kind=mask_kind))
        data_cfg.mask.validate()
    judge, judge_accuracy, refused = (None, None, {})
    if classifier:
        judge, judge_accuracy, refused = load_judge(classifier, min_classifier_accuracy, model.attribute_names)
        for name, reason in refused.items():
            log.warning("edit success of %s not scored: %s", name, reason)
    extractor = _feature_extractor(inception_weights, judge)
    meter = identity_meter(identity) if model.task != "complete" else None
    total = len(records) if not max_images else min(len(records), int(max_images))
    log.info("evaluating %s (%s) on %d images of split '%s'", model_dir, model.method, total, split)
    progress = keras.utils.Progbar(total, verbose=verbose, unit_name="image")
    batches = _batches(data_cfg, records, batch_size, max_images, seed)

    out_dir = Path(out_dir) if out_dir else Path(model_dir) / "eval" / split
    figure_dir = out_dir / "figures"
    figure_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if model.task == "complete":
        report, figure, control_figure = _evaluate_completion(
            model, batches, extractor, seed, progress, judge, refused, hidden, data_cfg.mask
        )
        report["figures"] = write_completion_figures(figure, control_figure, figure_dir)
    else:
        network = model  # the reconstruction's model: the same without a residual edit
        if model.config is not None and residual.is_on(model.config.model):
            network = api.load(model_source.with_options(model_dir, residual_edit=False))
        report, figures, areas = _evaluate_edit(
            model, batches, judge, refused, extractor, seed, progress, meter, network=network
        )
        report["figures"] = write_edit_figures(figures, areas, figure_dir)
    report.update(
        {
            "model_dir": str(model_dir),
            "method": model.method,
            "split": split,
            "data_dir": data_cfg.data_dir,
            "seconds": time.perf_counter() - started,
        }
    )
    options = model_source.inference_options(model.config)
    if options:
        report["inference_options"] = options
    if judge is not None:
        report["classifier"] = judge_report(classifier, min_classifier_accuracy, judge_accuracy, model.attribute_names)
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=2, default=float))
    (out_dir / "metrics.md").write_text(markdown_report(report))
    log.info("wrote %s and %s", out_dir / "metrics.json", out_dir / "metrics.md")
    return report
