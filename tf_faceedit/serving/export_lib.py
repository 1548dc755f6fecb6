"""Export a trained run as a TF Serving SavedModel, plus its networks as `.keras` files.

    result = export("runs/sagan_quick", "exports/sagan/1")   # {"export_dir", "checkpoint", "step", ...}

Layout of `export_dir` (= BASE/NAME/VERSION, VERSION an integer, as TF Serving expects):
  saved_model.pb, variables/      the SavedModel (a tf.Module holding the networks' variables) with signatures
    serving_default               edit:     image uint8 [N,H,W,3], attributes float32 [N,K]
                                            -> image uint8 [N,H,W,3] + extras (attention [N,S,S,n], latent, ...)
                                  complete: image uint8 [N,H,W,3], mask uint8 [N,H,W,1] (nonzero = hole),
                                            attributes float32 [N,K] -> completed, raw uint8 [N,H,W,3]
    metadata                      no inputs -> method, task (string), attribute_names (string [K]), image_size,
                                  attribute_range (float32 [2]: the accepted target values, low and high)
    predict_attributes            (methods that can) image uint8 -> attributes float32 [N,K] in {0, 1}
  assets.extra/<network>.keras    every export network (`trainer.export_networks()`); `keras.models.load_model`
                                  with no custom_objects. TF Serving loads only saved_model.pb, variables/ and
                                  assets/ (it reads nothing from assets.extra but an optional warmup file).
  assets.extra/config.yaml        the run's config; assets.extra/export.json: method, step, checkpoint.
`export(..., format="tflite")` writes on-device TFLite models instead (`tflite_export`).
Pre/post-processing (resize, [-1, 1] <-> uint8) is `tf_faceedit.serving.processing`, see there. The version is
written into a hidden temporary sibling folder and renamed when complete, so a server polling BASE/NAME never
sees a half-written version; an existing version is never overwritten.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import tensorflow as tf

from tf_faceedit import io_util
from tf_faceedit.errors import ConfigError
from tf_faceedit.serving import processing

log = logging.getLogger("tf_faceedit")

EXTRA_DIR = "assets.extra"


def check_export_dir(export_dir: str | Path) -> Path:
    """Refuses an export_dir whose last component is not an integer version, or that already exists."""
    export_dir = Path(export_dir)
    if not export_dir.name.isdigit():
        raise ConfigError(
            f"--export_dir {export_dir} must end in an integer version folder (TF Serving layout "
            f"BASE/NAME/VERSION, e.g. {export_dir}/1)"
        )
    if export_dir.exists():
        raise ConfigError(
            f"--export_dir {export_dir} already exists; export to a new version number "
            f"(e.g. {export_dir.parent / str(int(export_dir.name) + 1)})"
        )
    io_util.check_output_dir(export_dir, "--export_dir")  # a parent that is a file, or not writable
    return export_dir


class ServingModule(tf.Module):
    """The exported object: the networks' variables and the signature functions (closures over the trainer, so the
    trainer itself, its optimizers and losses are not saved)."""

    def __init__(self, trainer: Any, method: str, attribute_names: Sequence[str], image_size: int) -> None:
        super().__init__(name=f"{method}_serving")
        from tf_faceedit import registry

        capabilities = registry.get(method).capabilities  # what the method declares (range, attribute prediction)
        names, size, task = list(attribute_names), int(image_size), trainer.task
        value_range = [float(v) for v in capabilities.attribute_range]
        k = len(names)
        self.network_variables = {
            name: [getattr(v, "value", v) for v in net.weights] for name, net in trainer.networks.items()
        }
        image_spec = tf.TensorSpec([None, None, None, 3], tf.uint8, name="image")
        attributes_spec = tf.TensorSpec([None, None], tf.float32, name="attributes")

        if task == "complete":

            @tf.function(
                input_signature=[
                    image_spec,
                    tf.TensorSpec([None, None, None, 1], tf.uint8, name="mask"),
                    attributes_spec,
                ]
            )
            def serve(image, mask, attributes):
                return processing.run_inference(trainer.infer, task, image, attributes, size, k, mask=mask)
        else:

            @tf.function(input_signature=[image_spec, attributes_spec])
            def serve(image, attributes):
                return processing.run_inference(trainer.infer, task, image, attributes, size, k)

        @tf.function(input_signature=[])
        def metadata():
            return {
                "method": tf.constant(method),
                "task": tf.constant(task),
                "attribute_names": tf.constant(names, tf.string),
                "image_size": tf.constant(size, tf.int32),
                "attribute_range": tf.constant(value_range, tf.float32),
            }

        self.serve, self.metadata = serve, metadata
        self.predict_attributes = None
        if capabilities.predicts_attributes:

            @tf.function(input_signature=[image_spec])
            def predict_attributes(image):
                return {"attributes": processing.predict_attributes(trainer.predict_attributes, image, size)}

            self.predict_attributes = predict_attributes

    def signature_functions(self) -> dict[str, Callable[..., Any]]:
        out = {"serving_default": self.serve, "metadata": self.metadata}
        if self.predict_attributes is not None:
            out["predict_attributes"] = self.predict_attributes
        return out


FORMATS = ("savedmodel", "tflite")


def export(
    model_dir: str | Path,
    export_dir: str | Path,
    checkpoint: str | Path | None = None,
    format: str = "savedmodel",
    precisions: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Exports the latest (or given) checkpoint of `model_dir` (or a zoo model: `model_dir` its name) to
    `export_dir` (see the module docstring).

    format: "savedmodel" (this module), or "tflite": `tflite_export.export_tflite` (on-device models, `precisions`
      a subset of float32 / float16, default both; `export_dir` then any new folder).

    Returns:
      dict: export_dir, checkpoint, step, method, task, signatures (names), networks (name -> .keras path);
      for tflite the dict of `tflite_export.export_tflite`.
    """
    from tf_faceedit import pretrained
    from tf_faceedit.api import restore_trainer

    if format not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    if format == "tflite":
        from tf_faceedit.serving import tflite_export

        return tflite_export.export_tflite(model_dir, export_dir, checkpoint, precisions or tflite_export.PRECISIONS)

    export_dir = check_export_dir(export_dir)
    entry = pretrained.resolve(model_dir)  # a zoo name (tf_faceedit/pretrained) exports like a run
    trainer, cfg, info = (
        pretrained.restore_trainer(entry, checkpoint) if entry is not None else restore_trainer(model_dir, checkpoint)
    )
    if trainer.task not in processing.TASKS:
        raise ConfigError(
            f"--model_dir {model_dir} holds a {cfg.method!r} model (task {trainer.task!r}); export "
            f"serves the tasks {', '.join(processing.TASKS)}"
        )
    module = ServingModule(trainer, cfg.method, cfg.data.attributes, cfg.data.image_size)
    signatures = module.signature_functions()

    export_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = export_dir.parent / f".{export_dir.name}.tmp-{os.getpid()}"  # not an integer: servers ignore it
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tf.saved_model.save(module, str(tmp), signatures=signatures)
        extra = tmp / EXTRA_DIR
        extra.mkdir(exist_ok=True)
        networks = {}
        for name, network in trainer.export_networks().items():
            if entry is not None and name not in entry.networks:
                continue  # a zoo model holds only its inference networks (the others are not trained weights)
            network.save(str(extra / f"{name}.keras"))
            networks[name] = str(export_dir / EXTRA_DIR / f"{name}.keras")
        cfg.to_yaml(extra / "config.yaml")
        summary = {
            "method": cfg.method,
            "task": trainer.task,
            "attribute_names": list(cfg.data.attributes),
            "image_size": int(cfg.data.image_size),
            "step": info["step"],
            "checkpoint": str(Path(info["checkpoint"]).resolve()),
            "signatures": sorted(signatures),
            "networks": sorted(networks),
        }
        (extra / "export.json").write_text(json.dumps(summary, indent=2))
        if export_dir.exists():  # appeared while exporting
            raise ConfigError(f"--export_dir {export_dir} already exists; export to a new version number")
        os.replace(tmp, export_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info(
        "exported %s (step %d) to %s: signatures %s; networks %s",
        info["checkpoint"],
        info["step"],
        export_dir,
        ", ".join(sorted(signatures)),
        ", ".join(sorted(networks)),
    )
    return {
        "export_dir": str(export_dir),
        "checkpoint": info["checkpoint"],
        "step": info["step"],
        "method": cfg.method,
        "task": trainer.task,
        "signatures": sorted(signatures),
        "networks": networks,
    }
