"""Hostile inputs (corpus built by tests/hostile.py): every case is either handled correctly or a one-line error naming
the file, with a non-zero exit code, no traceback, and nothing written to the model dir / output on failure."""

import numpy as np
import pytest

from tests import hostile
from tf_faceedit import images
from tf_faceedit.config import DataConfig
from tf_faceedit.data import celeba
from tf_faceedit.data.records import drop_corrupt
from tf_faceedit.errors import ConfigError, DataError
from tf_faceedit.images import read_image


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
    cfg = DataConfig(
        data_dir=str(folder),
        attributes=hostile.ATTRIBUTES,
        image_size=16,
        cache=False,
        max_corrupt_fraction=0.5,
        shuffle_buffer=8,
    )
    records = celeba.load_records(cfg, "train")
    assert len(records) == len(names)  # every listed file exists, the unicode name included
    kept = drop_corrupt(records, cfg.max_corrupt_fraction)
    kept_names = {p.rsplit("/", 1)[-1] for p in kept.paths}
    for name, expected in hostile.PIPELINE_EXPECTATION.items():
        if expected == "skip":
            assert name not in kept_names, name
        elif expected == "use":
            assert name in kept_names, name
    dataset = celeba.build_dataset(
        cfg, "train", batch_size=1, training=False, repeat=False, drop_remainder=False, records=kept
    )
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
        drop_corrupt(celeba.load_records(cfg, "train"), cfg.max_corrupt_fraction)
    assert any(name in str(info.value) for name in extra)


def test_header_size_guard():
    assert images.header_of_bytes(hostile.huge_png()[:64]).pixels == 20000 * 20000
    face = hostile._face()
    for ext in (".jpg", ".png", ".bmp", ".gif", ".webp", ".tiff"):
        header = images.header_of_bytes(hostile.encode(face, ext))
        assert (header.width, header.height) == (44, 54), ext


def test_read_image_handles_or_names_the_file(tmp_path):
    for name, path in hostile.hostile_images(tmp_path).items():
        expected = hostile.PIPELINE_EXPECTATION[name]
        try:
            image = read_image(path)
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


@pytest.mark.parametrize(
    "case", ["missing_rows", "extra_columns", "non_numeric", "duplicated_names", "duplicated_attributes"]
)
def test_bad_attribute_file_is_one_line_error_and_nothing_written(case, tmp_path, capsys):
    from tf_faceedit.cli import train

    folder, names = hostile.make_dataset_with(tmp_path / "ds", num_good=8)
    (folder / "list_attr_celeba.txt").write_text(_bad_attr_cases(names)[case], encoding="utf-8")
    model_dir = tmp_path / "run"
    code, err = _cli(
        train.main,
        [
            "--method=sagan",
            f"--data_dir={folder}",
            f"--model_dir={model_dir}",
            "--quiet",
            "--set",
            "data.attributes=Eyeglasses",
            "--set",
            "data.image_size=16",
            "--set",
            "train.steps=1",
        ],
        capsys,
    )
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
    from tf_faceedit.cli import train

    folder, _ = hostile.make_dataset_with(tmp_path / "ds", num_good=4, extra={"zero.jpg": b"", "text.jpg": b"nope"})
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    code, err = _cli(
        train.main,
        [
            "--method=sagan",
            f"--data_dir={folder}",
            f"--model_dir={model_dir}",
            "--quiet",
            "--set",
            "data.image_size=16",
            "--set",
            "train.batch_size=2",
            "--set",
            "train.steps=1",
        ],
        capsys,
    )
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
    from tf_faceedit.cli import edit

    path = hostile.hostile_images(tmp_path / "imgs")[name]
    out = tmp_path / "out.png"
    code, err = _cli(edit.main, [f"--model_dir={sagan_run}", f"--image={path}", f"--out={out}", "--quiet"], capsys)
    assert code != 0 and len(_error_lines(err)) == 1 and name in err, err
    assert not out.exists()


def test_export_and_evaluate_bad_folders(sagan_run, tmp_path, capsys):
    from tf_faceedit.cli import evaluate, export

    code, err = _cli(export.main, [f"--model_dir={tmp_path / 'nope'}", f"--export_dir={tmp_path / 'e' / '1'}"], capsys)
    assert code == 2 and len(_error_lines(err)) == 1 and "nope" in err, err
    assert not (tmp_path / "e").exists()
    folder, _ = hostile.make_dataset_with(tmp_path / "ds", num_good=4, attr_text="not a count\nA B\n")
    out_dir = tmp_path / "eval"
    code, err = _cli(
        evaluate.main,
        [f"--model_dir={sagan_run}", f"--data_dir={folder}", "--split=all", f"--out_dir={out_dir}", "--quiet"],
        capsys,
    )
    assert code == 2 and len(_error_lines(err)) == 1 and "list_attr_celeba.txt" in err, err
    assert not out_dir.exists()


@pytest.mark.parametrize("rest", [False, True])
def test_client_bad_server_and_bad_image(rest, tmp_path, capsys):
    from tf_faceedit.cli import serve_client as client

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


# -- images that lie ------------------------------------------------------------------------------------------------


def test_jpeg_bomb_after_comments_is_refused_wherever_an_image_is_read(tmp_path):
    """SOF declaring 16000x16000 after 70 KB of COM segments (beyond the old 64 KB prefix scan)."""
    from tf_faceedit.apps.demo import handlers as demo_handlers
    from tf_faceedit.serving import client

    bomb = tmp_path / "bomb.jpg"
    bomb.write_bytes(hostile.jpeg_bomb())
    for read in (read_image, lambda p: client.read_image(p, "--image"), images.read_image_alpha):
        with pytest.raises(DataError, match="16000x16000") as info:
            read(bomb)
        assert "bomb.jpg" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(DataError, match="bomb.jpg is 16000x16000 pixels; the demo takes up to 40 megapixels"):
        demo_handlers.read_photo(bomb)
    folder, names = hostile.make_dataset_with(tmp_path / "ds", num_good=6, extra={"bomb.jpg": bomb.read_bytes()})
    cfg = DataConfig(data_dir=str(folder), attributes=hostile.ATTRIBUTES, image_size=16, max_corrupt_fraction=0.5)
    kept = drop_corrupt(celeba.load_records(cfg, "train"), cfg.max_corrupt_fraction)
    assert len(kept) == 6 and not any(p.endswith("bomb.jpg") for p in kept.paths)


def _undecodable_dataset(folder, n=6):
    extra = {f"{i:06d}.png": hostile.undecodable_png(i) for i in range(n)}
    return hostile.make_dataset_with(folder, num_good=0, extra=extra)


def test_dataset_whose_files_pass_the_scan_but_never_decode(tmp_path, capsys):
    from tf_faceedit.cli import train

    folder, names = _undecodable_dataset(tmp_path / "ds")
    cfg = DataConfig(data_dir=str(folder), attributes=hostile.ATTRIBUTES, image_size=16, max_corrupt_fraction=0.0)
    records = celeba.load_records(cfg, "train")
    assert len(drop_corrupt(records, 0.0)) == len(names)  # every header is valid
    argv = [
        "--method=sagan",
        f"--data_dir={folder}",
        "--quiet",
        "--set",
        "data.image_size=16",
        "--set",
        "train.batch_size=2",
        "--set",
        "train.steps=1",
    ]
    model_dir = tmp_path / "run"
    code, err = _cli(train.main, argv + [f"--model_dir={model_dir}"], capsys)
    lines = _error_lines(err)
    assert code == 2 and len(lines) == 1 and "does not decode" in lines[0] and "000000.png" in lines[0], err
    assert not model_dir.exists(), list(model_dir.rglob("*"))
    existing = tmp_path / "existing"
    existing.mkdir()
    code, err = _cli(train.main, argv + [f"--model_dir={existing}"], capsys)
    assert code == 2 and len(_error_lines(err)) == 1, err
    assert list(existing.iterdir()) == []


def test_numpy_pipeline_says_so_when_nothing_decodes(tmp_path):
    from tf_faceedit.data import numpy_pipeline

    folder, _ = _undecodable_dataset(tmp_path / "ds", n=3)
    cfg = DataConfig(data_dir=str(folder), attributes=hostile.ATTRIBUTES, image_size=16, max_corrupt_fraction=0.0)
    batches = numpy_pipeline.build_dataset(cfg, "train", batch_size=2, training=True)
    with pytest.raises(DataError, match="could be decoded"):
        next(iter(batches))


# -- paths and encodings ----------------------------------------------------------------------------------------------


def _train_argv(folder, model_dir, *extra):
    return [
        "--method=sagan",
        f"--data_dir={folder}",
        f"--model_dir={model_dir}",
        "--quiet",
        "--set",
        "data.image_size=16",
        "--set",
        "train.steps=1",
        *extra,
    ]


def test_model_dir_that_is_a_file_or_under_a_file(tmp_path, capsys):
    from tf_faceedit.cli import train

    folder, _ = hostile.make_dataset_with(tmp_path / "ds", num_good=4)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    for model_dir, expected in (
        (a_file, "is an existing file, not a folder"),
        (a_file / "run", "is a file, so no folder can be made inside it"),
    ):
        code, err = _cli(train.main, _train_argv(folder, model_dir), capsys)
        lines = _error_lines(err)
        assert code == 2 and len(lines) == 1 and expected in lines[0] and "--model_dir" in lines[0], err
    assert a_file.read_text() == "keep me"


@pytest.mark.skipif(
    not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
    reason="permissions do not bind root (the tests run as root here)",
)
def test_model_dir_in_a_folder_without_write_permission(tmp_path, capsys):
    from tf_faceedit.cli import train

    folder, _ = hostile.make_dataset_with(tmp_path / "ds", num_good=4)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code, err = _cli(train.main, _train_argv(folder, locked / "run"), capsys)
    finally:
        locked.chmod(0o755)
    assert code == 2 and len(_error_lines(err)) == 1 and "permission denied" in err, err


@pytest.mark.parametrize("case", ["latin1", "binary", "utf16", "not_yaml", "a_list"])
def test_config_file_that_is_not_utf8_yaml(case, tmp_path, capsys):
    from tf_faceedit.cli import train

    content = {
        "latin1": "train:\n  steps: 1 # résumé\n".encode("latin-1"),
        "binary": bytes(range(256)) * 4,
        "utf16": "train:\n  steps: 1\n".encode("utf-16"),
        "not_yaml": b"train: [1, 2\n",
        "a_list": b"- 1\n- 2\n",
    }[case]
    config = tmp_path / f"{case}.yaml"
    config.write_bytes(content)
    folder, _ = hostile.make_dataset_with(tmp_path / "ds", num_good=4)
    model_dir = tmp_path / "run"
    code, err = _cli(train.main, _train_argv(folder, model_dir, f"--config={config}"), capsys)
    lines = _error_lines(err)
    assert code == 2 and len(lines) == 1 and f"{case}.yaml" in lines[0], err
    assert not model_dir.exists()


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"name: my-web-app\nversion: 3\nservices: [db, cache]\n", "has no 'method' field"),
        (b"\xff\xfe\x00garbage\x00\x01", "binary file"),
        (b"method: stargan\n", "names method 'stargan', which is not registered"),
    ],
)
def test_run_folder_whose_config_yaml_is_not_ours(content, expected, tmp_path, capsys):
    from tf_faceedit.cli import edit, export, train

    run = tmp_path / "other_tool"
    run.mkdir()
    (run / "config.yaml").write_bytes(content)
    photo = tmp_path / "p.png"
    photo.write_bytes(hostile.encode(hostile._face(), ".png"))
    for main, argv in (
        (train.main, [f"--model_dir={run}", "--quiet"]),
        (edit.main, [f"--model_dir={run}", f"--image={photo}", f"--out={tmp_path / 'o.png'}", "--quiet"]),
        (export.main, [f"--model_dir={run}", f"--export_dir={tmp_path / 'e' / '1'}", "--quiet"]),
    ):
        code, err = _cli(main, argv, capsys)
        lines = _error_lines(err)
        assert code == 2 and len(lines) == 1 and str(run / "config.yaml") in lines[0] and expected in lines[0], err
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml"] and not (tmp_path / "o.png").exists()


def test_export_dir_under_a_file_and_junk_saved_model(sagan_run, tmp_path, capsys):
    import tf_faceedit
    from tf_faceedit.cli import edit, export

    a_file = tmp_path / "exports"
    a_file.write_text("not a folder")
    code, err = _cli(
        export.main, [f"--model_dir={sagan_run}", f"--export_dir={a_file / 'sagan' / '1'}", "--quiet"], capsys
    )
    assert code == 2 and len(_error_lines(err)) == 1 and "--export_dir" in err and "is a file" in err, err
    junk = tmp_path / "junk" / "1"
    junk.mkdir(parents=True)
    (junk / "saved_model.pb").write_bytes(b"\x08\x96\x01 this is not a SavedModel protobuf \xff\xff")
    with pytest.raises(DataError, match="saved_model.pb cannot be loaded as a tf_faceedit export"):
        tf_faceedit.load(junk)
    photo = tmp_path / "p.png"
    photo.write_bytes(hostile.encode(hostile._face(), ".png"))
    code, err = _cli(
        edit.main, [f"--export_dir={junk}", f"--image={photo}", f"--out={tmp_path / 'o.png'}", "--quiet"], capsys
    )
    lines = _error_lines(err)
    assert code == 2 and len(lines) == 1 and str(junk / "saved_model.pb") in lines[0], err


# -- attribute values ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 1.5, -0.5])
def test_load_edit_refuses_non_finite_or_out_of_range_attributes(value, sagan_run):
    import tf_faceedit

    model = tf_faceedit.load(sagan_run)
    assert model.attribute_range == (0.0, 1.0)
    faces = np.stack([hostile._face(i, (32, 32)) for i in range(2)])
    for attributes in ({"Eyeglasses": value}, np.array([value], np.float32), np.array([[0.0], [value]])):
        with pytest.raises(ConfigError, match=r"attribute Eyeglasses=.*sagan takes target values in \[0, 1\]"):
            model.edit(faces, attributes)
    assert model.edit(faces, {"Eyeglasses": 0.5})["image"].shape == faces.shape  # inside the range: fine


def test_fader_range_goes_beyond_one_but_not_without_bound(synthetic_celeba, tmp_path):
    import tf_faceedit
    from tests.model_runs import checkpointed_run
    from tf_faceedit.apps.demo import handlers as demo_handlers

    run, _ = checkpointed_run("fader", synthetic_celeba, tmp_path / "fader")
    model = tf_faceedit.load(run)
    assert model.attribute_range == (-1.0, 2.0)
    face = hostile._face(0, (32, 32))
    for value in (-1.0, 1.5, 2.0):
        assert model.edit(face, {"Smiling": value})["image"].shape == face.shape
    for value in (2.5, -1.5, float("nan")):
        with pytest.raises(ConfigError, match=r"Smiling=.*fader takes target values in \[-1, 2\]"):
            model.edit(face, {"Smiling": value})
    specs = demo_handlers.control_specs(model)
    assert (specs[0]["minimum"], specs[0]["maximum"]) == (-1.0, 2.0)
    handlers = demo_handlers.DemoHandlers({"fader": model})
    out = handlers.edit("fader", np.zeros((64, 64, 3), np.uint8), 0, [float("nan")])
    assert "Smiling=nan" in out["error"] and "\n" not in out["error"]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "2"])
def test_edit_cli_refuses_non_finite_attribute(value, sagan_run, tmp_path, capsys):
    from tf_faceedit.cli import edit

    photo = tmp_path / "p.png"
    photo.write_bytes(hostile.encode(hostile._face(), ".png"))
    out = tmp_path / "o.png"
    code, err = _cli(
        edit.main,
        [f"--model_dir={sagan_run}", f"--image={photo}", f"--out={out}", f"--set=Eyeglasses={value}", "--quiet"],
        capsys,
    )
    lines = _error_lines(err)
    assert code == 2 and len(lines) == 1 and "--set Eyeglasses=" in lines[0], err
    assert not out.exists()


def test_client_refuses_non_finite_attribute_before_sending():
    from tf_faceedit.serving import client

    names = ["Eyeglasses", "Smiling"]
    for sets, attributes, flag in (
        (["Smiling=nan"], None, "--set Smiling"),
        ([], "1,inf", "--attributes Smiling"),
        (["Eyeglasses=3"], None, "--set Eyeglasses"),
    ):
        with pytest.raises(ConfigError, match=flag):
            client.resolve_attributes(names, sets, attributes, value_range=(0.0, 1.0), method="sagan")
    vector, _ = client.resolve_attributes(names, ["Smiling=3"], None, value_range=None)  # an old export: no range
    assert vector.tolist() == [0.0, 3.0]
    with pytest.raises(ConfigError, match="finite"):
        client.resolve_attributes(names, ["Smiling=nan"], None, value_range=None)
    with pytest.raises(ConfigError, match="attribute 1 .*finite"):
        client.batch_attributes(np.array([0.0, np.nan]), 2)
    meta = client.decode_metadata(
        {
            "method": np.array(b"fader"),
            "attribute_names": np.array([b"Smiling"]),
            "image_size": np.array(64),
            "task": np.array(b"edit"),
            "attribute_range": np.array([-1.0, 2.0], np.float32),
        }
    )
    assert meta["attribute_range"] == (-1.0, 2.0)


# -- damaged run folders (tests/hostile.py: CHECKPOINT_DAMAGE) ----------------------------------------------------


def _run_with_damaged_latest(sagan_run, tmp_path, kind, keep_older=True):
    """A copy of `sagan_run` whose newest checkpoint is damaged as `kind`, with an intact older one at step 1
    (or none)."""
    import shutil

    run = shutil.copytree(sagan_run, tmp_path / "run")
    latest = sorted((run / "checkpoints").glob("ckpt-*"))[-1]
    if keep_older:
        hostile.add_older_checkpoint(latest, 1)
    hostile.damage_checkpoint(latest, kind)
    return run, latest


@pytest.mark.parametrize("kind", sorted(hostile.CHECKPOINT_DAMAGE))
def test_edit_on_a_run_whose_latest_checkpoint_is_damaged(kind, sagan_run, tmp_path, capsys, caplog):
    from tf_faceedit.cli import edit

    run, latest = _run_with_damaged_latest(sagan_run, tmp_path, kind)
    photo = tmp_path / "face.png"
    images.write_image(photo, hostile.detectable_face(tmp_path / "faces"))
    out = tmp_path / "out.png"
    code, err = _cli(
        edit.main, [f"--model_dir={run}", f"--image={photo}", f"--out={out}", "--quiet", "--set=Eyeglasses=1"], capsys
    )
    assert code == 0 and out.exists(), err
    warned = caplog.text + err  # the warning goes to the log (pytest captures it in process)
    assert "skipping damaged checkpoint" in warned and latest.name in warned and "ckpt-00000001" in warned, warned
    assert latest.is_dir()  # left in place


def test_cli_on_a_run_with_no_intact_checkpoint_is_one_line_error(sagan_run, tmp_path, capsys):
    from tf_faceedit.cli import edit, export, train

    run, latest = _run_with_damaged_latest(sagan_run, tmp_path, "truncated_weights", keep_older=False)
    photo = tmp_path / "p.png"
    photo.write_bytes(hostile.encode(hostile._face(), ".png"))
    for main, argv in (
        (edit.main, [f"--image={photo}", f"--out={tmp_path / 'o.png'}"]),
        (export.main, [f"--export_dir={tmp_path / 'e' / '1'}"]),
        (train.main, ["--set=train.steps=20"]),
    ):
        code, err = _cli(main, [f"--model_dir={run}", "--quiet"] + argv, capsys)
        lines = _error_lines(err)
        assert code == 2 and len(lines) == 1 and "no intact checkpoint" in lines[0] and latest.name in lines[0], err
    assert latest.is_dir() and not (run / ".lock").exists()
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "e").exists()
