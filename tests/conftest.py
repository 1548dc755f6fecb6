"""Shared fixtures. The synthetic CelebA folder is generated once per session (48 cartoon faces at 44x54, the
aspect of the aligned CelebA crop; 38 train / 5 val / 5 test), so no test needs real data."""

import os

import pytest

# The drawn test faces are made for OpenCV's Haar cascades; MTCNN (the default detector when the [faces] extra is
# installed) finds few of them. Tests that exercise MTCNN construct `align.MtcnnDetector` themselves.
os.environ.setdefault("TF_FACEEDIT_DETECTOR", "haar")

from tf_faceedit.config import DataConfig
from tf_faceedit.data.synthetic import make_synthetic_celeba

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
