"""The installable wheel (issue 18, part 4): build it, install it into a fresh virtualenv outside the checkout, and run
the `tf-faceedit` console script from a folder that is not the checkout.

Slow tier (about 2 minutes on 2 cores: the build, the install and two TensorFlow start-ups):
`python -m pytest -m slow tests/test_wheel.py`. The virtualenv reuses the installed dependencies
(`--system-site-packages`) and pip runs with `--no-index`: nothing is downloaded, and a dependency the wheel declares
but the environment lacks fails the install.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ZOO_MODEL = "sagan-eyeglasses-64"  # tf_faceedit/pretrained/manifest.json
pytestmark = pytest.mark.slow


def _run(args, cwd, timeout=600, env=None):
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """Builds the wheel from a copy of the sources (the build writes build/ and *.egg-info/ next to them)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src)
    shutil.copytree(ROOT / "tf_faceedit", src / "tf_faceedit", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(ROOT / "configs", src / "configs")  # the presets' home, packaged as tf_faceedit/configs/presets
    dist = tmp_path_factory.mktemp("dist")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            dist,
            ".",
        ],
        cwd=src,
    )
    (path,) = dist.glob("tf_faceedit-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel):
    """A virtualenv with the wheel installed; returns (bin folder, environment for subprocesses)."""
    root = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", root], cwd=root)
    bin_dir = root / "bin"
    _run([sys.executable, "-m", "pip", "--python", bin_dir / "python", "install", "--no-index", "-q", wheel], cwd=root)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", TF_CPP_MIN_LOG_LEVEL="2", PIP_DISABLE_PIP_VERSION_CHECK="1"
    )
    return bin_dir, env


def test_the_wheel_holds_the_package_data(wheel):
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    presets = sorted(p.name for p in (ROOT / "configs").glob("*.yaml"))
    assert presets and all(f"tf_faceedit/configs/presets/{name}" in names for name in presets)
    pretrained = ROOT / "tf_faceedit" / "pretrained"
    shipped = (
        [p for p in pretrained.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        if pretrained.is_dir()
        else []
    )
    missing = [p.relative_to(ROOT).as_posix() for p in shipped if p.relative_to(ROOT).as_posix() not in names]
    assert not missing, f"zoo files left out of the wheel (pyproject.toml [tool.setuptools.package-data]): {missing}"
    manifest = json.loads((pretrained / "manifest.json").read_text())
    assert ZOO_MODEL in [entry["name"] for entry in manifest["entries"]]
    assert all(f"tf_faceedit/pretrained/{f}" in names for entry in manifest["entries"] for f in entry["files"])
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "tf-faceedit = tf_faceedit.__main__:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_wheel_trains_a_preset_and_edits_a_photo(venv, tmp_path):
    bin_dir, env = venv
    work = tmp_path / "elsewhere"  # not the checkout: the presets must come from the installed package
    work.mkdir()
    python = bin_dir / "python"
    where = _run([python, "-c", "import tf_faceedit; print(tf_faceedit.__file__)"], cwd=work, env=env).stdout
    assert Path(where.strip()).is_relative_to(bin_dir.parent) and not Path(where.strip()).is_relative_to(ROOT)
    assert _run([bin_dir / "tf-faceedit", "--version"], cwd=work, env=env).stdout.startswith("tf_faceedit ")

    # generated faces (44x54 for training) and a photo the Haar cascade finds a face in (a drawn 178x218 face padded
    # into a larger grey canvas), written by the installed package
    script = textwrap.dedent("""
        import json, sys
        import numpy as np
        from pathlib import Path
        from tf_faceedit.data import detectors
        from tf_faceedit.images import read_image, write_image
        from tf_faceedit.data.synthetic import make_synthetic_celeba
        faces = make_synthetic_celeba("faces", num_images=48, width=44, height=54, seed=0)
        folder = make_synthetic_celeba("big_faces", num_images=8, width=178, height=218, seed=0)
        detector = detectors.HaarDetector()
        for path in sorted((Path(folder) / "images").iterdir()):
            face = read_image(path)
            if detectors.detect_faces(face, detector):
                canvas = np.full((300, 320, 3), 128, np.uint8)
                canvas[40:258, 70:248] = face
                write_image("photo.png", canvas)
                break
        print(json.dumps({"faces": str(faces), "photo": Path("photo.png").is_file()}))
    """)
    made = json.loads(_run([python, "-c", script], cwd=work, env=env).stdout.strip().splitlines()[-1])
    assert made["photo"], "the cascade found none of the drawn faces"

    run_dir = work / "run"
    train = _run(
        [
            bin_dir / "tf-faceedit",
            "train",
            "--method=sagan",
            "--config=sagan_quick",
            f"--data_dir={made['faces']}",
            f"--model_dir={run_dir}",
            "--set",
            "train.steps=2",
            "--set",
            "train.batch_size=4",
            "--set",
            "data.shuffle_buffer=64",
            "--quiet",
        ],
        cwd=work,
        env=env,
    )
    assert "step 2" in train.stdout
    saved = (run_dir / "config.yaml").read_text()
    assert "g_filters: 16" in saved and "n_critic: 3" in saved  # the sagan_quick preset was applied
    assert list((run_dir / "checkpoints").glob("*/state.json"))

    # a zoo model shipped in the wheel (its files are checked against the manifest's sha256 when loaded)
    out = work / "edited.png"
    edit = _run(
        [
            bin_dir / "tf-faceedit",
            "edit",
            f"--model={ZOO_MODEL}",
            "--image=photo.png",
            "--detector_model=haar",
            "--set",
            "Eyeglasses=1",
            f"--out={out}",
            "--quiet",
        ],
        cwd=work,
        env=env,
    )
    assert "1 face(s)" in edit.stdout and out.is_file()

    unknown = subprocess.run([bin_dir / "tf-faceedit", "trian"], cwd=work, env=env, capture_output=True, text=True)
    assert unknown.returncode == 2 and "did you mean: train" in unknown.stderr
