"""Hostile inputs (corpus built by tests/hostile.py): every case is either handled correctly or a one-line error naming
the file, with a non-zero exit code, no traceback, and nothing written to the model dir / output on failure."""

import numpy as np
import pytest

from tests import hostile
from tf_faceedit.config import DataConfig
from tf_faceedit.data import align, celeba
from tf_faceedit.errors import DataError


def _cli(main, argv, capsys):
    """Runs a CLI's main(argv) in-process; returns (exit code, stderr). A raw traceback fails the test."""
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err


def _error_lines(err):
    return [line for line in err.splitlines() if line.startswith("error:")]


# -- images -------------------------------------------------------------------------------------------------------

def test_pipeline_uses_or_skips_each_hostile_image(tmp_path):
    extra = hostile.hostile_image_bytes()
    folder, names = hostile.make_dataset_with(tmp_path / "ds", num_good=6, extra=extra)
    cfg = DataConfig(data_dir=str(folder), attributes=hostile.ATTRIBUTES, image_size=16, cache=False,
                     max_corrupt_fraction=0.5, shuffle_buffer=8)
    records = celeba.load_records(cfg, "train")
    assert len(records) == len(names)  # every listed file exists, the unicode name included
    kept = celeba.drop_corrupt(records, cfg.max_corrupt_fraction)
    kept_names = {p.rsplit("/", 1)[-1] for p in kept.paths}
    for name, expected in hostile.PIPELINE_EXPECTATION.items():
        if expected == "skip":
            assert name not in kept_names, name
        elif expected == "use":
            assert name in kept_names, name
    dataset = celeba.build_dataset(cfg, "train", batch_size=1, training=False, repeat=False, drop_remainder=False,
                                   records=kept)
    images = [batch["image"].numpy() for batch in dataset]
    uses = sum(e == "use" for e in hostile.PIPELINE_EXPECTATION.values())
    assert 6 + uses <= len(images) <= len(kept)
    for image in images:
        assert image.shape == (1, 16, 16, 3) and np.isfinite(image).all() and np.abs(image).max() <= 1.0


def test_too_many_bad_images_fail_naming_one(tmp_path):
    extra = {k: v for k, v in hostile.hostile_image_bytes().items() if hostile.PIPELINE_EXPECTATION[k] == "skip"}
    folder, _ = hostile.make_dataset_with(tmp_path / "ds", num_good=4, extra=extra)
    cfg = DataConfig(data_dir=str(folder), attributes=hostile.ATTRIBUTES, image_size=16, max_corrupt_fraction=0.01)
    with pytest.raises(DataError, match="max_corrupt_fraction") as info:
        celeba.drop_corrupt(celeba.load_records(cfg, "train"), cfg.max_corrupt_fraction)
    assert any(name in str(info.value) for name in extra)


def test_header_size_guard():
    assert celeba.image_header_size(hostile.huge_png()[:64]) == (20000, 20000)
    face = hostile._face()
    assert celeba.image_header_size(hostile.encode(face, ".jpg")[:4096]) == (44, 54)
    assert celeba.image_header_size(hostile.encode(face, ".bmp")[:64]) == (44, 54)
    assert celeba.too_large(hostile.huge_png()[:64]) and not celeba.too_large(hostile.encode(face, ".png")[:64])


def test_read_image_handles_or_names_the_file(tmp_path):
    for name, path in hostile.hostile_images(tmp_path).items():
        expected = hostile.PIPELINE_EXPECTATION[name]
        try:
            image = align.read_image(path)
        except DataError as err:
            assert expected != "use", f"{name}: {err}"
            assert name in str(err) and "\n" not in str(err)
            continue
        assert expected != "skip", name
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, name


# -- attribute files ----------------------------------------------------------------------------------------------

def _bad_attr_cases(names):
    good_rows = [f"{n} 1 -1" for n in names]
    return {
        "missing_rows": hostile.celeba_attr_text(names, rows=good_rows[:-2], count=len(names)),
        "extra_columns": hostile.celeba_attr_text(names, rows=good_rows[:-1] + [f"{names[-1]} 1 -1 1"]),
        "non_numeric": hostile.celeba_attr_text(names, rows=good_rows[:-1] + [f"{names[-1]} yes -1"]),
        "duplicated_names": hostile.celeba_attr_text(names, rows=good_rows + [good_rows[0]]),
        "duplicated_attributes": hostile.celeba_attr_text(names, header="Eyeglasses Eyeglasses"),
        "not_utf8": "2\nEyeglasses Smiling\n\xff\xfe 1 1\n",
    }


@pytest.mark.parametrize("case", ["missing_rows", "extra_columns", "non_numeric", "duplicated_names",
                                  "duplicated_attributes"])
def test_bad_attribute_file_is_one_line_error_and_nothing_written(case, tmp_path, capsys):
    from tf_faceedit import train

    folder, names = hostile.make_dataset_with(tmp_path / "ds", num_good=8)
    (folder / "list_attr_celeba.txt").write_text(_bad_attr_cases(names)[case], encoding="utf-8")
    model_dir = tmp_path / "run"
    code, err = _cli(train.main, ["--method=sagan", f"--data_dir={folder}", f"--model_dir={model_dir}", "--quiet",
                                  "--set", "data.attributes=Eyeglasses", "--set", "data.image_size=16",
                                  "--set", "train.steps=1"], capsys)
    assert code == 2
    lines = _error_lines(err)
    assert len(lines) == 1 and "list_attr_celeba.txt" in lines[0], err
    assert not model_dir.exists(), list(model_dir.rglob("*"))


def test_csv_with_bom_crlf_and_unicode_names_loads(tmp_path):
    extra = {"visage_é_日本.jpg": hostile.encode(hostile._face(), ".jpg")}
    folder, names = hostile.make_dataset_with(tmp_path / "ds", num_good=3, extra=extra, csv_text="")
    rows = "".join(f"{n},{i % 2},1\r\n" for i, n in enumerate(names))
    (folder / "attributes.csv").write_bytes(("\ufefffilename,Eyeglasses,Smiling\r\n" + rows).encode("utf-8"))
    cfg = DataConfig(data_dir=str(folder), attributes=["Smiling", "Eyeglasses"], image_size=16)
    records = celeba.load_records(cfg, "all")
    assert [p.rsplit("/", 1)[-1] for p in records.paths] == names
    np.testing.assert_array_equal(records.attributes, [[1, i % 2] for i in range(len(names))])


def test_data_error_in_existing_empty_model_dir_leaves_no_config(tmp_path, capsys):
    from tf_faceedit import train

    folder, _ = hostile.make_dataset_with(tmp_path / "ds", num_good=4,
                                          extra={"zero.jpg": b"", "text.jpg": b"nope"})
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    code, err = _cli(train.main, ["--method=sagan", f"--data_dir={folder}", f"--model_dir={model_dir}", "--quiet",
                                  "--set", "data.image_size=16", "--set", "train.batch_size=2",
                                  "--set", "train.steps=1"], capsys)
    assert code == 2 and len(_error_lines(err)) == 1 and "max_corrupt_fraction" in err, err
    assert sorted(p.name for p in model_dir.iterdir()) == [], list(model_dir.iterdir())


# -- other CLIs ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sagan_run(synthetic_celeba, tmp_path_factory):
    from tests.model_runs import checkpointed_run

    model_dir, _ = checkpointed_run("sagan", synthetic_celeba, tmp_path_factory.mktemp("hostile_run") / "run")
    return model_dir


@pytest.mark.parametrize("name", ["zero_byte.jpg", "text_named.jpg", "huge.png"])
def test_edit_bad_image_is_one_line_error(name, sagan_run, tmp_path, capsys):
    from tf_faceedit import edit

    path = hostile.hostile_images(tmp_path / "imgs")[name]
    out = tmp_path / "out.png"
    code, err = _cli(edit.main, [f"--model_dir={sagan_run}", f"--image={path}", f"--out={out}", "--quiet"], capsys)
    assert code != 0 and len(_error_lines(err)) == 1 and name in err, err
    assert not out.exists()


def test_export_and_evaluate_bad_folders(sagan_run, tmp_path, capsys):
    from tf_faceedit import evaluate, export

    code, err = _cli(export.main, [f"--model_dir={tmp_path / 'nope'}", f"--export_dir={tmp_path / 'e' / '1'}"],
                     capsys)
    assert code == 2 and len(_error_lines(err)) == 1 and "nope" in err, err
    assert not (tmp_path / "e").exists()
    folder, _ = hostile.make_dataset_with(tmp_path / "ds", num_good=4, attr_text="not a count\nA B\n")
    out_dir = tmp_path / "eval"
    code, err = _cli(evaluate.main, [f"--model_dir={sagan_run}", f"--data_dir={folder}", "--split=all",
                                     f"--out_dir={out_dir}", "--quiet"], capsys)
    assert code == 2 and len(_error_lines(err)) == 1 and "list_attr_celeba.txt" in err, err
    assert not out_dir.exists()


@pytest.mark.parametrize("rest", [False, True])
def test_client_bad_server_and_bad_image(rest, tmp_path, capsys):
    from tf_faceedit.serving import client

    images = hostile.hostile_images(tmp_path / "imgs")
    out = tmp_path / "out.png"
    base = ["--model=sagan", f"--out={out}", "--timeout=2"] + (["--rest"] if rest else [])
    code, err = _cli(client.main, base + ["--server=127.0.0.1:1", f"--image={images['alpha.png']}"], capsys)
    assert code != 0 and len(_error_lines(err)) == 1 and "127.0.0.1:1" in err, err
    code, err = _cli(client.main, base + ["--server=127.0.0.1:1", f"--image={images['zero_byte.jpg']}"], capsys)
    assert code != 0 and len(_error_lines(err)) == 1, err
    code, err = _cli(client.main, base + ["--server=not a host::", f"--image={images['alpha.png']}"], capsys)
    assert code != 0 and len(_error_lines(err)) == 1, err
    code, err = _cli(client.main, base + ["--server=127.0.0.1:1", f"--image={images['huge.png']}"], capsys)
    assert code != 0 and len(_error_lines(err)) == 1 and "huge.png" in err, err
    assert not out.exists()
