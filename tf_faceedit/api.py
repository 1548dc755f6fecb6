"""`tf_faceedit.load`: one inference interface over a training run or an exported SavedModel.

    model = tf_faceedit.load("runs/sagan_quick")            # a model_dir (config.yaml + checkpoints/)
    model = tf_faceedit.load("exports/sagan/1")             # or an export version dir (saved_model.pb)
    out = model.edit(images, {"Eyeglasses": 1})             # images uint8 [N, H, W, 3] or [H, W, 3], any size
    out["image"]                                            # uint8, the input's size; extras float32 at S x S
    model.edit(images, attrs, keep_detail=False)            # the whole image resampled from the S x S output
    out = completion_model.complete(images, masks, attrs)   # masks uint8 [N, H, W, 1] (or [H, W]), nonzero = hole

Both sources give the same results: the pre/post-processing is `tf_faceedit.serving.processing` in both (around
the trainer's `infer` in one `tf.function` for a model_dir, `processing.CompiledInference`, traced on the first
call only, whatever the batch and image size; inside the exported signature for an export).

Full-resolution images (`edit`, `keep_detail=True`, the default): an image of another size than the model's S x S
gets only the edit's CHANGE (the network's output minus its input, at S x S) warped back and added, by the same
paste-back function as `python -m tf_faceedit.edit` (`tf_faceedit.data.align.paste_back`, via `paste_back_resized`):
pixels the edit leaves alone keep their full-resolution detail, and an identity edit returns the image exactly.
`keep_detail=False` gives the whole image resampled from the S x S output (every pixel as sharp as S allows). An S x S
image is the network's output either way. `complete` keeps the input exactly outside the hole already.

Degenerate batches, on every source (a run, a zoo name, an export): an empty batch [0, H, W, 3] gives each output
with 0 rows; a 1 x 1 image is edited like any other; a grayscale ([H, W] or [..., 1]) or RGBA image, or an image
with no pixel, is a one-line DataError saying so. No TensorFlow error reaches the caller for these.

Data locations (`with_data`): `load(with_data(source, partition_file=...))` replaces the data config's file
locations (`tf_faceedit.pretrained.zoo.MACHINE_PATH_FIELDS`) in `model.config`: what `python -m tf_faceedit.evaluate
--set data.partition_file=...` passes. A zoo model's config names no file of the machine it was trained on.

Inference options (`with_options`): `load(with_options("fader-smiling-64", residual_gain=1.5))` sets fields that
change only what inference computes (a method's model config lists them in `INFERENCE_OPTIONS`: Fader's and IcGAN's
residual edit, IcGAN's inversion), on a run or a zoo name: what `--option model.FIELD=VALUE` of `python -m
tf_faceedit.evaluate` and `python -m tf_faceedit.edit` passes. Any other field is a one-line ConfigError.

Attributes are the TARGET values: an [N, K] or [K] array, or a dict {name: value}. Names not in the dict come from
`predict_attributes(images)` when the method can predict them (SaGAN's critic head, IcGAN's E_y), otherwise 0
(with a warning). A value that is not finite, or outside the method's `attribute_range` ([0, 1]; Fader's sliders
[-1, 2]), raises ConfigError naming the attribute.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tf_faceedit.errors import ConfigError, DataError, check_attribute_values, suggest
from tf_faceedit.model_source import SourceWithData, with_data, with_options  # noqa: F401 - API: load(with_...(...))

log = logging.getLogger("tf_faceedit")


# ---------------------------------------------------------------------------------------------------------------
# Backends: a trainer (eager) or an exported SavedModel (its signatures)


class _TrainerBackend:
    def __init__(self, trainer, cfg, engine="tensorflow"):
        self.trainer = trainer
        self.engine = engine
        from tf_faceedit import registry

        self.method, self.task = cfg.method, trainer.task
        self.capabilities = registry.get(cfg.method).capabilities  # what the method declares it offers
        self.attribute_names = list(cfg.data.attributes)
        self.image_size = int(cfg.data.image_size)
        self.crop_fraction = float(cfg.data.crop_fraction)
        self.can_predict = self.capabilities.predicts_attributes
        self.attribute_range = self.capabilities.attribute_range
        self._compiled = None  # processing.CompiledInference, made on the first call

    @property
    def compiled(self):
        """The trainer's inference as `tf.function`s (traced on the first call, never again)."""
        if self._compiled is None:
            from tf_faceedit.serving import processing

            self._compiled = processing.CompiledInference(
                self.trainer.infer,
                self.task,
                self.image_size,
                len(self.attribute_names),
                predict=self.trainer.predict_attributes if self.can_predict else None,
                freeze=True,  # a loaded model does not train: its weights become constants (faster on CPU)
                engine=self.engine,
            )
        return self._compiled

    def run(self, image, attributes, mask=None):
        out = self.compiled(image, attributes, mask if self.task == "complete" else None)
        return {key: value.numpy() for key, value in out.items()}

    def predict(self, image):
        return self.compiled.predict(image).numpy()


class _SavedModelBackend:
    def __init__(self, path):
        import tensorflow as tf

        try:
            self.loaded = tf.saved_model.load(str(path))
            meta = {key: value.numpy() for key, value in self.loaded.signatures["metadata"]().items()}
        except Exception as err:  # noqa: BLE001 - protobuf DecodeError, OSError, tf.errors.*, KeyError: all "not ours"
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise DataError(
                f"{Path(path) / 'saved_model.pb'} cannot be loaded as a tf_faceedit export "
                f"({type(err).__name__}: {reason}); export the run again"
            ) from None
        self.method, self.task = meta["method"].decode(), meta["task"].decode()
        from tf_faceedit import registry

        # the method's declaration (an export of a method this installation lacks: the defaults of its task); what
        # the export itself holds (its signatures, its range) decides prediction and the accepted values
        self.capabilities = registry.capabilities(self.method, self.task) or registry.Capabilities()
        self.attribute_names = [name.decode() for name in meta["attribute_names"]]
        self.image_size = int(meta["image_size"])
        self.can_predict = "predict_attributes" in self.loaded.signatures
        # exports before the range was written: any finite value
        self.attribute_range = tuple(float(v) for v in meta["attribute_range"]) if "attribute_range" in meta else None
        # the face framing of the training data (for aligning photos), from the config the export carries
        config_path = Path(path) / "assets.extra" / "config.yaml"
        self.crop_fraction = 1.0
        if config_path.is_file():
            from tf_faceedit.config import load_yaml

            self.crop_fraction = float(load_yaml(config_path).get("data", {}).get("crop_fraction", 1.0))

    def run(self, image, attributes, mask=None):
        inputs = {"image": image, "attributes": attributes}
        if self.task == "complete":
            inputs["mask"] = mask
        out = self.loaded.signatures["serving_default"](**inputs)
        return {key: value.numpy() for key, value in out.items()}

    def predict(self, image):
        return self.loaded.signatures["predict_attributes"](image=image)["attributes"].numpy()


def _check_engine(engine: str, precision: str) -> str:
    """`load`'s engine= (ConfigError naming the choices); "auto" with bfloat16 is "tensorflow"."""
    from tf_faceedit.serving import processing

    if engine not in processing.ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(processing.ENGINES)}, got {engine!r}")
    if precision != "float32":
        if engine == "tflite":
            raise ConfigError(f"engine='tflite' runs float32 networks; precision={precision!r} runs in TensorFlow")
        return "tensorflow"
    return engine


# ---------------------------------------------------------------------------------------------------------------
# The public model


class FaceEditModel:
    """A loaded face-editing model (see the module docstring). Use `tf_faceedit.load` to make one.

    Attributes:
      method, task ("edit" | "complete"), attribute_names (list of K names), image_size (S), crop_fraction (the
      training data's face crop, `data.crop_fraction`, used to align photos), attribute_range ((low, high): the
      target values the method accepts, [0, 1] for the binary methods, [-1, 2] for Fader's sliders; None for an
      export written before the range was exported: any finite value),
      capabilities (`tf_faceedit.registry.Capabilities`: what the method offers, e.g. attention masks, sliders),
      config (the training config for a model_dir, None for an export), info (checkpoint/step or export path).
    """

    def __init__(self, backend, config=None, info=None):
        self._backend = backend
        self.method = backend.method
        self.task = backend.task
        self.attribute_names = list(backend.attribute_names)
        self.image_size = backend.image_size
        self.crop_fraction = backend.crop_fraction
        self.attribute_range = backend.attribute_range
        self.capabilities = backend.capabilities
        self.config = config
        self.info = dict(info or {})

    def __repr__(self):
        return (
            f"FaceEditModel(method={self.method!r}, task={self.task!r}, attributes={self.attribute_names}, "
            f"image_size={self.image_size})"
        )

    @property
    def trainer(self) -> Any:
        """The trainer (its networks) when loaded from a model_dir or the zoo, else None. `edit`/`complete` run a
        compiled copy with the weights frozen at the first call: changing these networks' weights afterwards does
        not change what they return (load the model again)."""
        return getattr(self._backend, "trainer", None)

    @property
    def can_predict_attributes(self) -> bool:
        return self._backend.can_predict

    # -- inputs -------------------------------------------------------------------------------------------------
    @staticmethod
    def _images(images, what="images", channels=3):
        array = np.asarray(images)
        if array.dtype != np.uint8:
            raise DataError(f"{what} must be uint8 (0-255), got {array.dtype}")
        shape = array.shape
        if channels == 1 and array.ndim == 2:
            array = array[..., None]
        if channels == 3 and (array.ndim == 2 or array.ndim in (3, 4) and shape[-1] in (1, 4)):
            if array.ndim > 2 and shape[-1] == 4:
                kind = "an RGBA image: drop its alpha channel (image[..., :3])"
            else:
                gray = "image[..., None]" if array.ndim == 2 else "image"
                kind = f"a single-channel (grayscale) image: convert it to RGB (np.repeat({gray}, 3, axis=-1))"
            raise DataError(f"{what} must be RGB uint8 [N, H, W, 3] or [H, W, 3]; got shape {shape}, {kind}")
        single = array.ndim == 3
        if single:
            array = array[None]
        if array.ndim != 4 or array.shape[-1] != channels:
            raise DataError(f"{what} must be uint8 [N, H, W, {channels}] or [H, W, {channels}], got shape {shape}")
        if min(array.shape[1:3]) < 1:
            raise DataError(f"{what} must be at least 1 x 1 pixel, got shape {shape} (no pixel to edit)")
        return array, single

    def predict_attributes(self, images: np.ndarray) -> np.ndarray:
        """The model's {0, 1} attribute prediction of uint8 images: float32 [N, K] (or [K] for one image)."""
        if not self.can_predict_attributes:
            raise ConfigError(
                f"method {self.method!r} cannot predict attributes; pass every attribute "
                f"({', '.join(self.attribute_names)})"
            )
        array, single = self._images(images)
        if not len(array):  # an empty batch: nothing to run (a network, or a signature, refuses 0 rows)
            return np.zeros((0, len(self.attribute_names)), np.float32)
        predicted = self._backend.predict(array)
        return predicted[0] if single else predicted

    def attributes_array(self, attributes: np.ndarray | Mapping[str, float], images: np.ndarray) -> np.ndarray:
        """[N, K] float32 target values from an [N, K] / [K] array or a {name: value} dict (see the module doc)."""
        array, _ = self._images(images)
        n, k = array.shape[0], len(self.attribute_names)
        if isinstance(attributes, dict):
            unknown = [name for name in attributes if name not in self.attribute_names]
            if unknown:
                raise ConfigError(
                    f"unknown attribute {unknown[0]!r}{suggest(unknown[0], self.attribute_names)}; "
                    f"this model's attributes: {', '.join(self.attribute_names)}"
                )
            missing = [name for name in self.attribute_names if name not in attributes]
            if missing and self.can_predict_attributes and n:
                values = np.array(self._backend.predict(array), dtype=np.float32)
            else:
                if missing:
                    log.warning(
                        "attributes %s not given and method %s cannot predict them: using 0",
                        ", ".join(missing),
                        self.method,
                    )
                values = np.zeros((n, k), np.float32)
            self.check_attribute_values(attributes)
            for name, value in attributes.items():
                values[:, self.attribute_names.index(name)] = np.asarray(value, np.float32)
            return values
        values = np.asarray(attributes, dtype=np.float32)
        if values.ndim == 1:
            values = np.broadcast_to(values, (n, values.shape[0]))
        if values.ndim != 2 or values.shape != (n, k):
            raise ConfigError(
                f"attributes must be [{n}, {k}] or [{k}] (attributes: "
                f"{', '.join(self.attribute_names)}), got shape {np.asarray(attributes).shape}"
            )
        self.check_attribute_values(values)
        return np.ascontiguousarray(values)

    def check_attribute_values(self, values: np.ndarray | Mapping[str, float], flag: str = "attribute") -> None:
        """ConfigError naming the attribute when a target value (a {name: value} dict or an [..., K] array) is not
        finite or outside `attribute_range`."""
        check_attribute_values(values, self.attribute_names, self.attribute_range, self.method, flag)

    # -- inference ----------------------------------------------------------------------------------------------
    def _empty_result(self, array, mask=None):
        """The outputs of an empty batch: each of the model's outputs with 0 rows (their names, shapes and dtypes
        from one blank S x S image; the images at the input's H x W)."""
        size, k = self.image_size, len(self.attribute_names)
        low = self.attribute_range[0] if self.attribute_range else 0.0
        high = self.attribute_range[1] if self.attribute_range else 0.0
        blank = np.zeros((1, size, size, 3), np.uint8)
        values = np.full((1, k), min(max(0.0, low), high) if self.attribute_range else 0.0, np.float32)
        probe = self._backend.run(blank, values, None if mask is None else np.zeros((1, size, size, 1), np.uint8))
        out = {key: value[:0] for key, value in probe.items()}
        for key, value in out.items():
            if value.dtype == np.uint8:
                out[key] = np.zeros((0, *array.shape[1:]), np.uint8)
        return out

    def edit(
        self, images: np.ndarray, attributes: np.ndarray | Mapping[str, float], keep_detail: bool = True
    ) -> dict[str, np.ndarray]:
        """Edits uint8 faces to the target `attributes`. Returns {"image": uint8 like `images`, extras float32}.

        keep_detail: for an image of another size than S x S, add only the edit's change back onto the
          full-resolution image (`tf_faceedit.data.align.paste_back_resized`: the paste-back of `python -m
          tf_faceedit.edit`), so an identity edit returns it exactly; False: the whole image resampled from the
          model's S x S output. An empty batch gives empty outputs.
        """
        if self.task != "edit":
            raise ConfigError(f"method {self.method!r} is a {self.task!r} model: use .{self.task}()")
        array, single = self._images(images)
        values = self.attributes_array(attributes, array)
        size = self.image_size
        if not len(array):
            out = self._empty_result(array)
        elif keep_detail and array.shape[1:3] != (size, size):
            from tf_faceedit.data import align
            from tf_faceedit.serving import processing

            seen = processing.resize_images(array, size).numpy().astype(np.uint8)  # what the network sees
            out = self._backend.run(seen, values)  # an S x S input is not resized again: the same network input
            out["image"] = align.paste_back_resized(array, seen, out["image"])
        else:
            out = self._backend.run(array, values)
        return {key: value[0] for key, value in out.items()} if single else out

    def complete(
        self, images: np.ndarray, masks: np.ndarray, attributes: np.ndarray | Mapping[str, float]
    ) -> dict[str, np.ndarray]:
        """Fills the holes (mask nonzero) of uint8 faces. Returns {"completed", "raw"} uint8 like `images` (+ extras);
        outside the hole "completed" equals the input exactly."""
        if self.task != "complete":
            raise ConfigError(f"method {self.method!r} is an {self.task!r} model: use .{self.task}()")
        array, single = self._images(images)
        mask, _ = self._images(masks, "masks", channels=1)
        if mask.shape[:3] != array.shape[:3]:
            raise DataError(f"masks must match the images' N, H, W {array.shape[:3]}, got {mask.shape[:3]}")
        values = self.attributes_array(attributes, array)
        if not len(array):
            return self._empty_result(array, mask)
        out = self._backend.run(array, values, mask)
        return {key: value[0] for key, value in out.items()} if single else out


def load(
    path: str | Path, checkpoint: str | Path | None = None, precision: str = "float32", engine: str = "auto"
) -> FaceEditModel:
    """Loads a training run (a folder with config.yaml), an export version dir (saved_model.pb) or a zoo model by
    name (`tf_faceedit.pretrained`: `python -m tf_faceedit.pretrained` lists them).

    Args:
      path: model_dir, export dir or zoo name (a run or export folder of that name wins); `with_data(path, ...)`
        sets where its data is on this machine (a run or a zoo name).
      checkpoint: for a model_dir, a `ckpt-XXXXXXXX` folder (default: the newest intact one; a damaged newer one
        is skipped with a warning naming it and why; none intact: TrainingError).
      precision: "float32" (default) or "bfloat16": the networks' convolutions and matmuls in bfloat16 (Keras'
        mixed_bfloat16 policy; weights and outputs stay float32). Several times faster on CPUs with AMX (Intel
        Sapphire Rapids and later), slower on CPUs without native bfloat16; outputs within a few uint8 levels of
        float32's (docs/RESULTS.md). Applies to a model_dir or a zoo name; an export keeps the precision it was
        exported with.
      engine: what runs a model_dir's or zoo model's networks (`processing.CompiledInference`): "auto" (default:
        for each batch size up to 4, whichever of TensorFlow and the TFLite interpreter is faster on this machine,
        timed at its first call; TensorFlow for larger batches, for bfloat16 and where TFLite cannot run the
        network), "tensorflow", or "tflite" (float32 only). Both compute the same float32 network (outputs within
        about 1e-5; a uint8 pixel may move by one level). An export always runs its SavedModel.
    Returns:
      FaceEditModel.
    """
    from tf_faceedit import model_source
    from tf_faceedit.training import run_dir

    run_dir.check_inference_precision(precision)
    engine = _check_engine(engine, precision)
    source = model_source.locate(path)  # a zoo name, an entry, a run or an export (unknown name: ConfigError)
    if source.kind == "zoo" and source.entry.task not in ("edit", "complete"):
        entry = source.entry
        raise ConfigError(
            f"zoo model {entry.name} is a {entry.method!r} model (task {entry.task!r}); load() serves the edit "
            "and complete tasks (a judge: tf_faceedit.eval.classifier.load_classifier, or evaluate --classifier)"
        )
    if source.kind == "export" and engine == "tflite":
        raise ConfigError(f"engine='tflite' applies to a model_dir or a zoo name; {source.path} is an export")
    restored = model_source.restore(source, checkpoint, precision, exports=True)  # zoo files checked (sha256)
    if restored.trainer is None:
        return FaceEditModel(_SavedModelBackend(source.path), None, restored.info)
    trainer, cfg = restored.trainer, restored.config
    if trainer.task not in ("edit", "complete"):
        raise ConfigError(
            f"{source.path} holds a {cfg.method!r} model (task {trainer.task!r}); load() serves the "
            "edit and complete tasks"
        )
    return FaceEditModel(_TrainerBackend(trainer, cfg, engine), cfg, {**restored.info, "precision": precision})
