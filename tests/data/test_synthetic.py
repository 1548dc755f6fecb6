import subprocess
import sys

import cv2
import numpy as np
import pytest

from tf_faceedit.data.celeba import read_celeba_attributes, read_partition
from tf_faceedit.data.synthetic import ATTRIBUTE_NAMES, DRAWN_ATTRIBUTES, make_face, make_synthetic_celeba
from tf_faceedit.errors import DataError


def test_writes_files_and_parseable_labels(tmp_path):
    out = make_synthetic_celeba(
        tmp_path / "set", num_images=20, width=40, height=49, seed=1, val_fraction=0.1, test_fraction=0.2
    )
    files = sorted((out / "images").iterdir())
    assert [f.name for f in files] == [f"{i:06d}.jpg" for i in range(1, 21)]
    image = cv2.imread(str(files[0]))
    assert image.shape == (49, 40, 3)

    names, filenames, values = read_celeba_attributes(out / "list_attr_celeba.txt")
    assert names == ATTRIBUTE_NAMES and len(names) == 40
    assert filenames == [f.name for f in files]
    assert values.shape == (20, 40) and set(np.unique(values)) <= {-1, 1}
    partition = read_partition(out / "list_eval_partition.txt")
    assert [partition[f] for f in filenames] == [0] * 14 + [1] * 2 + [2] * 4


def test_header_matches_the_official_order():
    # Official CelebA header (list_attr_celeba.txt, line 2).
    assert ATTRIBUTE_NAMES[0] == "5_o_Clock_Shadow" and ATTRIBUTE_NAMES[-1] == "Young"
    assert ATTRIBUTE_NAMES.index("Eyeglasses") == 15 and ATTRIBUTE_NAMES.index("Male") == 20
    assert ATTRIBUTE_NAMES.index("Smiling") == 31 and len(set(ATTRIBUTE_NAMES)) == 40


def test_drawn_attributes_are_balanced_and_consistent(tmp_path):
    out = make_synthetic_celeba(tmp_path, num_images=120, width=16, height=20, seed=3, image_format="png")
    names, _, values = read_celeba_attributes(out / "list_attr_celeba.txt")
    column = {name: values[:, names.index(name)] > 0 for name in names}
    for name in DRAWN_ATTRIBUTES:
        assert 0.3 < column[name].mean() < 0.7, name
    # Independent draws: Eyeglasses does not follow Male.
    assert abs(np.corrcoef(column["Eyeglasses"], column["Male"])[0, 1]) < 0.3
    hair = np.stack([column[n] for n in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")])
    assert (hair.sum(axis=0) == 1).all()
    assert column["No_Beard"][~column["Male"]].all() and not column["No_Beard"][column["Male"]].all()


def test_deterministic_for_a_seed(tmp_path):
    a = make_synthetic_celeba(tmp_path / "a", num_images=3, width=24, height=30, seed=5, image_format="png")
    b = make_synthetic_celeba(tmp_path / "b", num_images=3, width=24, height=30, seed=5, image_format="png")
    c = make_synthetic_celeba(tmp_path / "c", num_images=3, width=24, height=30, seed=6, image_format="png")
    for name in ("000001.png", "000003.png"):
        np.testing.assert_array_equal(cv2.imread(str(a / "images" / name)), cv2.imread(str(b / "images" / name)))
        assert not np.array_equal(cv2.imread(str(a / "images" / name)), cv2.imread(str(c / "images" / name)))
    assert (a / "list_attr_celeba.txt").read_text() == (b / "list_attr_celeba.txt").read_text()


def _region(width, height, top, bottom):
    """Rows [top, bottom) as fractions of the centred square crop region, middle 60% of the width."""
    side = min(width, height)
    offset = (height - side) / 2
    return slice(int(offset + top * side), int(offset + bottom * side)), slice(int(0.2 * width), int(0.8 * width))


@pytest.mark.parametrize("width,height", [(178, 218), (44, 54)])
def test_eyeglasses_visible_in_eye_region(width, height):
    eyes = _region(width, height, 0.38, 0.54)
    mouth = _region(width, height, 0.6, 0.72)
    for index in range(3):
        with_glasses, _ = make_face(0, index, width, height, attributes={"Eyeglasses": True})
        without, _ = make_face(0, index, width, height, attributes={"Eyeglasses": False})
        diff = np.abs(with_glasses.astype(np.float32) - without.astype(np.float32)).mean(axis=2)
        assert diff[eyes].mean() > 10.0
        # Glasses are dark frames: the eye region gets darker, the mouth does not change.
        assert with_glasses[eyes].mean() < without[eyes].mean() - 5.0
        assert diff[mouth].mean() < 1.0


def test_smiling_and_open_mouth_change_the_mouth_region():
    mouth = _region(178, 218, 0.6, 0.72)
    eyes = _region(178, 218, 0.38, 0.5)
    base, _ = make_face(1, 0, attributes={"Smiling": False, "Mouth_Slightly_Open": False, "Eyeglasses": False})
    for change in ({"Smiling": True}, {"Mouth_Slightly_Open": True}):
        other, attrs = make_face(
            1, 0, attributes={"Smiling": False, "Mouth_Slightly_Open": False, "Eyeglasses": False, **change}
        )
        diff = np.abs(other.astype(np.float32) - base.astype(np.float32)).mean(axis=2)
        assert diff[mouth].mean() > 3 * max(diff[eyes].mean(), 0.5), change


def test_bad_arguments(tmp_path):
    with pytest.raises(DataError, match="num_images"):
        make_synthetic_celeba(tmp_path, num_images=0)
    with pytest.raises(DataError, match="image_format"):
        make_synthetic_celeba(tmp_path, num_images=1, image_format="tiff")


def test_cli_prints_the_path(tmp_path):
    out = tmp_path / "cli"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tf_faceedit.data.synthetic",
            "--out",
            str(out),
            "--num_images",
            "4",
            "--width",
            "20",
            "--height",
            "24",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert len(list((out / "images").iterdir())) == 4
