"""The held-out protocol: write a `list_eval_partition.txt` that splits a CelebA-format folder into train/val/test.

Every quality number of this project is measured on a test part that no model trained or was tuned on. The 9k
development set ships with every image marked "train", so it needs a partition first:

    python -m tf_faceedit.data.partition --data_dir=../shared/data/celeba-9k-89x109 --out=runs/split9k.txt
    python -m tf_faceedit.train ... --set data.partition_file=$PWD/runs/split9k.txt

Rules (the project's protocol, used for every number in docs/RESULTS.md and docs/BENCHMARK.md):
  * `--scheme=ordered` (the default): files in name order; the first `n_train` are train (0), the next `n_val`
    val (1), the rest test (2). For the 9k set the defaults give 000001-007500 train, 007501-008000 val,
    008001-009000 test: the test part is exactly the issue's 8001-9000.
  * `--scheme=seeded`: a seeded permutation of the files, then the same counts (for sets whose order is not random).
  * Counts may be given as fractions (`--test=0.1`). Tune on val, report on test, never the other way round.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from tf_faceedit.data import celeba
from tf_faceedit.data.records import SPLITS
from tf_faceedit.errors import FaceEditError


def _count(value, total, flag):
    number = float(value)
    if number < 0:
        raise FaceEditError(f"{flag} must be >= 0, got {value}")
    return int(round(number * total)) if 0 < number < 1 else int(number)


def make_partition(filenames, n_val, n_test, scheme="ordered", seed=0):
    """Returns {filename: 0|1|2}: the last `n_test` (after ordering) are test, the `n_val` before them val.

    Args:
      filenames: the image file names of the set.
      n_val, n_test: counts of the val and test parts.
      scheme: "ordered" (sorted names) or "seeded" (a permutation from `seed`).
      seed: the permutation seed of "seeded".
    """
    names = sorted(filenames)
    if scheme == "seeded":
        names = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    elif scheme != "ordered":
        raise FaceEditError(f"--scheme must be ordered or seeded, got {scheme!r}")
    if n_val + n_test >= len(names):
        raise FaceEditError(f"val ({n_val}) + test ({n_test}) leave no training image of {len(names)}")
    n_train = len(names) - n_val - n_test
    split = {name: 0 for name in names[:n_train]}
    split.update({name: 1 for name in names[n_train : n_train + n_val]})
    split.update({name: 2 for name in names[n_train + n_val :]})
    return {name: split[name] for name in sorted(filenames)}


def write_for_folder(data_dir, out, val=500, test=1000, scheme="ordered", seed=0):
    """Writes the partition of the images listed in `data_dir`'s attribute file to `out`; returns the split counts."""
    data_dir = Path(data_dir)
    attr_path = data_dir / celeba.CELEBA_ATTR_FILE
    _, filenames, _ = celeba.read_celeba_attributes(attr_path)
    total = len(filenames)
    partition = make_partition(filenames, _count(val, total, "--val"), _count(test, total, "--test"), scheme, seed)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    celeba.write_partition(out, partition)
    return {name: sum(1 for v in partition.values() if v == i) for i, name in enumerate(SPLITS)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tf_faceedit.data.partition", description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", required=True, help="CelebA-format folder (list_attr_celeba.txt)")
    parser.add_argument("--out", required=True, help="partition file to write (list_eval_partition.txt format)")
    parser.add_argument("--val", default="500", help="val images (count, or fraction < 1); default 500")
    parser.add_argument("--test", default="1000", help="test images (count, or fraction < 1); default 1000")
    parser.add_argument("--scheme", default="ordered", choices=("ordered", "seeded"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        counts = write_for_folder(args.data_dir, args.out, args.val, args.test, args.scheme, args.seed)
    except (FaceEditError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
