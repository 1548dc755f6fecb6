"""tf_faceedit.eval.identity and evaluate's identity rows: the pair arithmetic with a stand-in recognizer (no extra
needed), the missing-extra error, and dlib's recognizer itself where `tf_faceedit[identity]` is installed."""

import numpy as np
import pytest

from tests.helpers import MeanColourRecognizer
from tf_faceedit.errors import ConfigError, EvaluationError
from tf_faceedit.eval import evaluation, identity
from tf_faceedit.eval.report import markdown_report


def _faces(n=4, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_same_images_are_at_distance_zero_and_a_change_moves_them():
    meter = identity.IdentityMeter(MeanColourRecognizer(0.1))
    faces = _faces()
    reference = meter.reference(faces)
    assert np.all(meter.distances(reference, faces) == 0.0)
    brighter = np.clip(faces.astype(int) + 60, 0, 255).astype(np.uint8)
    assert np.all(meter.distances(reference, brighter) > 0.1)
    s = identity.summary(meter.distances(reference, brighter), meter.threshold)
    assert s["same_person"] == 0.0 and s["count"] == 4


def test_the_inputs_box_is_reused_on_the_edit():
    recognizer = MeanColourRecognizer(0.1)
    meter = identity.IdentityMeter(recognizer)
    faces = _faces(n=1, size=64)
    reference = meter.reference(faces)
    recognizer.boxes.clear()
    recognizer.finds = False  # the edit's own detection must not be asked for
    meter.distances(reference, faces[:, ::-1])
    ((shape, box),) = recognizer.boxes
    assert shape == (identity.MIN_SIDE, identity.MIN_SIDE) and box == (64.0, 64.0, 192.0, 192.0)  # scaled 4x


def test_aligned_crops_fall_back_to_the_fixed_box_and_photos_leave_the_face_out():
    faces = _faces(n=3)
    aligned = identity.IdentityMeter(MeanColourRecognizer(0.1, finds=False), aligned=True)
    assert np.all(np.isfinite(aligned.distances(aligned.reference(faces), faces)))
    assert aligned.fallback == 3 and aligned.detected == 0
    photos = identity.IdentityMeter(MeanColourRecognizer(0.1, finds=False), aligned=False)
    d = photos.distances(photos.reference(faces), faces)
    assert np.all(np.isnan(d)) and photos.missed == 3
    assert identity.summary(d) == {"distance": None, "same_person": None, "count": 0}


def test_reference_rows_jpeg_and_another_person():
    faces = np.stack([np.full((32, 32, 3), v, np.uint8) for v in (20, 120, 220)])
    meter = identity.IdentityMeter(MeanColourRecognizer(0.1))
    rows = meter.reference_distances(meter.reference(faces), faces)
    assert set(rows) == {"jpeg50", "other_person"}
    assert np.all(rows["jpeg50"] < 0.02)  # flat colours survive JPEG
    np.testing.assert_allclose(rows["other_person"], np.sqrt(3) * np.array([100, 100, 200]) / 255, atol=1e-6)


def test_a_missing_extra_is_one_line_naming_it(monkeypatch):
    monkeypatch.setattr(identity, "available", lambda: False)
    with pytest.raises(EvaluationError, match=r"tf_faceedit\[identity\]"):
        identity.load_recognizer()
    for on in (True, "on"):
        with pytest.raises(EvaluationError, match=r"tf_faceedit\[identity\]"):
            evaluation.identity_meter(on)
    assert all(evaluation.identity_meter(value) is None for value in ("auto", "off", False, None))
    with pytest.raises(ConfigError, match="--identity must be auto, on or off, got 'maybe'"):
        evaluation.identity_meter("maybe")


class _Brighten:
    """Stub editor of faces of brightness 60 + 80 A: it brightens to a target of 1 and cannot darken (so the
    reconstruction is exact and only 0 -> 1 edits change the face)."""

    method, task, attribute_names = "stub", "edit", ["A"]

    def edit(self, images, attributes):
        target = (60 + 80 * attributes[:, 0, None, None, None]).astype(np.uint8)
        return {"image": np.maximum(images, target)}


class _Progress:
    def add(self, n):
        pass


def test_evaluate_reports_identity_per_direction_and_the_reference_rows():
    attributes = np.array([[0], [1], [0], [1]], np.float32)
    images = np.broadcast_to(60 + 80 * attributes[:, :, None, None], (4, 16, 16, 3)).astype(np.uint8)
    meter = identity.IdentityMeter(MeanColourRecognizer(0.1))
    report, _, _ = evaluation._evaluate_edit(
        _Brighten(), [(images, attributes, None)], None, {}, None, 0, _Progress(), meter
    )
    entry = report["attributes"]["A"]["identity"]
    # 0 -> 1 brightens (a different "person" for the stand-in), 1 -> 0 returns the input unchanged
    assert entry["same_person 0->1"] == 0.0 and entry["same_person 1->0"] == 1.0 and entry["same_person"] == 0.5
    assert entry["distance 1->0"] == 0.0 and entry["distance 0->1"] == pytest.approx(np.sqrt(3) * 80 / 255)
    ref = report["identity"]["reference"]
    assert ref["reconstruction"]["same_person"] == 1.0 and ref["reconstruction"]["distance"] == 0.0
    assert ref["other_person"]["distance"] == pytest.approx(np.sqrt(3) * 80 / 255)  # each face against the next
    assert report["identity"]["recognizer"] == "mean_colour" and report["identity"]["faces_detected"] == 4
    text = markdown_report({**report, "model_dir": "m", "method": "stub", "split": "test", "classifier": None})
    assert "| A | 0.500 | 0.000 | 1.000 |" in text and "| reference: jpeg50 |" in text


dlib_only = pytest.mark.skipif(not identity.available(), reason="needs tf_faceedit[identity]")


@dlib_only
def test_dlib_recognizer_reads_a_128_number_descriptor():
    meter = identity.IdentityMeter(identity.load_recognizer())
    faces = _faces(n=2, size=64, seed=3)
    reference = meter.reference(faces)
    assert reference[0][1].shape == (128,) and meter.fallback == 2  # noise has no face: the aligned box
    assert np.all(meter.distances(reference, faces) == 0.0)
    assert np.all(meter.distances(reference, faces[::-1]) > 0.0)
