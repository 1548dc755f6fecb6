"""Shared fixtures. The synthetic CelebA folder is generated once per session (48 cartoon faces at 44x54, the
aspect of the aligned CelebA crop; 38 train / 5 val / 5 test), so no test needs real data; `photo` is a drawn face in
a larger photo (edit, the zoo); `train_subprocess` starts tiny SaGAN trainings in child processes (crash, signals)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

# The drawn test faces are made for OpenCV's Haar cascades; MTCNN (the default detector when the [faces] extra is
# installed) finds few of them. Tests that exercise MTCNN construct `detectors.MtcnnDetector` themselves.
os.environ.setdefault("TF_FACEEDIT_DETECTOR", "haar")

from tf_faceedit.config import DataConfig
from tf_faceedit.data.synthetic import make_synthetic_celeba

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC_NUM_IMAGES = 48
SYNTHETIC_WIDTH, SYNTHETIC_HEIGHT = 44, 54


@pytest.fixture(scope="session")
def synthetic_celeba(tmp_path_factory):
    """Path of a CelebA-format folder (images/, list_attr_celeba.txt, list_eval_partition.txt). Read-only: tests
    that modify a dataset must make their own copy or folder."""
    return make_synthetic_celeba(
        tmp_path_factory.mktemp("synthetic_celeba"),
        num_images=SYNTHETIC_NUM_IMAGES,
        width=SYNTHETIC_WIDTH,
        height=SYNTHETIC_HEIGHT,
        seed=0,
    )


@pytest.fixture
def synthetic_data_config(synthetic_celeba):
    """A fresh small `DataConfig` on `synthetic_celeba` (16x16 images, no cache); tests may modify it."""
    return DataConfig(
        data_dir=str(synthetic_celeba),
        attributes=["Eyeglasses", "Smiling"],
        image_size=16,
        cache=False,
        shuffle_buffer=64,
    )


@pytest.fixture(scope="session")
def photo(tmp_path_factory):
    """A drawn face the Haar cascade finds (178x218, CelebA's size), padded into a larger grey photo (PNG path)."""
    import numpy as np

    from tf_faceedit.data import detectors
    from tf_faceedit.images import read_image, write_image

    folder = make_synthetic_celeba(tmp_path_factory.mktemp("faces"), num_images=8, width=178, height=218, seed=0)
    detector = detectors.HaarDetector()
    for path in sorted((Path(folder) / "images").iterdir()):
        face = read_image(path)
        if detectors.detect_faces(face, detector):
            canvas = np.full((300, 320, 3), 128, np.uint8)
            canvas[40:258, 70:248] = face
            out = tmp_path_factory.mktemp("photo") / "photo.png"
            write_image(out, canvas)
            return out
    pytest.fail("the cascade found none of the drawn faces")


class TrainSubprocess:
    """Tiny SaGAN trainings (16x16, 4 filters, batch 2, seeded, one scalars.jsonl line per step) in child processes
    started from the checkout with the test environment: `command(...)` is `python -m tf_faceedit.train ...`;
    `popen` / `run` are subprocess's with the checkout as cwd and `env`."""

    root = ROOT

    @property
    def env(self):
        return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}

    def command(self, data_dir, model_dir, steps, checkpoint_every):
        overrides = {
            "data.image_size": 16,
            "data.attributes": "Eyeglasses",
            "data.shuffle_buffer": 16,
            "data.cache": "false",
            "model.g_filters": 4,
            "model.num_residual_blocks": 1,
            "model.d_filters": 4,
            "model.d_max_filters": 8,
            "train.batch_size": 2,
            "train.n_critic": 1,
            "train.steps": steps,
            "train.log_every": 1,
            "train.checkpoint_every": checkpoint_every,
            "train.sample_every": 100000,
            "train.num_samples": 2,
            "train.sample_split": "train",
            "train.verbose": 0,
            "train.strategy": "default",
            "train.seed": 3,
        }
        command = [sys.executable, "-m", "tf_faceedit.train", "--method=sagan"]
        command += [f"--data_dir={data_dir}", f"--model_dir={model_dir}"]
        return command + [f"--set={k}={v}" for k, v in overrides.items()]

    def popen(self, command, **kwargs):
        return subprocess.Popen(command, cwd=ROOT, env=self.env, text=True, **kwargs)

    def run(self, command, **kwargs):
        return subprocess.run(command, cwd=ROOT, env=self.env, text=True, **kwargs)


@pytest.fixture(scope="session")
def train_subprocess():
    return TrainSubprocess()
