"""The model zoo (`tf_faceedit.pretrained`): a zoo made in a tmp folder from tiny checkpointed runs (SaGAN stored
float16, pggan_completion float32) checks the add tool, load by name, `--model NAME` on the CLIs, the export
signature, corrupted files and unknown names; then every entry of the REAL packaged manifest is checked the same way
(load, manifest, edit shapes, export == eager within 1 level)."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import tensorflow as tf

import tf_faceedit
from tests import model_runs
from tests.helpers import tiny_config
from tf_faceedit import model_source, registry
from tf_faceedit.cli import edit, evaluate, export
from tf_faceedit.data.celeba import denormalize
from tf_faceedit.errors import ConfigError, DataError
from tf_faceedit.eval import classifier as classifier_lib
from tf_faceedit.eval import evaluation
from tf_faceedit.images import read_image
from tf_faceedit.io_util import file_digest
from tf_faceedit.pretrained import maintain, zoo
from tf_faceedit.serving import export_lib, processing
from tf_faceedit.training import driver

ROOT = Path(__file__).resolve().parents[2]
HEIGHT, WIDTH = 40, 36  # not the model size
CARD = "# tiny test entry\n\nTerms: CelebA is for non-commercial research purposes only.\n"
# name -> (method, dtype) of the tmp zoo
TINY = {"tiny-sagan": ("sagan", "float16"), "tiny-pggan": ("pggan_completion", "float32")}


def h5_floats(path):
    """(the float dtypes of a weights file's arrays, their bytes)."""
    found, nbytes = set(), []

    def visit(_, item):
        if isinstance(item, h5py.Dataset) and item.dtype.kind == "f":
            found.add(str(item.dtype))
            nbytes.append(item.size * item.dtype.itemsize)

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return found, sum(nbytes)


def eager_reference(trainer, inputs):
    """The trainer's eager `infer` on the preprocessed inputs, resized and converted to uint8 with numpy."""
    size = trainer.config.data.image_size
    model_inputs = {
        "image": processing.preprocess_images(inputs["image"], size),
        "attributes": tf.constant(inputs["attributes"]),
    }
    if trainer.task == "complete":
        model_inputs["mask"] = processing.preprocess_masks(inputs["mask"], size)
    ref = {}
    for key, value in trainer.infer(model_inputs).items():
        value = np.asarray(value, np.float32)
        keys = processing.EDIT_OUTPUTS if trainer.task == "edit" else processing.COMPLETE_OUTPUTS
        if key in keys:
            value = denormalize(tf.image.resize(value, (HEIGHT, WIDTH), method="bilinear", antialias=True).numpy())
        ref[key] = value
    if trainer.task == "complete":
        ref["completed"] = np.where(inputs["mask"] != 0, ref["completed"], inputs["image"])
    return ref


def requests(task, num_attributes, n=2, seed=1):
    rng = np.random.RandomState(seed)
    inputs = {
        "image": maintain.synthetic_faces(n, HEIGHT, WIDTH, seed),
        "attributes": rng.randint(0, 2, (n, num_attributes)).astype(np.float32),
    }
    if task == "complete":
        mask = np.zeros((n, HEIGHT, WIDTH, 1), np.uint8)
        mask[:, 8:27, 5:22] = 255
        inputs["mask"] = mask
    return inputs


def check_export_matches_eager(source, tmp_path, entry):
    """Exports `source` (a zoo name or entry folder) and compares its serving signature with the entry's eager
    trainer: uint8 outputs within 1 level, float extras within 1e-4."""
    result = export_lib.export(source, tmp_path / "exports" / entry.name / "1")
    assert sorted(Path(p).stem for p in result["networks"].values()) == sorted(entry.networks)
    trainer = model_source.restore(entry).trainer
    inputs = requests(entry.task, len(entry.attributes))
    loaded = tf.saved_model.load(result["export_dir"])
    out = {k: v.numpy() for k, v in loaded.signatures["serving_default"](**inputs).items()}
    ref = eager_reference(trainer, inputs)
    assert set(out) == set(ref)
    for key, value in out.items():
        if value.dtype == np.uint8:
            assert value.shape == (2, HEIGHT, WIDTH, 3)
            assert np.abs(value.astype(int) - ref[key].astype(int)).max() <= 1, key
        else:
            np.testing.assert_allclose(value, ref[key], atol=1e-4)


def check_edits_synthetic_faces(model, entry):
    faces = maintain.synthetic_faces(2, HEIGHT, WIDTH)
    targets = {name: 1.0 for name in entry.attributes}
    if entry.task == "complete":
        mask = np.zeros((2, HEIGHT, WIDTH, 1), np.uint8)
        mask[:, 10:25, 8:28] = 255
        out = model.complete(faces, mask, targets)
        assert set(out) >= {"completed", "raw"}
        np.testing.assert_array_equal(out["completed"][mask[..., 0] == 0], faces[mask[..., 0] == 0])
        keys = ("completed", "raw")
    else:
        out = model.edit(faces, targets)
        keys = ("image",)
        one = model.edit(faces[0], targets)["image"]
        assert one.shape == (HEIGHT, WIDTH, 3)
    for key in keys:
        assert out[key].dtype == np.uint8 and out[key].shape == (2, HEIGHT, WIDTH, 3), key
    if "attention" in out:
        s = entry.image_size
        assert out["attention"].shape[:3] == (2, s, s)
    return out


# ---------------------------------------------------------------------------------------------------------------
# A tmp zoo of tiny runs


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, synthetic_celeba):
    """namespace(root, runs {name: model_dir}, card): the tmp zoo; tests must not modify it (copy it first)."""
    import types

    base = tmp_path_factory.mktemp("zoo")
    card = base / "card.md"
    card.write_text(CARD)
    runs = {}
    for name, (method, dtype) in TINY.items():
        runs[name], _ = model_runs.checkpointed_run(method, synthetic_celeba, base / "runs" / method)
        maintain.add(runs[name], name, card, dtype=dtype, root=base / "zoo")
    return types.SimpleNamespace(root=base / "zoo", runs=runs, card=card)


@pytest.fixture
def zoo_env(tiny, monkeypatch):
    monkeypatch.setenv(zoo.ENV_VAR, str(tiny.root))
    return tiny


@pytest.fixture
def zoo_copy(tiny, tmp_path, monkeypatch):
    """A writable copy of the tmp zoo, set as TF_FACEEDIT_ZOO."""
    root = tmp_path / "zoo_copy"
    shutil.copytree(tiny.root, root)
    monkeypatch.setenv(zoo.ENV_VAR, str(root))
    return root


def test_add_writes_manifest_and_inference_files_only(tiny):
    manifest = json.loads((tiny.root / "manifest.json").read_text())
    assert manifest["format"] == 1 and manifest["max_total_bytes"] == zoo.MAX_TOTAL_BYTES
    assert [e["name"] for e in manifest["entries"]] == sorted(TINY)
    networks = {"tiny-sagan": ["generator", "discriminator"], "tiny-pggan": ["generator"]}
    for record in manifest["entries"]:
        name = record["name"]
        method, dtype = TINY[name]
        assert record["method"] == method and record["dtype"] == dtype
        assert record["networks"] == networks[name]
        assert record["card"] == f"{name}.md" and (tiny.root / record["card"]).read_text() == CARD
        expected = {f"{name}/config.yaml", f"{name}.md", *(f"{name}/{n}.weights.h5" for n in networks[name])}
        assert set(record["files"]) == expected
        for rel, meta in record["files"].items():
            path = tiny.root / rel
            assert meta == {"sha256": file_digest(path), "size": path.stat().st_size}
        # only the inference networks: no optimizer or trainer state, no discriminator for pggan
        assert sorted(p.name for p in (tiny.root / name).iterdir()) == sorted(
            ["config.yaml", *(f"{n}.weights.h5" for n in networks[name])]
        )
        cfg = model_source.restore(zoo.Entry(tiny.root, record)).config
        assert (cfg.method, list(cfg.data.attributes), cfg.data.image_size) == (
            method,
            record["attributes"],
            record["image_size"],
        )
        assert record["step"] == cfg.train.steps
        metrics = record["precision"]["float16_vs_float32"]
        assert all(m["max_abs_diff"] <= 3 for m in metrics.values() if "psnr" in m), metrics
        for net in networks[name]:
            weights = tiny.root / name / f"{net}.weights.h5"
            ckpt = sorted((tiny.runs[name] / "checkpoints").glob("ckpt-*"))[-1] / f"{net}.weights.h5"
            (stored, stored_bytes), (trained, trained_bytes) = h5_floats(weights), h5_floats(ckpt)
            assert stored == {dtype} and trained == {"float32"}
            assert stored_bytes == (trained_bytes // 2 if dtype == "float16" else trained_bytes)
    assert sorted(p.name for p in tiny.root.iterdir()) == sorted(
        ["manifest.json", *TINY, *(f"{n}.md" for n in TINY)]
    )  # no temporary folder left


def test_load_by_name_edits_and_matches_the_run(zoo_env):
    for name, (_, dtype) in TINY.items():
        model = tf_faceedit.load(name)
        entry = zoo.get(name)
        assert (model.method, model.attribute_names, model.image_size) == (
            entry.method,
            entry.attributes,
            entry.image_size,
        )
        assert model.info == {
            "zoo": name,
            "step": entry.step,
            "dtype": dtype,
            "checkpoint": str(entry.directory),
            "precision": "float32",
        }
        for net in entry.networks:
            assert {v.dtype for v in model.trainer.networks[net].weights} <= {"float32", "int32", "int64", "uint32"}
        out = check_edits_synthetic_faces(model, entry)
        run = tf_faceedit.load(zoo_env.runs[name])  # the run it came from: float16 storage moves little
        inputs = requests(entry.task, len(entry.attributes), seed=0)
        targets = {attribute: 1.0 for attribute in entry.attributes}
        if entry.task == "complete":
            ref = run.complete(inputs["image"], inputs["mask"], targets)
            got = model.complete(inputs["image"], inputs["mask"], targets)
            keys = ("completed", "raw")
        else:
            ref, got, keys = run.edit(maintain.synthetic_faces(2, HEIGHT, WIDTH), targets), out, ("image",)
        for key in keys:
            limit = 0 if dtype == "float32" else 3
            assert np.abs(ref[key].astype(int) - got[key].astype(int)).max() <= limit, (name, key)


def test_degenerate_batches_on_a_zoo_name(zoo_env):
    from tests.test_api import check_degenerate_batches

    for name in TINY:
        check_degenerate_batches(tf_faceedit.load(name))


def test_an_entry_folder_loads_by_path(tiny):
    model = tf_faceedit.load(tiny.root / "tiny-sagan")
    assert model.info["zoo"] == "tiny-sagan"


@pytest.mark.parametrize("name", [pytest.param("tiny-sagan"), pytest.param("tiny-pggan", marks=pytest.mark.slow)])
def test_export_of_a_zoo_name_matches_eager(name, zoo_env, tmp_path):
    check_export_matches_eager(name, tmp_path, zoo.get(name))


def test_sha256_mismatch_is_a_one_line_error_naming_the_file(zoo_copy, capsys):
    weights = zoo_copy / "tiny-sagan" / "generator.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other content
    weights.write_bytes(bytes(data))
    with pytest.raises(DataError) as err:
        tf_faceedit.load("tiny-sagan")
    message = str(err.value)
    assert "\n" not in message and str(weights) in message and "sha256" in message
    tf_faceedit.load("tiny-pggan")  # the other entry is intact
    # the CLIs: one `error:` line; verify names the file and exits 1
    assert export.main(["--model", "tiny-sagan", "--export_dir", str(zoo_copy.parent / "e" / "1"), "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: zoo file") and "generator.weights.h5" in lines[0]
    from tf_faceedit.pretrained import __main__ as cli

    assert cli.main(["verify", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "ok tiny-pggan" in out and "FAILED tiny-sagan" in out and "generator.weights.h5" in out
    weights.write_bytes(bytes(data[:-10]))  # truncated: the size says it first
    with pytest.raises(DataError, match="corrupted: .* bytes where the manifest says"):
        tf_faceedit.load("tiny-sagan")
    weights.unlink()
    with pytest.raises(DataError, match="generator.weights.h5 of tiny-sagan is missing"):
        tf_faceedit.load("tiny-sagan")


def test_unknown_name_lists_the_known_ones(zoo_env, photo, tmp_path, monkeypatch, capsys):
    with pytest.raises(ConfigError) as err:
        tf_faceedit.load("tiny-sagna")
    message = str(err.value)
    assert "\n" not in message and "unknown model 'tiny-sagna'" in message
    assert "did you mean: tiny-sagan" in message and "tiny-pggan, tiny-sagan" in message
    assert edit.main(["--model", "nope", "--image", str(photo), "--out", str(tmp_path / "o.png"), "--quiet"]) == 2
    err_text = capsys.readouterr().err
    assert err_text.count("\n") == 1 and "unknown model 'nope'" in err_text and "tiny-pggan, tiny-sagan" in err_text
    empty = tmp_path / "empty_zoo"
    empty.mkdir()
    monkeypatch.setenv(zoo.ENV_VAR, str(empty))
    with pytest.raises(ConfigError, match="zoo names .*: none yet"):
        tf_faceedit.load("sagan-eyeglasses-64")
    # paths keep their own errors
    with pytest.raises(ConfigError, match="neither a training run"):
        tf_faceedit.load(tmp_path)


def test_a_local_run_folder_of_the_same_name_wins(zoo_env, tmp_path, monkeypatch):
    shutil.copytree(zoo_env.runs["tiny-pggan"], tmp_path / "tiny-sagan")
    monkeypatch.chdir(tmp_path)
    assert tf_faceedit.load("tiny-sagan").method == "pggan_completion"


# ---------------------------------------------------------------------------------------------------------------
# No path of the training machine in a released entry (issue 34)


def absolute_paths(value, where="config"):
    """The string values of a nested config dict that are absolute paths (POSIX, Windows or ~): [(where, value)]."""
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in absolute_paths(item, f"{where}.{key}")]
    if isinstance(value, list):
        return [found for item in value for found in absolute_paths(item, where)]
    if isinstance(value, str) and (value.startswith(("/", "~", "\\")) or (len(value) > 2 and value[1:3] == ":\\")):
        return [(where, value)]
    return []


def config_of(entry):
    from tf_faceedit.config import load_run_config

    return load_run_config(entry.directory / "config.yaml")


def test_add_keeps_the_machine_paths_as_provenance_only(tiny, synthetic_celeba):
    for entry in zoo.entries(tiny.root):
        saved = config_of(entry)
        assert absolute_paths(saved) == [] and maintain.machine_paths(saved) == {}, entry.name
        assert entry.data["provenance"]["data.data_dir"] == str(synthetic_celeba)  # where it was trained
        model = tf_faceedit.load(entry.directory)
        assert (model.config.data.data_dir, model.config.data.partition_file) == ("", "")


def make_old_style_entry(root, name="tiny-sagan"):
    """Rewrites an entry's config.yaml as `add` wrote it before issue 34 (the training machine's data_dir and
    partition file, which this machine does not have), its manifest record updated to match."""
    path = root / name / "config.yaml"
    text = path.read_text()
    text = text.replace("data_dir: ''", "data_dir: /nonexistent/train-machine/celeba")
    text = text.replace("partition_file: ''", "partition_file: /nonexistent/train-machine/split9k.txt")
    assert "/nonexistent/train-machine/split9k.txt" in text
    path.write_text(text)
    manifest = json.loads((root / "manifest.json").read_text())
    for record in manifest["entries"]:
        if record["name"] == name:
            record["files"][f"{name}/config.yaml"] = maintain.file_record(path)
            record.pop("provenance", None)
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))


def test_a_zoo_model_reads_the_users_data_dir_not_the_training_machines(zoo_copy, synthetic_celeba, tmp_path):
    """`evaluate --model NAME --data_dir MINE` resolves MINE's own partition file, even for an entry whose config
    still names the training machine's (before the fix: "partition file not found: /nonexistent/...")."""
    from tf_faceedit import api

    make_old_style_entry(zoo_copy)
    problems = maintain.verify(zoo_copy)["tiny-sagan"]
    assert len(problems) == 2 and "keeps data.partition_file: /nonexistent/train-machine/split9k.txt" in problems[1]
    model = tf_faceedit.load("tiny-sagan")
    assert (model.config.data.data_dir, model.config.data.partition_file) == ("", "")
    data_cfg, records = evaluation._records(model, "train", str(synthetic_celeba))  # what evaluate reads
    assert data_cfg.data_dir == str(synthetic_celeba) and len(records) == 38  # the user's list_eval_partition.txt
    # the user's own partition file: every image in "test" (absolute, or relative to --data_dir)
    names = sorted(p.name for p in (Path(synthetic_celeba) / "images").iterdir())
    split = tmp_path / "my_split.txt"
    split.write_text("".join(f"{name} 2\n" for name in names))
    mine = tf_faceedit.load(api.with_data("tiny-sagan", partition_file=str(split)))
    assert mine.config.data.partition_file == str(split)
    assert len(evaluation._records(mine, "test", str(synthetic_celeba))[1]) == len(names) == 48
    with pytest.raises(ConfigError, match="only the data locations"):
        api.with_data("tiny-sagan", image_size=3)


def test_evaluate_cli_on_a_zoo_model_with_data_dir_alone(zoo_copy, synthetic_celeba, tmp_path, monkeypatch, capsys):
    make_old_style_entry(zoo_copy)
    monkeypatch.chdir(tmp_path)
    common = ["--model", "tiny-sagan", "--data_dir", str(synthetic_celeba), "--max_images", "2", "--batch_size", "2"]
    assert evaluate.main([*common, "--split", "train", "--quiet"]) == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "eval" / "tiny-sagan" / "train" / "metrics.json").read_text())
    assert report["data_dir"] == str(synthetic_celeba)
    split = tmp_path / "my_split.txt"
    split.write_text("".join(f"{p.name} 2\n" for p in sorted((Path(synthetic_celeba) / "images").iterdir())))
    assert evaluate.main([*common, "--split", "test", "--set", f"data.partition_file={split}", "--quiet"]) == 0
    assert json.loads((tmp_path / "eval" / "tiny-sagan" / "test" / "metrics.json").read_text())["model_dir"] == (
        "tiny-sagan"
    )
    capsys.readouterr()
    missing = tmp_path / "nope.txt"
    assert evaluate.main([*common, "--set", f"data.partition_file={missing}", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"partition file not found: {missing}" in err  # the user's file, named
    assert evaluate.main([*common, "--set", "data.data_dir=x", "--quiet"]) == 2
    assert "the dataset folder is --data_dir" in capsys.readouterr().err


def test_cli_lists_one_name_per_line(tiny):
    env = {**os.environ, zoo.ENV_VAR: str(tiny.root), "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "tf_faceedit.pretrained"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert [line.split()[0] for line in lines] == sorted(TINY)
    assert "sagan: Eyeglasses at 32x32 (float16)" in lines[1]
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from tf_faceedit.pretrained.__main__ import main; "
            "main([]); print(sorted(m for m in sys.modules if m in ('tensorflow', 'keras')))",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert imported.stdout.splitlines()[-1] == "[]", imported.stderr  # listing starts no TensorFlow
    show = subprocess.run(
        [sys.executable, "-m", "tf_faceedit.pretrained", "show", "tiny-sagan", "--root", str(tiny.root)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert show.returncode == 0 and show.stdout == CARD


def test_add_refusals(tiny, tmp_path):
    root = tmp_path / "zoo"
    shutil.copytree(tiny.root, root)
    run = tiny.runs["tiny-sagan"]
    before = (root / "manifest.json").read_text()
    with pytest.raises(ConfigError, match="already exists .* --replace"):
        maintain.add(run, "tiny-sagan", tiny.card, root=root)
    with pytest.raises(ConfigError, match="--name 'Tiny/Sagan' must be lowercase"):
        maintain.add(run, "Tiny/Sagan", tiny.card, root=root)
    with pytest.raises(ConfigError, match="--dtype must be one of float16, float32"):
        maintain.add(run, "other", tiny.card, dtype="bfloat16", root=root)
    for text, pattern in (
        ("# x\nno terms here\n", "non-commercial research terms"),
        (ROOT.joinpath("tf_faceedit/pretrained/CARD_TEMPLATE.md").read_text(), "TODO"),
    ):
        card = tmp_path / "bad.md"
        card.write_text(text)
        with pytest.raises(ConfigError, match=pattern):
            maintain.add(run, "other", card, root=root)
    # the size budget: an entry that would take the zoo over its limit is refused, nothing written
    manifest = json.loads(before)
    manifest["max_total_bytes"] = maintain.total_bytes(manifest) + 1000
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match=r"would bring the zoo to [\d.]+ MB, over its [\d.]+ MB limit"):
        maintain.add(run, "other", tiny.card, root=root)
    assert json.loads((root / "manifest.json").read_text()) == manifest
    assert not (root / "other").exists() and not (root / "other.md").exists()
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == []
    # --replace rewrites the entry (here as float32), the other entry is kept
    (root / "manifest.json").write_text(before)
    entry = maintain.add(run, "tiny-sagan", tiny.card, dtype="float32", root=root, replace=True)
    assert entry.dtype == "float32" and zoo.names(root) == sorted(TINY)
    assert maintain.verify(root) == {"": [], **{name: [] for name in TINY}}


def test_inference_networks_must_reproduce_the_run(tiny, tmp_path, monkeypatch):
    spec = registry.get("sagan")
    forgot = dataclasses.replace(spec.capabilities, inference_networks=("discriminator",))  # the generator forgotten
    monkeypatch.setitem(registry.METHODS, "sagan", dataclasses.replace(spec, capabilities=forgot))
    with pytest.raises(ConfigError, match=r"inference_networks of sagan's registry.Capabilities miss a network"):
        maintain.add(tiny.runs["tiny-sagan"], "broken", tiny.card, root=tmp_path / "zoo")
    assert not any((tmp_path / "zoo").glob("broken*"))


def test_compare_dtypes(tiny):
    report = maintain.compare_dtypes(tiny.runs["tiny-sagan"], num_images=4)
    assert report["networks"] == ["generator", "discriminator"] and report["num_images"] == 4
    image = report["outputs"]["image"]
    assert 0 <= image["max_abs_diff"] <= 3 and (image["psnr"] is None or image["psnr"] > 35)
    assert report["outputs"]["attention"]["max_abs_diff"] < 1e-2


def test_model_flag_on_edit(zoo_env, photo, tmp_path, capsys):
    out = tmp_path / "edited.png"
    assert (
        edit.main(
            ["--model", "tiny-sagan", "--image", str(photo), "--set", "Eyeglasses=1", "--out", str(out), "--quiet"]
        )
        == 0
    )
    assert "1 face(s)" in capsys.readouterr().out and read_image(out).shape == read_image(photo).shape
    assert evaluate.main(["--model", "tiny-sagan", "--quiet"]) == 2
    assert "--model tiny-sagan is a zoo model: give --data_dir" in capsys.readouterr().err


@pytest.mark.slow
def test_model_flag_on_evaluate_and_export(zoo_env, synthetic_celeba, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        evaluate.main(
            [
                "--model",
                "tiny-sagan",
                "--data_dir",
                str(synthetic_celeba),
                "--split",
                "train",
                "--max_images",
                "4",
                "--batch_size",
                "4",
                "--quiet",
            ]
        )
        == 0
    )
    assert (tmp_path / "eval" / "tiny-sagan" / "train" / "metrics.json").is_file()  # not into the zoo
    assert export.main(["--model", "tiny-pggan", "--export_dir", str(tmp_path / "exports" / "p" / "1"), "--quiet"]) == 0
    assert json.loads((tmp_path / "exports" / "p" / "1" / "assets.extra" / "export.json").read_text())["method"] == (
        "pggan_completion"
    )


def test_demo_model_flag_resolves_zoo_names(zoo_env, monkeypatch):
    from tf_faceedit.apps.demo import handlers as demo_handlers
    from tf_faceedit.apps.demo import page as demo_page
    from tf_faceedit.cli import demo

    seen = {}
    monkeypatch.setattr(
        demo_page,
        "run",
        lambda model_dirs, export_dirs, **kw: seen.update(models=demo_handlers.load_models(model_dirs, export_dirs)),
    )
    assert demo.main(["--model", "tiny-sagan", "--quiet"]) == 0
    assert list(seen["models"]) == ["tiny-sagan"] and seen["models"]["tiny-sagan"].info["zoo"] == "tiny-sagan"


@pytest.mark.parametrize("method", model_runs.method_params(fast=set()))
def test_every_method_makes_a_zoo_entry(method, synthetic_celeba, tmp_path):
    """The entry of each method reproduces its run (add checks it: its Capabilities.inference_networks are complete)."""
    card = tmp_path / "card.md"
    card.write_text(CARD)
    run, _ = model_runs.checkpointed_run(method, synthetic_celeba, tmp_path / "run")
    entry = maintain.add(run, method.replace("_", "-"), card, root=tmp_path / "zoo")
    check_edits_synthetic_faces(tf_faceedit.load(entry.directory), entry)


# ---------------------------------------------------------------------------------------------------------------
# A zoo judge (method classifier, task "classify"): what `evaluate --classifier NAME` uses


@pytest.fixture(scope="module")
def judge_zoo(tmp_path_factory, synthetic_celeba):
    """namespace(root, run, card): a tiny classifier run (4 steps), its val accuracy report, and a zoo holding it
    as "tiny-judge" (float32, so that it judges exactly as its run)."""
    import types

    base = tmp_path_factory.mktemp("judge_zoo")
    card = base / "card.md"
    card.write_text(CARD)
    run = base / "run"
    driver.run(tiny_config("classifier", synthetic_celeba), run)
    with pytest.raises(ConfigError, match="newest checkpoint of its run"):
        maintain.add(run, "tiny-judge", card, checkpoint=run / "checkpoints" / "ckpt-00000002", root=base / "zoo")
    assert not classifier_lib.accuracy_path(run).exists()
    maintain.add(run, "tiny-judge", card, dtype="float32", root=base / "zoo")  # measures the val accuracy first
    assert json.loads(classifier_lib.accuracy_path(run).read_text())["split"] == "val"
    return types.SimpleNamespace(root=base / "zoo", run=run, card=card)


def test_a_zoo_judge_ships_its_val_accuracy_and_judges_as_its_run(judge_zoo, monkeypatch):
    monkeypatch.setenv(zoo.ENV_VAR, str(judge_zoo.root))
    entry = zoo.get("tiny-judge")
    assert (entry.method, entry.task, entry.networks) == ("classifier", "classify", ["classifier"])
    assert sorted(entry.files) == [
        "tiny-judge.md",
        "tiny-judge/classifier.weights.h5",
        "tiny-judge/classifier_accuracy.json",
        "tiny-judge/config.yaml",
    ]
    by_run, by_name = classifier_lib.load_classifier(judge_zoo.run), classifier_lib.load_classifier("tiny-judge")
    assert (by_name.attribute_names, by_name.image_size, by_name.step) == (
        by_run.attribute_names,
        by_run.image_size,
        by_run.step,
    )
    faces = maintain.synthetic_faces(4, HEIGHT, WIDTH)
    np.testing.assert_allclose(by_name.predict(faces), by_run.predict(faces), atol=1e-5)
    assert not np.allclose(by_name.predict(faces), by_name.predict(faces[::-1]), atol=1e-4)  # not a constant
    for metric in ("accuracy", "balanced_accuracy"):
        assert classifier_lib.load_or_evaluate_accuracy("tiny-judge", metric=metric) == (
            classifier_lib.load_or_evaluate_accuracy(judge_zoo.run, metric=metric)
        )
    assert maintain.verify(load=True) == {"": [], "tiny-judge": []}
    assert classifier_lib.load_classifier(entry.directory).step == by_run.step  # an entry folder, by path


def test_evaluate_with_a_zoo_judge_scores_as_with_its_run(judge_zoo, tiny, synthetic_celeba, tmp_path, monkeypatch):
    monkeypatch.setenv(zoo.ENV_VAR, str(judge_zoo.root))
    reports = {}
    for key, judge in (("run", str(judge_zoo.run)), ("zoo", "tiny-judge")):
        reports[key] = evaluation.evaluate(
            tiny.runs["tiny-sagan"],
            data_dir=synthetic_celeba,
            split="train",
            classifier=judge,
            max_images=4,
            batch_size=4,
            min_classifier_accuracy=0.0,
            out_dir=tmp_path / key,
            verbose=0,
            identity=False,  # the judges are compared, not the faces
        )
    assert reports["zoo"]["classifier"]["run"] == "tiny-judge"
    scored = [name for name, entry in reports["run"]["attributes"].items() if "success" in entry]
    assert scored, reports["run"]["attributes"]  # the judge scored something

    def flat(tree, prefix=""):
        out = {}
        for key, value in tree.items():
            out.update(flat(value, f"{prefix}{key}/") if isinstance(value, dict) else {f"{prefix}{key}": value})
        return out

    # the same judge scores the same edits; the edits' float measures may differ in the 8th digit run to run (oneDNN)
    zoo_scores, run_scores = flat(reports["zoo"]["attributes"]), flat(reports["run"]["attributes"])
    assert zoo_scores.keys() == run_scores.keys()
    for key, value in run_scores.items():
        assert zoo_scores[key] == (pytest.approx(value, rel=1e-6) if isinstance(value, float) else value), key
    assert reports["zoo"]["classifier"]["accuracy"] == reports["run"]["classifier"]["accuracy"]


def test_zoo_judge_refusals(judge_zoo, tiny, tmp_path, monkeypatch):
    root = tmp_path / "zoo"
    shutil.copytree(judge_zoo.root, root)
    monkeypatch.setenv(zoo.ENV_VAR, str(root))
    with pytest.raises(ConfigError, match="task 'classify'.*load_classifier"):
        tf_faceedit.load("tiny-judge")
    with pytest.raises(ConfigError, match="'test' split|not 'test'"):
        classifier_lib.load_or_evaluate_accuracy("tiny-judge", split="test")
    with pytest.raises(ConfigError, match="unknown model 'tiny-jugde'.*tiny-judge"):
        classifier_lib.load_classifier("tiny-jugde")
    monkeypatch.setenv(zoo.ENV_VAR, str(tiny.root))
    with pytest.raises(ConfigError, match="tiny-sagan is a 'sagan' model, not an attribute classifier"):
        classifier_lib.load_classifier("tiny-sagan")
    monkeypatch.setenv(zoo.ENV_VAR, str(root))
    report = root / "tiny-judge" / "classifier_accuracy.json"
    report.write_text(report.read_text().replace('"split": "val"', '"split": "val" '))
    with pytest.raises(DataError, match="classifier_accuracy.json is corrupted"):
        classifier_lib.load_or_evaluate_accuracy("tiny-judge", metric="balanced_accuracy")
    assert any("corrupted" in p for p in maintain.verify(root)["tiny-judge"])


# ---------------------------------------------------------------------------------------------------------------
# The packaged zoo (tf_faceedit/pretrained): every released entry


PACKAGED = Path(zoo.__file__).resolve().parent


def packaged_entries(tasks=("edit", "complete")):
    return [pytest.param(entry, id=entry.name) for entry in zoo.entries(PACKAGED) if entry.task in tasks]


def test_packaged_manifest_is_well_formed():
    report = maintain.verify(PACKAGED)
    assert report.pop("") == []
    assert all(problems == [] for problems in report.values()), report
    manifest = json.loads((PACKAGED / "manifest.json").read_text())
    assert maintain.total_bytes(manifest) <= zoo.MAX_TOTAL_BYTES
    assert [e["name"] for e in manifest["entries"]] == sorted(e["name"] for e in manifest["entries"])


@pytest.mark.parametrize("entry", packaged_entries(tasks=zoo.TASKS))
def test_packaged_entry_names_no_path_of_the_training_machine(entry):
    """A released config.yaml keeps what describes the model; where it was trained is the manifest's provenance."""
    saved = config_of(entry)
    assert absolute_paths(saved) == [], absolute_paths(saved)
    assert maintain.machine_paths(saved) == {}
    assert saved["data"]["attributes"] == entry.attributes and saved["data"]["image_size"] == entry.image_size
    assert entry.data["provenance"]["data.partition_file"]  # the training split stays on record


@pytest.mark.parametrize("entry", packaged_entries())
def test_packaged_entry_loads_and_edits(entry, monkeypatch):
    monkeypatch.delenv(zoo.ENV_VAR, raising=False)
    zoo.check_files(entry)  # every file matches the manifest (sha256, size)
    assert entry.dtype in maintain.DTYPES and entry.task in ("edit", "complete")
    maintain.check_card(entry.card, flag="card")
    model = tf_faceedit.load(entry.name)
    assert (model.method, model.task, model.attribute_names, model.image_size) == (
        entry.method,
        entry.task,
        entry.attributes,
        entry.image_size,
    )
    assert model.info["step"] == entry.step and model.info["dtype"] == entry.dtype
    check_edits_synthetic_faces(model, entry)


@pytest.mark.parametrize("entry", packaged_entries())
def test_packaged_entry_export_matches_eager(entry, tmp_path, monkeypatch):
    monkeypatch.delenv(zoo.ENV_VAR, raising=False)
    check_export_matches_eager(entry.name, tmp_path, entry)


@pytest.mark.parametrize("entry", packaged_entries(tasks=("classify",)))
def test_packaged_judge_loads_classifies_and_gates(entry, monkeypatch):
    """A released judge: its files match the manifest, it classifies synthetic faces, and it carries the val
    accuracy of its run on every attribute it predicts (what `evaluate --classifier NAME` gates on)."""
    monkeypatch.delenv(zoo.ENV_VAR, raising=False)
    zoo.check_files(entry)
    maintain.check_card(entry.card, flag="card")
    assert maintain.check_model(entry) == []
    judge = classifier_lib.load_classifier(entry.name)
    assert judge.attribute_names == entry.attributes and judge.step == entry.step
    accuracy = classifier_lib.load_or_evaluate_accuracy(entry.name, metric="balanced_accuracy")
    assert set(accuracy) == set(entry.attributes) | {"mean"}
    assert all(0.5 <= accuracy[name] <= 1.0 for name in entry.attributes)


def test_cast_weights_file_compresses_large_arrays_losslessly(tmp_path):
    import h5py

    src, dst = tmp_path / "a.weights.h5", tmp_path / "b.weights.h5"
    rng = np.random.default_rng(0)
    with h5py.File(src, "w") as f:
        group = f.create_group("layers/conv/vars")
        group.create_dataset("0", data=rng.normal(size=(3, 3, 64, 64)).astype(np.float16))
        group.create_dataset("1", data=np.zeros(64, np.float16))
        f.attrs["keras"] = "x"
    assert maintain.cast_weights_file(src, dst, "float16") == []
    with h5py.File(src) as a, h5py.File(dst) as b:
        assert b["layers/conv/vars/0"].compression == "gzip"  # 36,864 values
        assert b["layers/conv/vars/1"].compression is None  # small: stored as is
        for key in ("0", "1"):
            np.testing.assert_array_equal(a[f"layers/conv/vars/{key}"][()], b[f"layers/conv/vars/{key}"][()])
        assert b.attrs["keras"] == "x"


def test_compact_keeps_every_entry_loading_and_verified(zoo_copy):
    before = {e.name: e.data["files"] for e in zoo.entries(zoo_copy)}
    sizes = maintain.compact(root=zoo_copy)
    assert set(sizes) == set(before)
    assert all(after <= size for size, after in sizes.values())
    problems = maintain.verify(zoo_copy, load=True)  # sha256 and size records, and each entry loads and runs
    assert not any(problems.values()), problems
