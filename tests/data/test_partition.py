"""The held-out protocol: `python -m tf_faceedit.data.partition`."""

import subprocess
import sys

import pytest

from tf_faceedit.data import celeba, partition
from tf_faceedit.errors import FaceEditError


def _names(n):
    return [f"{i:06d}.jpg" for i in range(1, n + 1)]


def test_ordered_partition_puts_the_last_images_in_test():
    split = partition.make_partition(list(reversed(_names(20))), n_val=3, n_test=5)
    assert list(split) == _names(20)  # written in name order
    assert [split[f"{i:06d}.jpg"] for i in (1, 12, 13, 15, 16, 20)] == [0, 0, 1, 1, 2, 2]
    assert sum(v == 2 for v in split.values()) == 5 and sum(v == 1 for v in split.values()) == 3


def test_seeded_partition_is_reproducible_and_differs_by_seed():
    a = partition.make_partition(_names(50), 5, 10, scheme="seeded", seed=1)
    assert a == partition.make_partition(_names(50), 5, 10, scheme="seeded", seed=1)
    assert a != partition.make_partition(_names(50), 5, 10, scheme="seeded", seed=2)
    assert sorted(a.values()).count(2) == 10


def test_impossible_counts_are_one_line_errors():
    with pytest.raises(FaceEditError, match="leave no training image"):
        partition.make_partition(_names(10), 5, 5)


def test_cli_writes_a_partition_the_data_layer_reads(synthetic_celeba, tmp_path):
    out = tmp_path / "split.txt"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tf_faceedit.data.partition",
            f"--data_dir={synthetic_celeba}",
            f"--out={out}",
            "--val=0.1",
            "--test=0.2",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    split = celeba.read_partition(out)
    n = len(split)
    assert sum(v == 2 for v in split.values()) == round(0.2 * n)
    bad = subprocess.run(
        [sys.executable, "-m", "tf_faceedit.data.partition", f"--data_dir={tmp_path}/none", f"--out={out}"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr
