"""tf_faceedit.eval.photos (`evaluate --photos`): the photo benchmark's report on a folder of generated photos with
a stand-in face detector and recognizer (real detectors find no face in generated images)."""

import json

import cv2
import numpy as np
import pytest

from tests import model_runs
from tests.helpers import MeanColourRecognizer
from tf_faceedit.cli import evaluate
from tf_faceedit.data import align, detectors
from tf_faceedit.data.synthetic import make_synthetic_celeba
from tf_faceedit.errors import ConfigError, DataError
from tf_faceedit.eval import photos

WIDTH, HEIGHT = 96, 112


class _CentreFace:
    """Stand-in detector: one face in the middle of every photo (or none)."""

    def __init__(self, finds=True):
        self.finds = finds

    def __call__(self, image):
        if not self.finds:
            return []
        h, w = image.shape[:2]
        return [
            detectors.Face(
                box=(w * 0.25, h * 0.25, w * 0.5, h * 0.5), eyes=((w * 0.4, h * 0.42), (w * 0.6, h * 0.42)), score=1.0
            )
        ]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, synthetic_celeba):
    root = tmp_path_factory.mktemp("photo_bench")
    folder = make_synthetic_celeba(root / "photos", num_images=5, width=WIDTH, height=HEIGHT, seed=3)
    sagan = model_runs.checkpointed_run("sagan", synthetic_celeba, root / "sagan", attributes=("Eyeglasses",))[0]
    judge = model_runs.checkpointed_run(
        "classifier", synthetic_celeba, root / "judge", attributes=("Eyeglasses", "Smiling")
    )[0]
    return folder, sagan, judge


def test_photo_benchmark_reports_success_identity_and_untouched_pixels(setup, tmp_path):
    folder, sagan, judge = setup
    report = photos.evaluate_photos(
        str(sagan),
        folder,
        classifier=str(judge),
        min_classifier_accuracy=0.0,
        out_dir=tmp_path,
        identity=MeanColourRecognizer(0.05),
        detector=_CentreFace(),
        verbose=0,
    )
    entry = report["attributes"]["Eyeglasses"]
    assert report["num_photos"] == report["num_edited"] == 5 and not report["skipped"]
    assert entry["count 0->1"] + entry["count 1->0"] == 5 and 0.0 <= entry["success"] <= 1.0
    assert entry["unchanged_outside"] == 1.0  # paste-back writes only inside the face square
    assert 0.0 <= entry["colour_shift"] < 1.0
    assert set(entry["identity"]) >= {"distance", "same_person"} and entry["face_lost_after_edit"] == 0
    assert report["seconds_per_edit"] > 0
    figure = cv2.imread(str(tmp_path / "figures" / "photos.png"))
    assert figure.shape == (18 + 5 * HEIGHT, 2 * WIDTH, 3)  # 100 % scale: photo | edit, one row per photo
    assert (
        json.loads((tmp_path / "metrics.json").read_text())["attributes"]["Eyeglasses"]["success"] == entry["success"]
    )
    assert "| Eyeglasses |" in (tmp_path / "metrics.md").read_text()
    # the judge on the unedited photos, per direction with photos in it
    directions = {d for d in ("0->1", "1->0") if entry[f"count {d}"]}
    assert set(entry["no_edit"]) == directions and all(0.0 <= v <= 1.0 for v in entry["no_edit"].values())
    assert "No edit" in (tmp_path / "metrics.md").read_text()


def test_face_square_is_where_paste_back_may_write():
    transform = align.face_transform(((40.0, 47.0), (58.0, 47.0)), 16)
    square = photos.face_square((HEIGHT, WIDTH), transform, 16)
    photo = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    pasted = align.paste_back(photo, np.full((16, 16, 3), 255, np.uint8), transform)
    assert square.any() and not square.all()
    assert not pasted[~square].any()  # nothing written outside the square


def test_no_face_anywhere_and_a_completion_model_are_one_line_errors(setup, synthetic_celeba, tmp_path):
    folder, sagan, _ = setup
    with pytest.raises(DataError, match="no face found in any"):
        photos.evaluate_photos(
            str(sagan), folder, out_dir=tmp_path, identity=False, detector=_CentreFace(False), verbose=0
        )
    completion = model_runs.checkpointed_run("pggan_completion", synthetic_celeba, tmp_path / "pgc")[0]
    with pytest.raises(ConfigError, match="--photos measures editing models"):
        photos.evaluate_photos(str(completion), folder, out_dir=tmp_path, identity=False, verbose=0)
    with pytest.raises(DataError, match="no such folder"):
        photos.evaluate_photos(str(sagan), tmp_path / "nowhere", out_dir=tmp_path, identity=False, verbose=0)


def test_cli_takes_photos_without_data_dir(setup, tmp_path, monkeypatch, capsys):
    folder, sagan, _ = setup
    calls = {}
    monkeypatch.setattr(photos, "evaluate_photos", lambda model, d, **kw: calls.update(kw, model=model, d=d) or {})
    monkeypatch.setattr(photos, "markdown_report", lambda report: "table")
    assert evaluate.main(["--model_dir", str(sagan), "--photos", str(folder), "--identity", "off", "--quiet"]) == 0
    assert calls["d"] == str(folder) and calls["identity"] is False and "table" in capsys.readouterr().out
