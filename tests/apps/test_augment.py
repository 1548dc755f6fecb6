"""tf_faceedit.apps.augment / the augment CLI: an edited CelebA-format copy of a dataset."""

import numpy as np
import pytest

from tests import model_runs
from tf_faceedit.apps import augment as augment_app
from tf_faceedit.cli import augment
from tf_faceedit.data import celeba
from tf_faceedit.data.synthetic import ATTRIBUTE_NAMES


@pytest.fixture(scope="module")
def sagan_run(tmp_path_factory, synthetic_celeba):
    return model_runs.checkpointed_run(
        "sagan", synthetic_celeba, tmp_path_factory.mktemp("aug") / "run", attributes=("Eyeglasses", "Smiling")
    )[0]


def test_augment_writes_a_celeba_folder(sagan_run, synthetic_celeba, tmp_path):
    out = tmp_path / "aug"
    summary = augment_app.augment(
        sagan_run, synthetic_celeba, out, attributes=["Smiling"], max_images=5, batch_size=4, verbose=0
    )
    assert summary["source_images"] == 5 and summary["images"] == 10
    names, filenames, values = celeba.read_celeba_attributes(out / "list_attr_celeba.txt")
    assert names == list(ATTRIBUTE_NAMES) and len(filenames) == 10
    assert all((out / "images" / name).is_file() for name in filenames)
    partition = celeba.read_partition(out / "list_eval_partition.txt")
    assert set(partition) == set(filenames)

    _, source_names, source_values = celeba.read_celeba_attributes(synthetic_celeba / "list_attr_celeba.txt")
    source = dict(zip(source_names, source_values))
    smiling = names.index("Smiling")
    for name, row in zip(filenames, values):
        stem, _, variant = name[:-4].partition("_")
        original = source[[s for s in source if s.startswith(stem + ".")][0]]
        if variant == "id":
            np.testing.assert_array_equal(row, original)
        else:
            assert variant == f"Smiling_{int(row[smiling] > 0)}"
            assert row[smiling] == -original[smiling]
            np.testing.assert_array_equal(np.delete(row, smiling), np.delete(original, smiling))
    # the copy is a dataset the library trains on
    records = celeba.load_records(_data_cfg(out), "train")
    assert len(records) == sum(1 for v in partition.values() if v == 0)


def _data_cfg(data_dir):
    from tf_faceedit.config import DataConfig

    return DataConfig(data_dir=str(data_dir), attributes=["Smiling"])


def test_augment_errors(sagan_run, synthetic_celeba, tmp_path, capsys):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    args = ["--model_dir", str(sagan_run), "--data_dir", str(synthetic_celeba), "--quiet"]
    assert augment.main(args + ["--out_dir", str(tmp_path / "full")]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert augment.main(args + ["--out_dir", str(tmp_path / "o"), "--attributes", "Bald"]) == 2
    assert "the model edits only Eyeglasses, Smiling" in capsys.readouterr().err
