"""The edit CLI on a photo: detect, align, edit, paste back; and its errors."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests import model_runs
from tf_faceedit import edit
from tf_faceedit.data import align
from tf_faceedit.data.synthetic import make_synthetic_celeba


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic_celeba):
    root = tmp_path_factory.mktemp("edit_runs")
    return {method: model_runs.checkpointed_run(method, synthetic_celeba, root / method)[0]
            for method in ("sagan", "pggan_completion")}


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A drawn face the Haar cascade finds, padded into a larger grey photo."""
    folder = make_synthetic_celeba(tmp_path_factory.mktemp("faces"), num_images=8, width=178, height=218, seed=0)
    detector = align.HaarDetector()
    for path in sorted((Path(folder) / "images").iterdir()):
        face = align.read_image(path)
        if align.detect_faces(face, detector):
            canvas = np.full((300, 320, 3), 128, np.uint8)
            canvas[40:258, 70:248] = face
            out = tmp_path_factory.mktemp("photo") / "photo.png"
            align.write_image(out, canvas)
            return out
    pytest.fail("the cascade found none of the drawn faces")


def test_edit_a_photo(runs, photo, tmp_path, capsys):
    out = tmp_path / "edited.png"
    assert edit.main(["--model_dir", str(runs["sagan"]), "--image", str(photo), "--set", "Eyeglasses=1",
                      "--out", str(out), "--quiet"]) == 0
    assert "1 face(s)" in capsys.readouterr().out
    before, after = align.read_image(photo), align.read_image(out)
    assert after.shape == before.shape
    np.testing.assert_array_equal(after[:20], before[:20])  # far from the face: untouched
    np.testing.assert_array_equal(after[:, :40], before[:, :40])
    assert np.abs(after.astype(int) - before.astype(int))[60:240, 90:230].mean() > 1.0  # the face was edited


def test_edit_a_folder_skips_photos_without_faces(runs, photo, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), cv2.imread(str(photo)))
    cv2.imwrite(str(folder / "blank.png"), np.full((100, 100, 3), 128, np.uint8))
    assert edit.main(["--model_dir", str(runs["sagan"]), "--image", str(folder), "--out", str(tmp_path / "out"),
                      "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_edited.png"]


def test_edit_errors(runs, photo, tmp_path, capsys):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 120, 3), 128, np.uint8))
    out = tmp_path / "never.png"
    sagan = ["--model_dir", str(runs["sagan"]), "--quiet"]
    assert edit.main(sagan + ["--image", str(blank), "--out", str(out)]) == 2
    assert "no face found in" in capsys.readouterr().err and not out.exists()
    assert edit.main(sagan + ["--image", str(photo), "--out", str(out), "--set", "Smiling=1"]) == 2
    assert "not trained on Smiling; its attributes are Eyeglasses" in capsys.readouterr().err
    assert edit.main(sagan + ["--image", str(photo), "--out", str(out), "--set", "Eyeglasses=yes"]) == 2
    assert "ATTRIBUTE=NUMBER" in capsys.readouterr().err
    assert edit.main(sagan + ["--image", str(tmp_path / "missing.jpg"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert edit.main(["--model_dir", str(runs["pggan_completion"]), "--image", str(photo), "--out", str(out),
                      "--quiet"]) == 2
    assert "give --mask" in capsys.readouterr().err
    assert not out.exists()


def test_complete_a_photo(runs, photo, tmp_path):
    before = align.read_image(photo)
    mask = np.zeros(before.shape[:2], np.uint8)
    mask[150:190, 120:200] = 255
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    out = tmp_path / "filled.png"
    assert edit.main(["--model_dir", str(runs["pggan_completion"]), "--image", str(photo), "--mask",
                      str(tmp_path / "mask.png"), "--out", str(out), "--quiet"]) == 0
    after = align.read_image(out)
    np.testing.assert_array_equal(after[:20], before[:20])
    assert np.abs(after.astype(int) - before.astype(int))[150:190, 120:200].mean() > 1.0
