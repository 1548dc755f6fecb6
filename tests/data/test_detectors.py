"""Tests of tf_faceedit.data.detectors: the Haar, YuNet and MTCNN detectors, the default detector and its errors.

Everything runs on generated images; the real-photo detection check is marked slow and needs
/work/shared/data/celeba-100-178x218 (skipped when absent)."""

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import photo_background
from tf_faceedit.data import align, detectors
from tf_faceedit.data.synthetic import make_synthetic_celeba
from tf_faceedit.errors import DataError
from tf_faceedit.images import read_image

REAL_CELEBA = Path(os.environ.get("TF_FACEEDIT_CELEBA_178", "/work/shared/data/celeba-100-178x218"))

needs_mtcnn = pytest.mark.skipif(not detectors.mtcnn_available(), reason="mtcnn is not installed (the [faces] extra)")


def test_dnn_detector_errors(tmp_path):
    with pytest.raises(DataError, match="yunet.onnx does not exist"):
        detectors.DnnDetector(tmp_path / "yunet.onnx")
    (tmp_path / "garbage.onnx").write_bytes(b"\x00not an onnx model")
    with pytest.raises(DataError, match="cannot load face detector model .*garbage.onnx"):
        detectors.load_detector(tmp_path / "garbage.onnx")
    assert isinstance(detectors.load_detector("haar"), detectors.HaarDetector)


def test_missing_mtcnn_falls_back_to_haar_with_one_message(monkeypatch, caplog):
    monkeypatch.delenv(detectors.DETECTOR_ENV, raising=False)
    monkeypatch.setattr(detectors, "mtcnn_available", lambda: False)
    monkeypatch.setattr(detectors, "_warned_missing_mtcnn", False)
    with caplog.at_level("WARNING", logger="tf_faceedit"):
        first, second = detectors.load_detector(None), detectors.load_detector("")
    assert isinstance(first, detectors.HaarDetector) and isinstance(second, detectors.HaarDetector)
    messages = [r.getMessage() for r in caplog.records if "mtcnn" in r.getMessage()]
    assert messages == [detectors.MTCNN_MISSING_MESSAGE]  # once per process
    assert "pip install 'tf_faceedit[faces]'" in messages[0] and "\n" not in messages[0]
    with pytest.raises(DataError, match=r"--detector_model=mtcnn needs the mtcnn package: pip install"):
        detectors.load_detector("mtcnn")


def test_detector_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(detectors.DETECTOR_ENV, "haar")
    assert isinstance(detectors.load_detector(None), detectors.HaarDetector)
    monkeypatch.setenv(detectors.DETECTOR_ENV, str(tmp_path / "nowhere.onnx"))
    with pytest.raises(DataError, match="nowhere.onnx does not exist"):
        detectors.load_detector(None)


@needs_mtcnn
def test_mtcnn_network_runs_compiled_and_finds_nothing_in_faceless_images():
    """The real MTCNN (its bundled weights, traced once) on generated images: no face in a flat, a noisy or a tiny
    image, and the same boxes as mtcnn's own eager call on a drawn face it finds."""
    import mtcnn

    detector = detectors.MtcnnDetector()
    assert detector(np.full((120, 160, 3), 128, np.uint8)) == []
    assert detector(photo_background(240, 320, seed=6, smooth=False)) == []
    assert detector(np.zeros((8, 8, 3), np.uint8)) == []
    from tf_faceedit.data.synthetic import make_face

    bgr, _ = make_face(0, 1)
    face = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    ours = detectors.MtcnnDetector(min_confidence=0.0)(face)
    theirs = mtcnn.MTCNN().detect_faces(face, output_type="numpy", box_format="xyxy")
    assert len(ours) == len(theirs) >= 1
    for mine, row in zip(sorted(ours, key=lambda f: -f.score), theirs[np.argsort(-theirs[:, 5])]):
        assert mine.score == pytest.approx(row[5], abs=1e-4)
        np.testing.assert_allclose(np.array(mine.landmarks)[:, 0], row[6:11], atol=1e-2)


# ---------------------------------------------------------------------------------------------------- detection


def _rotate_padded(image, degrees, pad=60):
    """Pads `image` and rotates it counter-clockwise by `degrees`; returns (photo, 2x3 image -> photo)."""
    canvas = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(90, 110, 130))
    height, width = canvas.shape[:2]
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), degrees, 1.0)
    rotated = cv2.warpAffine(
        canvas, matrix, (width, height), borderMode=cv2.BORDER_CONSTANT, borderValue=(90, 110, 130)
    )
    to_photo = matrix.copy()
    to_photo[:, 2] += matrix[:, :2] @ [pad, pad]
    return rotated, to_photo


@pytest.fixture(scope="module")
def cartoon_faces(tmp_path_factory):
    """8 synthetic cartoon faces at the aligned CelebA size (the Haar cascade finds most of them)."""
    folder = make_synthetic_celeba(
        tmp_path_factory.mktemp("cartoon_faces"), num_images=8, width=178, height=218, seed=0
    )
    return [read_image(p) for p in sorted((Path(folder) / "images").iterdir())]


def test_haar_detects_drawn_faces_upright_and_rolled(cartoon_faces):
    detector = detectors.HaarDetector()
    found = 0
    for image in cartoon_faces:
        faces = detectors.detect_faces(image, detector)
        if not faces:
            continue
        found += 1
        face = max(faces, key=lambda f: f.score)
        (lx, ly), (rx, ry) = face.eyes
        # The cartoon's eyes are drawn centred, at about 45% of the 178-px square below row 20 (rows ~98-104).
        assert 60 < lx < 89 < rx < 120 and 85 < ly < 115 and 85 < ry < 115
    assert found >= 5
    rolled = 0
    for image in cartoon_faces[5:8]:  # faces whose eyes the cascade finds
        for degrees in (20.0, -20.0):
            photo, _ = _rotate_padded(image, degrees)
            faces = [f for f in detectors.detect_faces(photo, detector) if f.eyes_detected]
            # Rotating the photo counter-clockwise by d rolls the face by -d.
            rolled += any(abs(f.roll_degrees + degrees) < 5.0 for f in faces)
    assert rolled >= 4


@pytest.mark.slow
@pytest.mark.skipif(not (REAL_CELEBA / "images").is_dir(), reason=f"{REAL_CELEBA} not available")
def test_haar_on_real_celeba_photos_plain_and_rotated():
    """Real aligned CelebA faces, plain and padded + rotated by 20 degrees: most are found and their eyes land
    within a few pixels of the measured canonical positions."""
    files = sorted((REAL_CELEBA / "images").iterdir())[:30]
    detector = detectors.HaarDetector()
    for degrees in (0.0, 20.0):
        errors = []
        for path in files:
            image = read_image(path)
            photo, to_photo = _rotate_padded(image, degrees) if degrees else (image, np.eye(2, 3))
            truth = align.apply_transform(to_photo, [align.CELEBA_LEFT_EYE, align.CELEBA_RIGHT_EYE])
            faces = detectors.detect_faces(photo, detector)
            if faces:
                face = min(faces, key=lambda f: np.abs(np.array(f.eyes) - truth).sum())
                errors.append(np.hypot(*(np.array(face.eyes) - truth).T).max())
        assert len(errors) >= 24, f"found faces in {len(errors)} of 30 photos rotated by {degrees}"
        assert np.median(errors) < 6.0
