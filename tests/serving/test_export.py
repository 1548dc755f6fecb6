"""SavedModel export of every registered method (tiny checkpointed runs, one export per method per session):
the TF Serving loader (`saved_model_cli`), signature == eager model within +-1, metadata, input validation,
version-dir rules, the `.keras` networks and their reuse inside a user's Keras model."""

import errno
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import model_runs
from tf_faceedit.cli import export as export_cli
from tf_faceedit.data.celeba import denormalize
from tf_faceedit.errors import ConfigError, ExportError, TrainingError
from tf_faceedit.methods.pggan_completion import PGGANCompletionDiscriminator, PGGANCompletionGenerator
from tf_faceedit.serving import export_lib, processing

ROOT = Path(__file__).resolve().parents[2]
HEIGHT, WIDTH = 40, 36  # non-square, not the model size


@pytest.fixture(scope="module", params=model_runs.method_params())
def exported(request, tmp_path_factory, synthetic_celeba):
    return model_runs.exported_run(request.param, tmp_path_factory, synthetic_celeba)


def example_requests(trainer, n=2, seed=0):
    rng = np.random.RandomState(seed)
    k = len(trainer.config.data.attributes)
    inputs = {
        "image": rng.randint(0, 256, (n, HEIGHT, WIDTH, 3)).astype(np.uint8),
        "attributes": rng.randint(0, 2, (n, k)).astype(np.float32),
    }
    if trainer.task == "complete":
        mask = np.zeros((n, HEIGHT, WIDTH, 1), np.uint8)
        mask[:, 8:27, 5:22] = 255
        if n > 1:
            mask[1, 30:, 30:] = 1
        inputs["mask"] = mask
    return inputs


def image_keys(task):
    return processing.EDIT_OUTPUTS if task == "edit" else processing.COMPLETE_OUTPUTS


def eager_reference(trainer, inputs):
    """The eager model: the trainer's `infer` on the preprocessed inputs, post-processed here with numpy's
    uint8 conversion (`data.celeba.denormalize`) and the compositing written out."""
    size = trainer.config.data.image_size
    model_inputs = {
        "image": processing.preprocess_images(inputs["image"], size),
        "attributes": tf.constant(inputs["attributes"]),
    }
    if trainer.task == "complete":
        model_inputs["mask"] = processing.preprocess_masks(inputs["mask"], size)
    out = trainer.infer(model_inputs)
    ref = {}
    for key, value in out.items():
        value = np.asarray(value, np.float32)
        if key in image_keys(trainer.task):
            resized = tf.image.resize(value, (HEIGHT, WIDTH), method="bilinear", antialias=True).numpy()
            ref[key] = denormalize(resized)
        else:
            ref[key] = value
    if trainer.task == "complete":
        ref["completed"] = np.where(inputs["mask"] != 0, ref["completed"], inputs["image"])
    return ref


# Two TensorFlow start-ups per method: the default tier runs one method per task (the two signature layouts), every
# method runs with -m slow.
@pytest.mark.parametrize("method", model_runs.method_params(fast={"sagan"}))
def test_saved_model_cli_show_and_run(method, tmp_path_factory, synthetic_celeba, tmp_path):
    """The loader TF Serving uses (a TF1 session on the MetaGraph) serves the signature."""
    exported = model_runs.exported_run(method, tmp_path_factory, synthetic_celeba)
    trainer, export_dir = exported.trainer, exported.export_dir
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    show = subprocess.run(
        ["saved_model_cli", "show", "--all", "--dir", str(export_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert show.returncode == 0, show.stderr[-2000:]
    for name in ("serving_default", "metadata"):
        assert f"signature_def['{name}']" in show.stdout
    assert "inputs['image']" in show.stdout and "inputs['attributes']" in show.stdout
    assert ("inputs['mask']" in show.stdout) == (trainer.task == "complete")

    inputs = example_requests(trainer, n=1)
    files = []
    for key in ("image", "mask"):
        if key in inputs:
            np.save(tmp_path / f"{key}.npy", inputs[key])
            files.append(f"{key}={tmp_path / f'{key}.npy'}")
    attributes = repr(inputs["attributes"].tolist())
    run = subprocess.run(
        [
            "saved_model_cli",
            "run",
            "--dir",
            str(export_dir),
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            ";".join(files),
            "--input_exprs",
            f"attributes={attributes}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    printed = set(re.findall(r"Result for output key (\w+):", run.stdout))
    assert printed == set(eager_reference(trainer, inputs)), run.stdout[-2000:]


def test_signature_matches_eager_model(exported):
    trainer = exported.trainer
    loaded = tf.saved_model.load(str(exported.export_dir))
    inputs = example_requests(trainer, n=2, seed=1)
    out = {k: v.numpy() for k, v in loaded.signatures["serving_default"](**inputs).items()}
    ref = eager_reference(trainer, inputs)
    assert set(out) == set(ref)
    for key in image_keys(trainer.task):
        assert out[key].dtype == np.uint8 and out[key].shape == (2, HEIGHT, WIDTH, 3)
        diff = np.abs(out[key].astype(int) - ref[key].astype(int))
        assert diff.max() <= 1, (key, diff.max())
    for key in set(out) - set(image_keys(trainer.task)):
        assert out[key].dtype == np.float32
        np.testing.assert_allclose(out[key], ref[key], atol=1e-4)
    if trainer.task == "complete":
        known = inputs["mask"][..., 0] == 0
        np.testing.assert_array_equal(out["completed"][known], inputs["image"][known])
        assert np.any(out["completed"][~known] != inputs["image"][~known])
    if "attention" in out:
        s = trainer.config.data.image_size
        assert out["attention"].shape[:3] == (2, s, s)
        assert out["attention"].min() >= 0 and out["attention"].max() <= 1


def test_metadata_signature(exported):
    cfg = exported.trainer.config
    loaded = tf.saved_model.load(str(exported.export_dir))
    meta = {k: v.numpy() for k, v in loaded.signatures["metadata"]().items()}
    assert meta["method"].decode() == cfg.method
    assert meta["task"].decode() == exported.trainer.task
    assert [n.decode() for n in meta["attribute_names"]] == list(cfg.data.attributes)
    assert meta["image_size"].dtype == np.int32 and int(meta["image_size"]) == cfg.data.image_size
    assert tuple(meta["attribute_range"].tolist()) == exported.trainer.attribute_range  # fader (-1, 2), others (0, 1)
    assert ("predict_attributes" in loaded.signatures) == callable(
        getattr(exported.trainer, "predict_attributes", None)
    )


def test_wrong_attribute_count_is_invalid_argument_naming_attributes(exported):
    loaded = tf.saved_model.load(str(exported.export_dir))
    inputs = example_requests(exported.trainer, n=1)
    k = inputs["attributes"].shape[1]
    inputs["attributes"] = np.zeros((1, k + 1), np.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"attributes must have {k} values"):
        loaded.signatures["serving_default"](**inputs)


def test_non_finite_attributes_are_invalid_argument(exported):
    loaded = tf.saved_model.load(str(exported.export_dir))
    inputs = example_requests(exported.trainer, n=1)
    inputs["attributes"] = np.full_like(inputs["attributes"], np.nan)
    with pytest.raises(tf.errors.InvalidArgumentError, match="attributes must be finite numbers"):
        loaded.signatures["serving_default"](**inputs)


def test_exported_keras_networks_load_without_custom_objects(exported):
    extra = exported.export_dir / export_lib.EXTRA_DIR
    networks = exported.trainer.export_networks()
    assert sorted(p.stem for p in extra.glob("*.keras")) == sorted(networks)
    for name, network in networks.items():
        loaded = keras.models.load_model(extra / f"{name}.keras")
        inputs = example_network_inputs(network)
        if inputs is None:  # no known input structure: compare the weights
            for a, b in zip(network.weights, loaded.weights, strict=True):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
            continue
        expected = keras.tree.map_structure(np.asarray, network(inputs, training=False))
        got = keras.tree.map_structure(np.asarray, loaded(inputs, training=False))
        keras.tree.map_structure(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), expected, got)


def example_network_inputs(network, n=2):
    """Random inputs of a network: functional models from their Input layers; the progressive pggan models at
    their current stage."""
    rng = np.random.RandomState(3)
    if isinstance(network, PGGANCompletionGenerator):
        r = network.current_resolution
        return {
            "image": rng.uniform(-1, 1, (n, r, r, 3)).astype("float32"),
            "mask": (rng.uniform(size=(n, r, r, 1)) > 0.5).astype("float32"),
            "attributes": rng.randint(0, 2, (n, network.num_attributes)).astype("float32"),
        }
    if isinstance(network, PGGANCompletionDiscriminator):
        r = network.current_resolution
        return rng.uniform(-1, 1, (n, r, r, 3)).astype("float32")
    try:
        structure = network.input
    except (AttributeError, ValueError):
        return None
    return keras.tree.map_structure(
        lambda t: rng.uniform(-1, 1, (n,) + tuple(t.shape[1:])).astype("float32"), structure
    )


@pytest.mark.slow  # a fresh process (~8 s)
def test_keras_networks_load_in_a_fresh_process(tmp_path_factory, synthetic_celeba):
    """`import tf_faceedit.methods` (it registers the layers) is all a fresh process needs, for functional and
    progressive (subclassed) networks alike; the progressive ones come back at their export stage."""
    paths = []
    for method in ("sagan", "pggan_completion"):
        run = model_runs.exported_run(method, tmp_path_factory, synthetic_celeba)
        paths += sorted(str(p) for p in (run.export_dir / export_lib.EXTRA_DIR).glob("*.keras"))
    code = (
        "import sys, keras, tf_faceedit.methods\n"
        "for p in sys.argv[1:]:\n"
        "    m = keras.models.load_model(p)\n"
        "    print(p, type(m).__name__, getattr(m, 'stage', '-'), m.count_params())\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == len(paths) == 4
    pggan = [line for line in lines if "PGGANCompletion" in line]
    assert len(pggan) == 2 and all(line.split()[2] == "1" for line in pggan)  # 4 -> 8: final stage 1


def test_composite_model_reuse(tmp_path_factory, synthetic_celeba, tmp_path):
    """A loaded SaGAN generator as a layer of a user's functional model with a uint8 Rescaling front end; the
    composite saves and reloads with identical outputs."""
    run = model_runs.exported_run("sagan", tmp_path_factory, synthetic_celeba)
    generator = keras.models.load_model(run.export_dir / export_lib.EXTRA_DIR / "generator.keras")
    s, k = run.trainer.config.data.image_size, len(run.trainer.config.data.attributes)
    pixels = keras.Input((s, s, 3), name="pixels")
    wanted = keras.Input((k,), name="wanted")
    scaled = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="to_unit_range")(pixels)
    out = generator({"image": scaled, "attributes": wanted})
    to_pixels = keras.layers.Rescaling(127.5, offset=127.5, name="to_pixels")(out["image"])
    composite = keras.Model({"pixels": pixels, "wanted": wanted}, {"edited": to_pixels, "attention": out["attention"]})
    rng = np.random.RandomState(5)
    inputs = {
        "pixels": rng.randint(0, 256, (2, s, s, 3)).astype("float32"),
        "wanted": rng.randint(0, 2, (2, k)).astype("float32"),
    }
    first = {key: np.asarray(v) for key, v in composite(inputs).items()}
    direct = run.trainer.generator({"image": inputs["pixels"] / 127.5 - 1.0, "attributes": inputs["wanted"]})
    np.testing.assert_allclose(first["edited"], (np.asarray(direct["image"]) + 1.0) * 127.5, atol=1e-3)
    composite.save(tmp_path / "composite.keras")
    reloaded = keras.models.load_model(tmp_path / "composite.keras")
    second = {key: np.asarray(v) for key, v in reloaded(inputs).items()}
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


def test_version_dir_rules(tmp_path_factory, synthetic_celeba, tmp_path, capsys):
    run = model_runs.exported_run("sagan", tmp_path_factory, synthetic_celeba)
    with pytest.raises(ConfigError, match="already exists"):
        export_lib.export(run.model_dir, run.export_dir)
    with pytest.raises(ConfigError, match="integer version"):
        export_lib.export(run.model_dir, tmp_path / "sagan" / "latest")
    # the CLI reports it in one line, exit code 2
    assert export_cli.main(["--model_dir", str(run.model_dir), "--export_dir", str(tmp_path / "x" / "v1")]) == 2
    assert "error: --export_dir" in capsys.readouterr().err
    assert not (tmp_path / "x" / "v1").exists()
    # nothing half-written is left next to the versions
    assert sorted(p.name for p in run.export_dir.parent.iterdir()) == ["1"]


def test_checkpoint_of_another_config_is_refused(tmp_path_factory, synthetic_celeba, tmp_path):
    run = model_runs.exported_run("sagan", tmp_path_factory, synthetic_celeba)
    other_dir, _ = model_runs.checkpointed_run("sagan", synthetic_celeba, tmp_path / "other", **{"model.g_filters": 8})
    other_ckpt = sorted((other_dir / "checkpoints").iterdir())[-1]
    with pytest.raises(ConfigError, match="another config.*model.g_filters"):
        export_lib.export(run.model_dir, tmp_path / "e" / "1", checkpoint=other_ckpt)
    # the same checkpoint moved away from its run (no config.yaml to compare): the weights do not fit
    loose = shutil.copytree(other_ckpt, tmp_path / "loose" / other_ckpt.name)
    with pytest.raises(TrainingError, match="does not match this model's network"):
        export_lib.export(run.model_dir, tmp_path / "e" / "1", checkpoint=loose)
    assert not (tmp_path / "e" / "1").exists()


def test_processing_matches_the_training_pipeline():
    """The serving resize is the data pipeline's (`decode_and_resize` on a square image) and to_uint8 is
    `denormalize`."""
    from tf_faceedit.data.celeba import decode_and_resize

    rng = np.random.RandomState(0)
    square = rng.randint(0, 256, (1, 30, 30, 3)).astype(np.uint8)
    pipeline = decode_and_resize(tf.io.encode_png(square[0]), 16).numpy().astype(np.float32) / 127.5 - 1.0
    np.testing.assert_allclose(processing.preprocess_images(square, 16).numpy()[0], pipeline, atol=1e-6)
    values = rng.uniform(-1.2, 1.2, (2, 5, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(processing.to_uint8(values).numpy(), denormalize(values))
    mask = np.zeros((1, 30, 30, 1), np.uint8)
    mask[0, 0, 0] = 7  # one hole pixel makes its whole model pixel a hole
    small = processing.preprocess_masks(mask, 10).numpy()
    assert small[0, 0, 0, 0] == 1.0 and small.sum() == 1.0


# ---------------------------------------------------------------------------------------------------------------
# The table of formats and its driver: disk faults are the driver's, for every format


def _full_disk_savedmodel(monkeypatch):
    """TensorFlow's SaveV2 on a full disk: some variable bytes written, then ResourceExhaustedError."""

    def save(obj, export_dir, *args, **kwargs):
        variables = Path(export_dir) / "variables"
        variables.mkdir(parents=True, exist_ok=True)
        (variables / "variables.data-00000-of-00001").write_bytes(b"\0" * 64)
        raise tf.errors.ResourceExhaustedError(
            None, None, f"{variables}/variables_temp/part-00000-of-00001; No space left on device [Op:SaveV2]"
        )

    monkeypatch.setattr(tf.saved_model, "save", save)


def _full_disk_tflite(monkeypatch):
    """Python's write of a .tflite file on a full disk: half the bytes written, then OSError(ENOSPC)."""
    write_bytes = Path.write_bytes

    def write(self, data):
        if self.suffix == ".tflite":
            write_bytes(self, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", write)


FULL_DISK = {"savedmodel": _full_disk_savedmodel, "tflite": _full_disk_tflite}  # one entry per export format


def test_every_export_format_has_a_full_disk_test():
    assert sorted(FULL_DISK) == sorted(export_lib.FORMATS), "add the new format's full-disk fault to FULL_DISK"


@pytest.mark.parametrize("format", sorted(FULL_DISK))
def test_a_full_disk_is_one_line_naming_the_export_folder(
    format, tmp_path_factory, synthetic_celeba, tmp_path, monkeypatch, capsys
):
    run = model_runs.exported_run("sagan", tmp_path_factory, synthetic_celeba)
    FULL_DISK[format](monkeypatch)
    export_dir = tmp_path / "exports" / "sagan" / "1"
    args = ["--model_dir", str(run.model_dir), "--export_dir", str(export_dir), "--format", format, "--quiet"]
    assert export_cli.main(args) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err and len(errors) == 1, err[-3000:]
    assert f"no space left on the disk of --export_dir {export_dir}" in errors[0], errors
    assert not (tmp_path / "exports").exists(), "a partial export (or the folders made for it) was left behind"


def test_a_new_format_is_one_writer_in_the_table(tmp_path_factory, synthetic_celeba, tmp_path, monkeypatch, capsys):
    """A format added to FORMATS gets the driver's plumbing: restore, the folder rule, the atomic rename, the
    result fields, the CLI, and the one-line full-disk error with nothing left behind."""
    run = model_runs.exported_run("sagan", tmp_path_factory, synthetic_celeba)

    def write(source, folder, export_dir, fill=False):
        (folder / "networks.txt").write_text("\n".join(sorted(source.trainer.export_networks())))
        if fill:
            raise OSError(errno.ENOSPC, "No space left on device", str(folder / "networks.txt"))
        return {"files": [str(export_dir / "networks.txt")]}

    fmt = export_lib.ExportFormat(
        write, export_lib.check_export_dir, lambda result: f" as text: {result['files']}", options=("fill",)
    )
    monkeypatch.setitem(export_lib.FORMATS, "text", fmt)
    result = export_lib.export(run.model_dir, tmp_path / "a" / "1", format="text")
    assert result["method"] == "sagan" and result["step"] == run.result["step"] and result["files"]
    assert "generator" in (tmp_path / "a" / "1" / "networks.txt").read_text().splitlines()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["1"]
    args = ["--model_dir", str(run.model_dir), "--export_dir", str(tmp_path / "b" / "1"), "--format=text", "--quiet"]
    assert export_cli.main(args) == 0 and " as text: " in capsys.readouterr().out
    with pytest.raises(ExportError, match=r"^no space left on the disk of --export_dir .*c/1 \(.*networks.txt\)"):
        export_lib.export(run.model_dir, tmp_path / "c" / "1", format="text", fill=True)
    assert not (tmp_path / "c").exists()
    with pytest.raises(ConfigError, match="--format=text takes no option precisions"):
        export_lib.export(run.model_dir, tmp_path / "d" / "1", format="text", precisions=("float16",))
