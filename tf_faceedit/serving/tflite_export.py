"""On-device export: a trained run's generator as TensorFlow Lite models (float32 and float16).

    result = export_lib.export("runs/sagan_quick", "exports/sagan_tflite", format="tflite")  # tf-faceedit export
    flatbuffers = convert(trainer, "edit", 64, 2)        # {precision: bytes}, no files (benchmarks, tests)

Layout of `export_dir` (a new folder):
  model_float32.tflite    float32 weights and compute
  model_float16.tflite    float16 weights (half the size), dequantized to float32 by the interpreter on CPU (GPU
                          delegates compute in float16)
  tflite.json             method, task, attribute_names, image_size, attribute_range, the inputs and outputs, and
                          for each file its precision, size and the tolerance the tests hold it to

Contract: the SavedModel `serving_default` contract at the model resolution S (the only size on-device: the app
aligns the face to S x S first, e.g. with `tf_faceedit.data.align` or the platform's face detector), with builtin
TFLite ops only (no Flex delegate needed):
  inputs  (signature "serving_default", by name; the batch N is dynamic: the signature runner resizes)
    image       uint8 [N, S, S, 3]
    attributes  float32 [N, K] target values (in the metadata's attribute_range)
    mask        uint8 [N, S, S, 1], nonzero = hole (completion models only)
  outputs
    edit:      image uint8 [N, S, S, 3] + the method's extras (attention float32 [N, S, S, n] in [0, 1], content,
               latent, ...)
    complete:  completed uint8 [N, S, S, 3] (the input outside the hole exactly), raw uint8 [N, S, S, 3]
The numbers are those of the SavedModel signature on an S x S input (its resize is then the identity): [-1, 1]
by x / 127.5 - 1, back by clip(round((y + 1) * 127.5), 0, 255). The tests hold float32 to within 1 level of the
SavedModel signature and float16 to within `FLOAT16_TOLERANCE` levels.

A method whose generator uses an op TFLite has no builtin kernel for cannot be converted; the export then raises
`ConfigError` naming the method and the ops. `write` is this format's entry in `export_lib.FORMATS` (the driver
there restores the model, owns the folder and its disk faults).
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import tensorflow as tf

from tf_faceedit import images as images_lib
from tf_faceedit import io_util, registry
from tf_faceedit.errors import ConfigError
from tf_faceedit.serving import processing
from tf_faceedit.serving.tflite_runtime import make_interpreter

log = logging.getLogger("tf_faceedit")

PRECISIONS = ("float32", "float16")
FLOAT32_TOLERANCE = 1  # uint8 levels, against the SavedModel signature
# float16 weights (rounded to 11 significant bits; the CPU interpreter computes in float32): measured at most 1 level
# off the SavedModel signature on the zoo's sagan-eyeglasses-64 (16 CelebA faces) and on every method's tiny model
FLOAT16_TOLERANCE = 2
SIGNATURE_KEY = "serving_default"


def check_export_dir(export_dir: str | Path) -> Path:
    """A new (or empty) folder for the .tflite files."""
    export_dir = Path(export_dir)
    if export_dir.exists() and (not export_dir.is_dir() or any(export_dir.iterdir())):
        raise ConfigError(
            f"--export_dir {export_dir} already exists and is not an empty folder; export TFLite models to a new folder"
        )
    io_util.check_output_dir(export_dir, "--export_dir")
    return export_dir


def fixed_size_function(
    trainer: Any, task: str, image_size: int, num_attributes: int, batch_size: int | None = None
) -> Callable[..., dict[str, tf.Tensor]]:
    """The `tf.function` converted: uint8 S x S in, uint8 S x S out (see the module docstring)."""
    size, k = int(image_size), int(num_attributes)
    image_spec = tf.TensorSpec([batch_size, size, size, 3], tf.uint8, name="image")
    attributes_spec = tf.TensorSpec([batch_size, k], tf.float32, name="attributes")
    outputs = processing.EDIT_OUTPUTS if task == "edit" else processing.COMPLETE_OUTPUTS

    def run(image, attributes, mask=None):
        # TFLite's comparison and select kernels take no uint8: masks and compositing are done in float32 (exact,
        # the values are integers).
        pixels = tf.cast(image, tf.float32)
        inputs = {"image": images_lib.to_float_tf(pixels), "attributes": attributes}
        if mask is not None:
            hole = tf.cast(tf.cast(mask, tf.float32) > 0.0, tf.float32)
            inputs["mask"] = hole
        out = dict(trainer.infer(inputs))
        result = {key: tf.cast(value, tf.float32) for key, value in out.items() if key not in outputs}
        for key in outputs:
            value = tf.cast(out[key], tf.float32)
            if value.shape[1] != size:  # a progressive model stopped below S: upsample as the signature does
                value = tf.image.resize(value, [size, size], method="bilinear")
            result[key] = value
        if mask is not None:  # the input outside the hole exactly, as the SavedModel signature
            model_pixels = tf.clip_by_value(tf.round((result["completed"] + 1.0) * 127.5), 0.0, 255.0)
            result["completed"] = tf.cast(hole * model_pixels + (1.0 - hole) * pixels, tf.uint8)
        for key in outputs:
            if result[key].dtype != tf.uint8:
                result[key] = processing.to_uint8(result[key])
        return result

    if task == "complete":
        mask_spec = tf.TensorSpec([batch_size, size, size, 1], tf.uint8, name="mask")

        @tf.function(input_signature=[image_spec, attributes_spec, mask_spec])
        def serve(image, attributes, mask):
            return run(image, attributes, mask)
    else:

        @tf.function(input_signature=[image_spec, attributes_spec])
        def serve(image, attributes):
            return run(image, attributes)

    return serve


def _unsupported_ops(message: str) -> list[str]:
    """The op names a converter error reports as having no builtin kernel ("'tf.Foo' op is neither a custom op nor a
    flex op", or the "Details:" list "tf.Foo(tensor<...>) -> ...")."""
    names = re.findall(r"'(tf\.[A-Za-z0-9_]+)' op is neither a custom op nor a flex op", message)
    names += re.findall(r"^\s+(tf\.[A-Za-z0-9_]+)\(tensor", message, flags=re.MULTILINE)
    return sorted(set(names))


def check_precisions(precisions: Sequence[str]) -> None:
    bad = [p for p in precisions if p not in PRECISIONS]
    if bad or not precisions:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)} or all, got {', '.join(bad) or '-'}")


def check_options(options: dict[str, Any]) -> dict[str, Any]:
    """The export options of this format: `precisions` (default both), checked."""
    precisions = tuple(options.get("precisions", PRECISIONS))
    check_precisions(precisions)
    return {**options, "precisions": precisions}


def convert(
    trainer: Any,
    task: str,
    image_size: int,
    num_attributes: int,
    precisions: Sequence[str] = PRECISIONS,
    method: str = "model",
    scratch: str | Path | None = None,
) -> dict[str, bytes]:
    """{precision: TFLite flatbuffer bytes} of the trainer's inference at S x S; ConfigError when it does not
    convert. `scratch`: the folder for the intermediate SavedModel (default: the system's temporary folder; the
    export passes its own folder, so that a full disk there is reported as the export's)."""
    check_precisions(precisions)
    module = tf.Module()
    module.network_variables = {
        name: [getattr(v, "value", v) for v in net.weights] for name, net in trainer.networks.items()
    }
    module.serve = fixed_size_function(trainer, task, image_size, num_attributes)
    out = {}
    # Through a SavedModel: the converter keeps the named signature (from_concrete_functions drops it for some
    # multi-input functions).
    with tempfile.TemporaryDirectory(prefix="tf_faceedit_tflite_", dir=scratch) as saved:
        tf.saved_model.save(module, saved, signatures={SIGNATURE_KEY: module.serve})
        for precision in precisions:
            converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=[SIGNATURE_KEY])
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            if precision == "float16":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.target_spec.supported_types = [tf.float16]
            try:
                out[precision] = converter.convert()
            except Exception as err:  # ConverterError, and the MLIR passes' own errors
                raise ConfigError(
                    f"method {method!r} cannot be exported to TFLite: {_why(err)} (the SavedModel "
                    "export, --format=savedmodel, serves it)"
                ) from None
    return out


def _why(err: Exception) -> str:
    text = str(err).strip()
    ops = _unsupported_ops(text)
    if ops:
        return f"its generator uses ops TFLite has no builtin kernel for: {', '.join(ops)}"
    return f"the converter failed: {text.splitlines()[-1][:300] if text else type(err).__name__}"


def write(source: Any, folder: Path, export_dir: Path, precisions: Sequence[str] = PRECISIONS) -> dict[str, Any]:
    """The TFLite format's writer (`export_lib.FORMATS["tflite"]`): fills `folder` with model_<precision>.tflite and
    tflite.json (see the module docstring); returns files ({precision: path under `export_dir`}), inputs, outputs."""
    trainer, cfg, info = source.trainer, source.cfg, source.info
    precisions = tuple(precisions)
    size, names = int(cfg.data.image_size), list(cfg.data.attributes)
    flatbuffers = convert(trainer, trainer.task, size, len(names), precisions, cfg.method, scratch=folder)
    runner = make_interpreter(flatbuffers[precisions[0]]).get_signature_runner(SIGNATURE_KEY)
    details = runner.get_input_details(), runner.get_output_details()
    describe = [
        {
            name: {"dtype": d["dtype"].__name__, "shape": [int(v) for v in d["shape_signature"]]}
            for name, d in sorted(group.items())
        }
        for group in details
    ]
    files = {}
    for precision, data in flatbuffers.items():
        (folder / f"model_{precision}.tflite").write_bytes(data)
        files[precision] = str(export_dir / f"model_{precision}.tflite")
    summary = {
        "method": cfg.method,
        "task": trainer.task,
        "attribute_names": names,
        "image_size": size,
        "attribute_range": [float(v) for v in registry.get(cfg.method).capabilities.attribute_range],
        "signature": SIGNATURE_KEY,
        "inputs": describe[0],
        "outputs": describe[1],
        "files": {
            p: {
                "file": f"model_{p}.tflite",
                "bytes": len(d),
                "tolerance_levels": FLOAT32_TOLERANCE if p == "float32" else FLOAT16_TOLERANCE,
            }
            for p, d in flatbuffers.items()
        },
        "step": info["step"],
        "checkpoint": str(Path(info["checkpoint"]).resolve()),
    }
    (folder / "tflite.json").write_text(json.dumps(summary, indent=2))
    return {"files": files, "inputs": describe[0], "outputs": describe[1]}


def describe(result: Mapping[str, Any]) -> str:
    """The summary after "exported M step N to DIR" (CLI and log)."""
    return (
        f" as TFLite: {', '.join(sorted(result['files']))}  inputs: {', '.join(result['inputs'])}  outputs: "
        f"{', '.join(result['outputs'])}"
    )
