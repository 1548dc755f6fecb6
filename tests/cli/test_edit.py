"""The edit CLI on a photo: detect, align, edit, paste back; and its errors."""

import cv2
import numpy as np
import pytest

from tests import model_runs
from tf_faceedit.cli import edit
from tf_faceedit.images import read_image


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic_celeba):
    root = tmp_path_factory.mktemp("edit_runs")
    return {
        method: model_runs.checkpointed_run(method, synthetic_celeba, root / method)[0]
        for method in ("sagan", "pggan_completion")
    }


def test_edit_a_photo(runs, photo, tmp_path, capsys):
    out = tmp_path / "edited.png"
    assert (
        edit.main(
            [
                "--model_dir",
                str(runs["sagan"]),
                "--image",
                str(photo),
                "--set",
                "Eyeglasses=1",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert "1 face(s)" in capsys.readouterr().out
    before, after = read_image(photo), read_image(out)
    assert after.shape == before.shape
    np.testing.assert_array_equal(after[:20], before[:20])  # far from the face: untouched
    np.testing.assert_array_equal(after[:, :40], before[:, :40])
    assert np.abs(after.astype(int) - before.astype(int))[60:240, 90:230].mean() > 1.0  # the face was edited


def test_edit_precision_and_engine_reach_load(runs, photo, tmp_path, monkeypatch):
    """--precision bfloat16 and --engine reach tf_faceedit.load, and every photo is written close to the float32
    TensorFlow edit."""
    from tf_faceedit import api

    calls = []
    load = api.load

    def spy(path, checkpoint=None, precision="float32", engine="auto"):
        calls.append((precision, engine))
        return load(path, checkpoint, precision, engine)

    monkeypatch.setattr(api, "load", spy)
    outs = {}
    for name, flags in {
        "float32": ["--engine", "tensorflow"],
        "bfloat16": ["--precision", "bfloat16"],
        "tflite": ["--engine", "tflite"],
    }.items():
        outs[name] = tmp_path / f"{name}.png"
        argv = ["--model_dir", str(runs["sagan"]), "--image", str(photo), "--set", "Eyeglasses=1"]
        assert edit.main([*argv, "--out", str(outs[name]), *flags, "--quiet"]) == 0
    assert calls == [("float32", "tensorflow"), ("bfloat16", "auto"), ("float32", "tflite")]
    full, half, lite = (read_image(outs[p]).astype(int) for p in ("float32", "bfloat16", "tflite"))
    assert full.shape == half.shape == lite.shape and np.abs(full - half).mean() < 1.0
    assert np.abs(full - lite).max() <= 1


def test_edit_a_folder_skips_photos_without_faces(runs, photo, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), cv2.imread(str(photo)))
    cv2.imwrite(str(folder / "blank.png"), np.full((100, 100, 3), 128, np.uint8))
    assert (
        edit.main(
            ["--model_dir", str(runs["sagan"]), "--image", str(folder), "--out", str(tmp_path / "out"), "--quiet"]
        )
        == 0
    )
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
    assert (
        edit.main(["--model_dir", str(runs["pggan_completion"]), "--image", str(photo), "--out", str(out), "--quiet"])
        == 2
    )
    assert "give --mask" in capsys.readouterr().err
    assert not out.exists()


def test_complete_a_photo(runs, photo, tmp_path):
    before = read_image(photo)
    mask = np.zeros(before.shape[:2], np.uint8)
    mask[150:190, 120:200] = 255
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    out = tmp_path / "filled.png"
    assert (
        edit.main(
            [
                "--model_dir",
                str(runs["pggan_completion"]),
                "--image",
                str(photo),
                "--mask",
                str(tmp_path / "mask.png"),
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    after = read_image(out)
    np.testing.assert_array_equal(after[:20], before[:20])
    assert np.abs(after.astype(int) - before.astype(int))[150:190, 120:200].mean() > 1.0


def _rgba(photo_path):
    rgb = read_image(photo_path)
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:25], alpha[-25:], alpha[:, :25], alpha[:, -25:] = 0, 0, 0, 0  # a transparent frame
    alpha[25:35] = 100  # and a half-transparent band
    return rgb, alpha


def test_edit_keeps_the_alpha_channel(runs, photo, tmp_path, caplog):
    from tf_faceedit import images

    rgb, alpha = _rgba(photo)
    source = images.write_image(tmp_path / "rgba.png", rgb, alpha)
    out = tmp_path / "edited.png"
    assert (
        edit.main(
            [
                "--model_dir",
                str(runs["sagan"]),
                "--image",
                str(source),
                "--set",
                "Eyeglasses=1",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    edited, edited_alpha = images.read_image_alpha(out)
    np.testing.assert_array_equal(edited_alpha, alpha)  # copied, not made opaque
    np.testing.assert_array_equal(edited[:20], rgb[:20])
    assert np.abs(edited.astype(int) - rgb.astype(int))[60:240, 90:230].mean() > 1.0
    jpeg = tmp_path / "edited.jpg"
    assert edit.main(["--model_dir", str(runs["sagan"]), "--image", str(source), "--out", str(jpeg)]) == 0
    assert "transparency is dropped" in caplog.text and images.read_image_alpha(jpeg)[1] is None


def test_edit_refuses_an_unsupported_output_extension(runs, photo, tmp_path, capsys):
    sagan = ["--model_dir", str(runs["sagan"]), "--quiet"]
    assert edit.main(sagan + ["--image", str(photo), "--out", str(tmp_path / "edited.xyz")]) == 2
    err = capsys.readouterr().err
    assert "'.xyz' is not an image format" in err and ".png" in err and ".jpg" in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), cv2.imread(str(photo)))
    assert edit.main(sagan + ["--image", str(folder), "--out", str(tmp_path / "edited.png")]) == 2
    assert "give a folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # nothing created


@pytest.mark.slow  # a fresh process (~8 s); the in-process folder tests stay
def test_edit_a_folder_with_unreadable_files_subprocess(runs, photo, tmp_path):
    """Every readable photo is written; each bad file is named; exit status 1; no traceback; the JPEG bomb (SOF after
    70 KB of comments declaring 16000x16000) is never decoded: the process stays far below the ~2 GB it used."""
    import os
    import subprocess
    import sys

    from tests import hostile

    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), cv2.imread(str(photo)))
    cv2.imwrite(str(folder / "blank.png"), np.full((100, 100, 3), 128, np.uint8))
    (folder / "bomb.jpg").write_bytes(hostile.jpeg_bomb())
    (folder / "damaged.png").write_bytes(hostile.undecodable_png())
    (folder / "notes.jpg").write_bytes(b"not an image")
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "tf_faceedit.edit",
        "--model_dir",
        str(runs["sagan"]),
        "--image",
        str(folder),
        "--out",
        str(out),
        "--set",
        "Eyeglasses=1",
    ]
    # a fresh parent measures the peak memory of this one child (RUSAGE_CHILDREN of pytest holds every child's)
    wrapper = (
        "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "sys.stdout.write(r.stdout); sys.stderr.write(r.stderr); "
        "print('maxrss_kb', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-c", wrapper, *command], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["a_edited.png"]
    for name in ("bomb.jpg", "damaged.png", "notes.jpg", "blank.png"):
        assert f"{name}: skipped" in result.stdout or name in result.stderr, (name, result.stdout)
    assert "error: 3 photo(s) could not be read" in result.stderr
    assert "16000x16000" in result.stderr
    maxrss_mb = int(result.stdout.split("maxrss_kb")[-1]) / 1024
    assert maxrss_mb < 1500, f"peak memory {maxrss_mb:.0f} MB: was the bomb decoded?"
