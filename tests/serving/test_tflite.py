"""TFLite export (`python -m tf_faceedit.export --format=tflite`) of every method's tiny checkpointed run: the
interpreter's outputs equal the exported SavedModel signature's on a fixed face (within 1 uint8 level for float32,
`FLOAT16_TOLERANCE` levels for float16), the attention/mask extras included, at batch 1 and 2; tflite.json; the CLI;
and the message for a generator that cannot convert. The default tier converts one method per task (sagan,
pggan_completion: the two signature layouts, as tests/serving/test_export.py); -m slow converts every method."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tests import model_runs
from tf_faceedit.cli import export as export_cli
from tf_faceedit.data.synthetic import make_face
from tf_faceedit.errors import ConfigError
from tf_faceedit.serving import export_lib, processing, tflite_export, tflite_runtime

# float extras (attention, content, latent): absolute tolerance
EXTRA_ATOL = {"float32": 1e-4, "float16": 0.01}

_TFLITE = {}


def tflite_run(method, tmp_path_factory, data_dir):
    """(exported SavedModel run, tflite export result), made once per method per session."""
    exported = model_runs.exported_run(method, tmp_path_factory, data_dir)
    if method not in _TFLITE:
        out = tmp_path_factory.mktemp(f"tflite_{method}") / "model"
        _TFLITE[method] = export_lib.export(exported.model_dir, out, format="tflite")
    return exported, _TFLITE[method]


def fixed_face(trainer, batch=1):
    """A drawn face at the model resolution (uint8 [batch, S, S, 3]; the second one mirrored), target attributes
    (every attribute flipped on the first face) and, for completion, a centred square hole."""
    size = trainer.config.data.image_size
    bgr, _ = make_face(0, 3)
    face = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)[20:198], (size, size), interpolation=cv2.INTER_AREA)
    images = np.stack([face, face[:, ::-1]][:batch])
    k = len(trainer.config.data.attributes)
    low, high = getattr(trainer, "attribute_range", (0.0, 1.0))
    attributes = np.stack([np.full(k, high), np.linspace(low, high, k)][:batch]).astype(np.float32)
    inputs = {"image": images, "attributes": attributes}
    if trainer.task == "complete":
        mask = np.zeros((batch, size, size, 1), np.uint8)
        mask[:, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 255
        inputs["mask"] = mask
    return inputs


@pytest.mark.parametrize("method", model_runs.method_params(fast={"sagan"}))
def test_tflite_matches_the_saved_model_signature(method, tmp_path_factory, synthetic_celeba):
    exported, result = tflite_run(method, tmp_path_factory, synthetic_celeba)
    trainer = exported.trainer
    signature = tf.saved_model.load(str(exported.export_dir)).signatures["serving_default"]
    images = processing.EDIT_OUTPUTS if trainer.task == "edit" else processing.COMPLETE_OUTPUTS
    assert sorted(result["files"]) == ["float16", "float32"]
    for batch in (1, 2):
        inputs = fixed_face(trainer, batch)
        expected = {k: v.numpy() for k, v in signature(**{n: tf.constant(v) for n, v in inputs.items()}).items()}
        for precision, path in result["files"].items():
            runner = tflite_runtime.make_interpreter(path).get_signature_runner("serving_default")
            got = runner(**inputs)
            assert sorted(got) == sorted(expected), f"{precision}: outputs {sorted(got)} != {sorted(expected)}"
            tolerance = tflite_export.FLOAT32_TOLERANCE if precision == "float32" else tflite_export.FLOAT16_TOLERANCE
            for key, want in expected.items():
                assert got[key].shape == want.shape and got[key].dtype == want.dtype, (precision, key)
                if key in images:
                    diff = np.abs(got[key].astype(np.int32) - want.astype(np.int32)).max()
                    assert diff <= tolerance, f"{method} {precision} {key}: {diff} levels off (batch {batch})"
                else:
                    np.testing.assert_allclose(
                        got[key], want, atol=EXTRA_ATOL[precision], err_msg=f"{method} {precision} {key}"
                    )
            if trainer.task == "complete":  # outside the hole: the input exactly
                outside = np.broadcast_to(inputs["mask"] == 0, got["completed"].shape)
                np.testing.assert_array_equal(got["completed"][outside], inputs["image"][outside])


def test_tflite_json_and_the_cli(tmp_path_factory, synthetic_celeba, tmp_path, capsys):
    exported, result = tflite_run("sagan", tmp_path_factory, synthetic_celeba)
    info = json.loads((Path(result["export_dir"]) / "tflite.json").read_text())
    size = exported.trainer.config.data.image_size
    assert info["method"] == "sagan" and info["task"] == "edit" and info["image_size"] == size
    assert info["inputs"]["image"] == {"dtype": "uint8", "shape": [-1, size, size, 3]}
    assert info["inputs"]["attributes"]["shape"] == [-1, len(info["attribute_names"])]
    assert sorted(info["outputs"]) == ["attention", "image"] and info["files"]["float32"]["bytes"] > 0
    out = tmp_path / "cli"
    assert (
        export_cli.main(
            [
                "--model_dir",
                str(exported.model_dir),
                "--format=tflite",
                "--precision=float16",
                "--export_dir",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert "as TFLite: float16" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["model_float16.tflite", "tflite.json"]
    assert (
        export_cli.main(
            ["--model_dir", str(exported.model_dir), "--format=tflite", "--export_dir", str(out), "--quiet"]
        )
        == 2
    )
    assert "already exists and is not an empty folder" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--format must be one of savedmodel, tflite"):
        export_lib.export(exported.model_dir, tmp_path / "x", format="onnx")


class _SvdTrainer:
    """A stand-in trainer whose 'generator' uses an op without a TFLite builtin kernel."""

    task = "edit"

    def __init__(self):
        self.layer = tf.keras.layers.Dense(3)
        self.layer.build((None, 3))
        self.networks = {"generator": self.layer}

    def infer(self, inputs):
        image = inputs["image"]
        singular = tf.linalg.svd(tf.reshape(image, [-1, 4, 12]), compute_uv=False)  # [N, 4]
        shift = tf.reshape(tf.reduce_mean(singular, axis=-1), [-1, 1, 1, 1]) * 0.0
        return {"image": tf.tanh(self.layer(image) + shift)}


def test_a_generator_that_cannot_convert_is_named_with_its_ops():
    with pytest.raises(ConfigError) as info:
        tflite_export.convert(_SvdTrainer(), "edit", 4, 1, ("float32",), method="svdgan")
    message = str(info.value)
    assert "method 'svdgan' cannot be exported to TFLite" in message and "Svd" in message
    assert "--format=savedmodel" in message and "\n" not in message
    with pytest.raises(ConfigError, match="--precision must be one of float32, float16"):
        tflite_export.convert(_SvdTrainer(), "edit", 4, 1, ("int8",))


def test_a_residual_fader_converts_and_matches_its_saved_model(tmp_path, synthetic_celeba):
    # model.residual_edit finds the input's own attributes among the {0, 1} corners: the ops it uses must convert
    # (Keras' argmin on TensorFlow does not: tf.BitwiseAnd), so must the high-pass's depthwise blurs, and the
    # interpreter must give the signature's output
    options = {"model.residual_edit": True, "model.residual_gain": 2.0, "model.residual_highpass_sigma": 4.0}
    model_dir, trainer = model_runs.checkpointed_run("fader", synthetic_celeba, tmp_path / "run", **options)
    saved = export_lib.export(model_dir, tmp_path / "exports" / "fader" / "1")
    lite = export_lib.export(model_dir, tmp_path / "lite", format="tflite")
    signature = tf.saved_model.load(str(saved["export_dir"])).signatures["serving_default"]
    inputs = fixed_face(trainer, 2)
    expected = signature(**{n: tf.constant(v) for n, v in inputs.items()})["image"].numpy()
    runner = tflite_runtime.make_interpreter(lite["files"]["float32"]).get_signature_runner("serving_default")
    got = runner(**inputs)["image"]
    assert np.abs(got.astype(np.int32) - expected.astype(np.int32)).max() <= tflite_export.FLOAT32_TOLERANCE
