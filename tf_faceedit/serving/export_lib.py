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
Pre/post-processing (resize, [-1, 1] <-> uint8) is `tf_faceedit.serving.processing`, see there.

Export formats are a table, `FORMATS` (name -> `ExportFormat`): a format is one writer function that fills a
folder, plus its folder rule. `export` is the one driver every format goes through: it resolves and restores the
model source, checks the task, writes into a hidden temporary sibling folder and renames it when complete (a
server polling BASE/NAME never sees a half-written version; an existing version is never overwritten), and owns
the disk faults: a full disk (or any other OS error while writing) is a one-line `ExportError` naming the export
folder, with nothing partial left behind. CONTRIBUTING.md says how to add a format.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import tensorflow as tf

from tf_faceedit import io_util
from tf_faceedit.errors import ConfigError, ExportError, FaceEditError
from tf_faceedit.serving import processing, tflite_export

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


# ---------------------------------------------------------------------------------------------------------------
# The SavedModel writer


def write_saved_model(source: ExportSource, folder: Path, export_dir: Path) -> dict[str, Any]:
    """Fills `folder` with the SavedModel, `assets.extra/<network>.keras`, config.yaml and export.json (see the
    module docstring); returns the format's result fields (signatures, networks)."""
    trainer, cfg = source.trainer, source.cfg
    module = ServingModule(trainer, cfg.method, cfg.data.attributes, cfg.data.image_size)
    signatures = module.signature_functions()
    tf.saved_model.save(module, str(folder), signatures=signatures)
    extra = folder / EXTRA_DIR
    extra.mkdir(exist_ok=True)
    networks = {}
    for name, network in trainer.export_networks().items():
        if source.entry is not None and name not in source.entry.networks:
            continue  # a zoo model holds only its inference networks (the others are not trained weights)
        network.save(str(extra / f"{name}.keras"))
        networks[name] = str(export_dir / EXTRA_DIR / f"{name}.keras")
    cfg.to_yaml(extra / "config.yaml")
    summary = {
        "method": cfg.method,
        "task": trainer.task,
        "attribute_names": list(cfg.data.attributes),
        "image_size": int(cfg.data.image_size),
        "step": source.info["step"],
        "checkpoint": str(Path(source.info["checkpoint"]).resolve()),
        "signatures": sorted(signatures),
        "networks": sorted(networks),
    }
    (extra / "export.json").write_text(json.dumps(summary, indent=2))
    return {"signatures": sorted(signatures), "networks": networks}


def _describe_saved_model(result: Mapping[str, Any]) -> str:
    return f"  signatures: {', '.join(result['signatures'])}  networks: {', '.join(result['networks'])}"


# ---------------------------------------------------------------------------------------------------------------
# The table of formats, and the one driver


@dataclasses.dataclass
class ExportSource:
    """What a writer exports: the restored `trainer` (its networks at the checkpoint), its typed `cfg`, `info`
    ({"step", "checkpoint"}) and the zoo `entry` it came from (None for a run folder)."""

    trainer: Any
    cfg: Any
    info: dict[str, Any]
    entry: Any = None


@dataclasses.dataclass(frozen=True)
class ExportFormat:
    """One export format.

    write: `write(source, folder, export_dir, **options) -> dict` fills `folder` (a new, empty temporary folder on
      the disk of `export_dir`, renamed to `export_dir` once `write` returns) and returns the format's own result
      fields. It only writes: the driver resolves and restores the source, makes and renames the folder, cleans up
      and turns OS errors (a full disk) into one line.
    check_dir: `check_dir(export_dir) -> Path`, before any work: ConfigError when the format cannot take that
      folder (an existing folder that is not empty is never overwritten).
    describe: `describe(result) -> str`, the summary that follows "exported M step N to DIR" (CLI and log).
    options: the keyword options `write` takes (the CLI passes those of its flags a format names here).
    check_options: `check_options(options) -> options`, validating them before any work (ConfigError).
    help: one line for `--help`.
    """

    write: Callable[..., dict[str, Any]]
    check_dir: Callable[[str | Path], Path]
    describe: Callable[[Mapping[str, Any]], str]
    options: tuple[str, ...] = ()
    check_options: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    help: str = ""


FORMATS: dict[str, ExportFormat] = {
    "savedmodel": ExportFormat(
        write_saved_model, check_export_dir, _describe_saved_model, help="TF Serving SavedModel (BASE/NAME/VERSION)"
    ),
    "tflite": ExportFormat(
        tflite_export.write,
        tflite_export.check_export_dir,
        tflite_export.describe,
        options=("precisions",),
        check_options=tflite_export.check_options,
        help="on-device TFLite models (a new folder)",
    ),
}


def restore_source(model_dir: str | Path, checkpoint: str | Path | None = None) -> ExportSource:
    """The model to export: a run folder's latest (or given) checkpoint, or a zoo model by name."""
    from tf_faceedit import model_source

    restored = model_source.restore(model_dir, checkpoint)  # a zoo name (tf_faceedit/pretrained) exports like a run
    trainer, cfg, info, entry = restored.trainer, restored.config, restored.info, restored.source.entry
    if trainer.task not in processing.TASKS:
        raise ConfigError(
            f"--model_dir {model_dir} holds a {cfg.method!r} model (task {trainer.task!r}); export "
            f"serves the tasks {', '.join(processing.TASKS)}"
        )
    return ExportSource(trainer, cfg, info, entry)


def export(
    model_dir: str | Path,
    export_dir: str | Path,
    checkpoint: str | Path | None = None,
    format: str = "savedmodel",
    **options: Any,
) -> dict[str, Any]:
    """Exports the latest (or given) checkpoint of `model_dir` (or a zoo model: `model_dir` its name) to
    `export_dir` in `format` (a name of `FORMATS`).

    format: "savedmodel" (this module, see the module docstring), or "tflite" (`tflite_export`: on-device models;
      option `precisions`, a subset of float32 / float16, default both; `export_dir` then any new folder).
    options: the format's options (`FORMATS[format].options`); None means the format's default.

    Returns:
      dict: export_dir, checkpoint, step, method, task and the format's fields (savedmodel: signatures (names),
      networks (name -> .keras path); tflite: files ({precision: path}), inputs, outputs).
    Raises:
      ConfigError: an unknown format or option, a folder the format cannot take, a model it cannot export.
      ExportError: writing failed (a full disk, permissions): one line naming the export folder; nothing is left.
    """
    fmt = FORMATS.get(format)
    if fmt is None:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    options = {key: value for key, value in options.items() if value is not None}
    unknown = sorted(set(options) - set(fmt.options))
    if unknown:
        raise ConfigError(f"--format={format} takes no option {', '.join(unknown)} (it takes: {fmt.options or '-'})")
    if fmt.check_options is not None:
        options = fmt.check_options(options)
    export_dir = fmt.check_dir(export_dir)
    source = restore_source(model_dir, checkpoint)
    fields = _write_atomically(fmt, source, export_dir, options)
    result = {
        "export_dir": str(export_dir),
        "checkpoint": source.info["checkpoint"],
        "step": source.info["step"],
        "method": source.cfg.method,
        "task": source.trainer.task,
        **fields,
    }
    log.info("exported %s (step %d) to %s%s", result["checkpoint"], result["step"], export_dir, fmt.describe(result))
    return result


def _write_atomically(fmt: ExportFormat, source: ExportSource, export_dir: Path, options: dict[str, Any]) -> dict:
    """Runs the format's writer in a hidden temporary sibling of `export_dir` and renames it into place. On any
    failure the temporary folder, and the parent folders made for it, are removed; OS errors become ExportError."""
    made = [p for p in (export_dir.parent, *export_dir.parent.parents) if not p.exists()]  # deepest first
    tmp = export_dir.parent / f".{export_dir.name}.tmp-{os.getpid()}"  # not an integer: servers ignore it
    try:
        export_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        fields = fmt.write(source, tmp, export_dir, **options)
        if export_dir.is_dir() and not any(export_dir.iterdir()):
            export_dir.rmdir()  # an empty folder (accepted by the format's check, or made meanwhile)
        if export_dir.exists():  # appeared while exporting
            raise ConfigError(f"--export_dir {export_dir} already exists; export to a new folder (or version number)")
        os.replace(tmp, export_dir)
        return fields
    except Exception as err:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in made:
            try:
                folder.rmdir()
            except OSError:
                break
        if isinstance(err, FaceEditError):
            raise
        if io_util.is_no_space(err):
            detail = getattr(err, "filename", None) or " ".join(str(err).split())[:200]
            raise ExportError(
                f"no space left on the disk of --export_dir {export_dir} ({detail}); nothing was written there "
                "(the partial export was removed); free some space and export again"
            ) from None
        if isinstance(err, OSError):
            raise ExportError(
                f"cannot write the export to --export_dir {export_dir}: {io_util.reason(err)}; nothing was written "
                "there (the partial export was removed)"
            ) from None
        raise
