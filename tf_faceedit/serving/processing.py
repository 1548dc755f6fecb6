"""Pre- and post-processing shared by the SavedModel signatures, `tf_faceedit.load` and the tests (written once).

Every function here is plain TensorFlow: it runs inside a `tf.function` (the exported signatures, and
`CompiledInference`: `tf_faceedit.load` on a model_dir, traced once for any batch and image size) and eagerly on
numpy arrays (the tests' reference), so every path computes the same numbers.

Contract (S = the model's `data.image_size`, K attributes):
  * input images: uint8 [N, H, W, 3], any H, W. The WHOLE image is resized to S x S (bilinear, antialiased, rounded
    to uint8 exactly as the training pipeline does after its crop), then mapped to [-1, 1] by x / 127.5 - 1.
    The training pipeline centre-crops a square first; here nothing is cropped, so a non-square input is stretched
    to a square and the result stretched back: pass face crops of the training aspect (square for CelebA's
    centred crop) for the best results.
  * input masks (completion): uint8 [N, H, W, 1], nonzero = hole. At S a pixel is a hole if any input pixel it
    covers is one (area resize > 0), so no hole pixel leaks into the generator's known region.
  * output images: the model's [-1, 1] images resized back to H x W (bilinear, antialiased), then
    uint8 = clip(round((x + 1) * 127.5), 0, 255) (`to_uint8`: `tf_faceedit.images.to_uint8_tf`, the TensorFlow
    twin of `images.to_uint8`).
  * completion: "completed" is the input image outside the (input-resolution) hole EXACTLY, the resized model
    completion inside it; "raw" is the generator's output everywhere.
  * extras (attention, content, latent, ...) stay at the model's resolution, float32.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tf_faceedit import images as images_lib
from tf_faceedit.backend.tensor_types import Tensor

log = logging.getLogger("tf_faceedit")

TASKS = ("edit", "complete")  # the tasks a serving signature exists for
EDIT_OUTPUTS = ("image",)
COMPLETE_OUTPUTS = ("completed", "raw")


to_uint8 = images_lib.to_uint8_tf  # [-1, 1] float images -> uint8: clip(round((x + 1) * 127.5), 0, 255)


def resize_images(images: Tensor, size: int) -> tf.Tensor:
    """uint8 [N, H, W, 3] -> float32 [N, S, S, 3] of whole levels in [0, 255]: the image as the model sees it (the
    training pipeline's bilinear antialiased resize, rounded). An S x S image comes back unchanged."""
    images = tf.convert_to_tensor(images)
    resized = tf.image.resize(tf.cast(images, tf.float32), [size, size], method="bilinear", antialias=True)
    return tf.clip_by_value(tf.round(resized), 0.0, 255.0)


def preprocess_images(images: Tensor, size: int) -> tf.Tensor:
    """uint8 [N, H, W, 3] -> float32 [N, S, S, 3] in [-1, 1] (the training pipeline's resize and rounding)."""
    return images_lib.to_float_tf(resize_images(images, size))


def preprocess_masks(masks: Tensor, size: int) -> tf.Tensor:
    """uint8 [N, H, W, 1] (nonzero = hole) -> float32 [N, S, S, 1] in {0, 1}: a hole wherever the area-resized
    mask is > 0 (any covered input pixel is a hole)."""
    holes = tf.cast(tf.not_equal(tf.convert_to_tensor(masks), 0), tf.float32)
    resized = tf.image.resize(holes, [size, size], method="area")
    return tf.cast(resized > 0.0, tf.float32)


def postprocess_images(images: Tensor, height: int | tf.Tensor, width: int | tf.Tensor) -> tf.Tensor:
    """float [N, R, R, C] in [-1, 1] -> uint8 [N, height, width, C] (bilinear antialiased resize, then `to_uint8`)."""
    images = tf.convert_to_tensor(images, tf.float32)
    resized = tf.image.resize(images, tf.stack([height, width]), method="bilinear", antialias=True)
    return to_uint8(resized)


def check_inputs(
    image: Tensor, attributes: Tensor, num_attributes: int, mask: Tensor | None = None
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor | None]:
    """In-graph validation (INVALID_ARGUMENT naming the input). Returns (image, attributes, mask) with static
    shapes [N, H, W, 3], [N, K], [N, H, W, 1]."""
    image = tf.convert_to_tensor(image)
    attributes = tf.convert_to_tensor(attributes, tf.float32)
    checks = [
        tf.debugging.assert_rank(image, 4, message="image must be uint8 [N, H, W, 3]"),
        tf.debugging.assert_rank(attributes, 2, message=f"attributes must be float32 [N, {num_attributes}]"),
        tf.debugging.assert_equal(
            tf.shape(attributes)[-1],
            num_attributes,
            message=f"attributes must have {num_attributes} values per image (the model's "
            "attributes; see the metadata signature)",
        ),
        tf.debugging.assert_equal(
            tf.shape(attributes)[0], tf.shape(image)[0], message="attributes must have one row per image"
        ),
        tf.debugging.assert_positive(tf.shape(image)[1:3], message="image height and width must be > 0"),
        tf.debugging.assert_equal(
            tf.reduce_all(tf.math.is_finite(attributes)),
            True,
            message="attributes must be finite numbers (no NaN or infinity)",
        ),
    ]
    if mask is not None:
        mask = tf.convert_to_tensor(mask)
        checks.append(
            tf.debugging.assert_equal(
                tf.shape(mask)[:3], tf.shape(image)[:3], message="mask must be uint8 [N, H, W, 1], the image's N, H, W"
            )
        )
    with tf.control_dependencies(checks):
        image = tf.identity(image)
        attributes = tf.ensure_shape(tf.identity(attributes), [None, num_attributes])
        if mask is not None:
            mask = tf.identity(mask)
    return image, attributes, mask


def run_inference(
    infer: Callable[[dict[str, tf.Tensor]], Mapping[str, Tensor]],
    task: str,
    image: Tensor,
    attributes: Tensor,
    image_size: int,
    num_attributes: int,
    mask: Tensor | None = None,
) -> dict[str, tf.Tensor]:
    """The whole serving computation around a model's `infer` (see `GANTrainer.infer`).

    Args:
      infer: `fn(dict) -> dict` at the model resolution (a trainer's `infer`).
      task: "edit" or "complete".
      image: uint8 [N, H, W, 3]; attributes: float32 [N, K] target values; mask: uint8 [N, H, W, 1] ("complete").
      image_size: S; num_attributes: K.
    Returns:
      dict: "edit": "image" uint8 [N, H, W, 3]; "complete": "completed" and "raw" uint8 [N, H, W, 3]; plus every
      extra of `infer` (float32, model resolution) under its own name.
    """
    prepared = prepare_inputs(task, image, attributes, image_size, num_attributes, mask)
    return finish_outputs(task, infer(prepared.network_inputs), prepared)


class Prepared(NamedTuple):
    """What `prepare_inputs` gives: the network's inputs at S x S and what `finish_outputs` needs of the request."""

    network_inputs: dict[str, tf.Tensor]  # "image" float32 [N, S, S, 3], "attributes" [N, K] (+ "mask" [N, S, S, 1])
    image: tf.Tensor  # the request's uint8 [N, H, W, 3]
    mask: tf.Tensor | None  # its uint8 [N, H, W, 1] ("complete"), else None
    height: tf.Tensor
    width: tf.Tensor


def prepare_inputs(
    task: str, image: Tensor, attributes: Tensor, image_size: int, num_attributes: int, mask: Tensor | None = None
) -> Prepared:
    """The first half of `run_inference`: checks, and the network's inputs at the model resolution."""
    image, attributes, mask = check_inputs(image, attributes, num_attributes, mask if task == "complete" else None)
    height, width = tf.shape(image)[1], tf.shape(image)[2]
    inputs = {"image": preprocess_images(image, image_size), "attributes": attributes}
    if task == "complete":
        inputs["mask"] = preprocess_masks(mask, image_size)
    return Prepared(inputs, image, mask, height, width)


def finish_outputs(task: str, out: Mapping[str, Tensor], prepared: Prepared) -> dict[str, tf.Tensor]:
    """The second half of `run_inference`: the network's outputs `out` back at the request's size, as uint8."""
    out = dict(out)
    images = EDIT_OUTPUTS if task == "edit" else COMPLETE_OUTPUTS
    missing = [key for key in images if key not in out]
    if missing:
        raise KeyError(f"infer() of a {task!r} model must return {', '.join(images)}; missing {', '.join(missing)}")
    result = {key: tf.cast(value, tf.float32) for key, value in out.items() if key not in images}
    for key in images:  # bfloat16 networks too
        result[key] = postprocess_images(tf.cast(out[key], tf.float32), prepared.height, prepared.width)
    if task == "complete":
        hole = tf.not_equal(prepared.mask, 0)  # [N, H, W, 1], broadcast over the channels
        result["completed"] = tf.where(hole, result["completed"], tf.cast(prepared.image, tf.uint8))
    return result


def predict_attributes(predict: Callable[[tf.Tensor], Tensor], image: Tensor, image_size: int) -> tf.Tensor:
    """uint8 [N, H, W, 3] -> the model's {0, 1} attribute prediction float32 [N, K] (`predict` at resolution S)."""
    image = tf.convert_to_tensor(image)
    with tf.control_dependencies([tf.debugging.assert_rank(image, 4, message="image must be uint8 [N, H, W, 3]")]):
        image = tf.identity(image)
    return tf.cast(predict(preprocess_images(image, image_size)), tf.float32)


ENGINES = ("auto", "tensorflow", "tflite")
# engine="auto" considers TFLite for batches up to this size (batch 1 serving and editing, where TensorFlow's per-op
# overhead matters; at batch 16 TensorFlow's oneDNN kernels were 2.8x faster than XNNPACK, docs/RESULTS.md)
AUTO_MAX_BATCH = 4
AUTO_TIMING_CALLS = 5  # calls of each engine timed (after 2 warm-up calls) when engine="auto" meets a new batch size


class CompiledInference:
    """`run_inference` (and `predict_attributes`) around one model, compiled: the `tf_faceedit.load(model_dir)`
    backend's path, so edit, augment, evaluate and the demo never run the networks eagerly; it computes what the
    exported `serving_default` signature computes.

    Engines (`engine=`):
      * "tensorflow": `run_inference` as ONE `tf.function`, traced once for every batch size and image size (the
        input signatures have None batch, height and width; the network itself always runs at S x S). With
        `freeze=True` it is traced at construction and its variables are folded into constants (TensorFlow's
        `convert_variables_to_constants_v2`, what a frozen serving graph is): oneDNN then prepares each
        convolution's weights once instead of on every call, 6-30 % of a batch-1 forward on CPU (issue 17). The
        weights are those of that moment: later changes to the model's variables are not seen. Inputs of another
        dtype or shape than the signature's go through the unfrozen function, which gives the same one-line errors.
      * "tflite": the pre- and post-processing as `tf.function`s (traced once), the network between them run by
        the TFLite interpreter (`tflite_runtime.TFLiteNetwork`: float32, its weights frozen at construction, the
        same outputs within ~1e-5). Much faster where TensorFlow's per-op overhead dominates (the Fader
        autoencoder at 64², batch 1: 1.0 against 2.9 ms); raises `TFLiteUnavailable` for a network that does not
        convert.
      * "auto" (what `tf_faceedit.load` uses): both, and for each new batch size up to `AUTO_MAX_BATCH` the one
        that is faster on this machine, timed on that first call (`AUTO_TIMING_CALLS` calls of each); larger
        batches, and networks TFLite cannot run, use "tensorflow". `engine_for(batch)` says which was chosen.
        A one-time cost at the first call: the conversion (1-4 s for the paper-size networks) and the timing.
    "tflite" and "auto" apply to float32 networks with `freeze=True` (a bfloat16 network runs in TensorFlow).

    Args:
      infer: the model's `infer` (see `run_inference`); predict: its `predict_attributes`, or None.
      task, image_size, num_attributes: as for `run_inference`.
      freeze: fold the variables into constants (see above).
      engine: see above.
    Call: `compiled(image, attributes, mask=None)` -> the dict of `run_inference` (tensors);
      `compiled.predict(image)` -> float32 [N, K] (TensorFlow). `tracing_count()`: Python traces so far.
    """

    def __init__(
        self,
        infer: Callable[[dict[str, tf.Tensor]], Mapping[str, Tensor]],
        task: str,
        image_size: int,
        num_attributes: int,
        predict: Callable[[tf.Tensor], Tensor] | None = None,
        freeze: bool = False,
        engine: str = "tensorflow",
    ) -> None:
        if task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        if engine != "tensorflow" and not freeze:
            raise ValueError(f"engine={engine!r} runs a frozen network: pass freeze=True")
        self.task, self.image_size, self.num_attributes = task, int(image_size), int(num_attributes)
        self.engine = engine
        self._infer = infer
        image_spec = tf.TensorSpec([None, None, None, 3], tf.uint8, name="image")
        attributes_spec = tf.TensorSpec([None, self.num_attributes], tf.float32, name="attributes")
        signature = [image_spec, attributes_spec]
        if task == "complete":
            signature.append(tf.TensorSpec([None, None, None, 1], tf.uint8, name="mask"))

        def run(image, attributes, mask=None):
            return run_inference(infer, task, image, attributes, self.image_size, self.num_attributes, mask)

        def prepare(image, attributes, mask=None):
            return prepare_inputs(task, image, attributes, self.image_size, self.num_attributes, mask)

        self._run = tf.function(run, input_signature=signature)
        self._prepare = tf.function(prepare, input_signature=signature)
        self._signature = signature
        self._finish = None  # made with the TFLite network (its outputs' signature)
        self._predict = None
        if predict is not None:

            @tf.function(input_signature=[image_spec])
            def predict_fn(image):
                return predict_attributes(predict, image, self.image_size)

            self._predict = predict_fn
        self._frozen_run = self._frozen_predict = None
        if freeze:
            self._frozen_run = _frozen(self._run) if engine != "tflite" else None
            self._frozen_predict = _frozen(self._predict) if self._predict is not None else None
        self._network = None  # tflite_runtime.TFLiteNetwork, made on the first call that needs it
        self._network_error: str | None = None
        self._engines: dict[int, str] = {}  # engine="auto": batch size -> the engine chosen
        self._lock = threading.Lock()
        if engine == "tflite":
            self._tflite_network()  # TFLiteUnavailable at construction

    def _tflite_network(self):
        if self._network is None and self._network_error is None:
            from tf_faceedit.serving import tflite_runtime

            try:
                self._network = tflite_runtime.TFLiteNetwork(self._infer, self._network_specs())
                self._finish = self._finish_function(self._network.output_specs)
            except tflite_runtime.TFLiteUnavailable as err:
                self._network_error = str(err)
                if self.engine == "tflite":
                    raise
                log.info("inference engine: tensorflow (TFLite cannot run this network: %s)", err)
        return self._network

    def _finish_function(self, output_specs: Mapping[str, tf.TensorSpec]):
        """`finish_outputs` as a `tf.function` traced once: any batch and request size."""
        task = self.task
        size_spec = tf.TensorSpec([], tf.int32)
        signature = [dict(output_specs), self._signature[0], size_spec, size_spec]
        if task == "complete":

            @tf.function(input_signature=[*signature, self._signature[2]])
            def finish(out, image, height, width, mask):
                return finish_outputs(task, out, Prepared({}, image, mask, height, width))
        else:

            @tf.function(input_signature=signature)
            def finish(out, image, height, width):
                return finish_outputs(task, out, Prepared({}, image, None, height, width))

        return finish

    def _network_specs(self) -> dict[str, tf.TensorSpec]:
        """The network's inputs as `prepare_inputs` makes them (any batch)."""
        size, k = self.image_size, self.num_attributes
        specs = {
            "image": tf.TensorSpec([None, size, size, 3], tf.float32),
            "attributes": tf.TensorSpec([None, k], tf.float32),
        }
        if self.task == "complete":
            specs["mask"] = tf.TensorSpec([None, size, size, 1], tf.float32)
        return specs

    def __call__(self, image: Tensor, attributes: Tensor, mask: Tensor | None = None) -> dict[str, tf.Tensor]:
        if self.task == "complete":
            if mask is None:
                raise ValueError("a completion model needs a mask")
            args = (image, attributes, mask)
        else:
            args = (image, attributes)
        if self.engine_for(_batch_of(image)) == "tflite":
            return self._call_tflite(args)
        return _call(self._run, self._frozen_run, args)

    def _call_tflite(self, args: tuple) -> dict[str, tf.Tensor]:
        prepared = self._prepare(*args)
        out = self._network({key: value.numpy() for key, value in prepared.network_inputs.items()})
        rest = (prepared.mask,) if self.task == "complete" else ()
        return self._finish(out, prepared.image, prepared.height, prepared.width, *rest)

    def engine_for(self, batch: int | None) -> str:
        """The engine that runs a call of `batch` images ("tensorflow" or "tflite"; see the class docstring)."""
        if self.engine != "auto":
            return self.engine
        if batch is None or batch < 1 or batch > AUTO_MAX_BATCH:
            return "tensorflow"
        chosen = self._engines.get(batch)
        if chosen is not None:  # every call after the first of its batch size: no lock
            return chosen
        with self._lock:  # one conversion and one timing, whatever the threads calling
            if batch not in self._engines:
                self._engines[batch] = self._choose(batch)
            return self._engines[batch]

    def _choose(self, batch: int) -> str:
        """The faster engine at `batch` on this machine (median of `AUTO_TIMING_CALLS` calls each, interleaved)."""
        import time

        if self._tflite_network() is None:
            return "tensorflow"
        rng = np.random.RandomState(0)
        size = self.image_size
        args = [
            rng.randint(0, 256, (batch, size, size, 3)).astype(np.uint8),
            np.zeros((batch, self.num_attributes), np.float32),
        ]
        if self.task == "complete":
            args.append(np.zeros((batch, size, size, 1), np.uint8))
        runs = {
            "tensorflow": lambda: _call(self._run, self._frozen_run, args),
            "tflite": lambda: self._call_tflite(tuple(args)),
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        for i in range(2 + AUTO_TIMING_CALLS):
            for name, fn in runs.items():
                start = time.perf_counter()
                tf.nest.map_structure(lambda t: t.numpy(), fn())
                if i >= 2:
                    times[name].append(time.perf_counter() - start)
        medians = {name: float(np.median(values)) for name, values in times.items()}
        chosen = min(medians, key=medians.get)
        log.info(
            "inference engine at batch %d: %s (tflite %.2f ms, tensorflow %.2f ms a call)",
            batch,
            chosen,
            1000 * medians["tflite"],
            1000 * medians["tensorflow"],
        )
        return chosen

    def predict(self, image: Tensor) -> tf.Tensor:
        if self._predict is None:
            raise ValueError("this model has no predict_attributes")
        return _call(self._predict, self._frozen_predict, (image,))

    def tracing_count(self) -> int:
        """How many times the functions were traced (a retrace per call would show here)."""
        functions = [self._run, self._prepare, self._finish, self._predict]
        functions = [f for f in functions if f is not None]
        return sum(f.experimental_get_tracing_count() for f in functions)


def _batch_of(image: Tensor) -> int | None:
    shape = getattr(image, "shape", None)
    if shape is None:
        shape = np.shape(image)
    return int(shape[0]) if len(shape) == 4 and shape[0] is not None else None


def _frozen(function):
    """The concrete function of a `tf.function` with an input signature, its variables folded into constants."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    concrete = function.get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete)
    structure = concrete.structured_outputs

    def call(*args):
        out = frozen(*args)
        return tf.nest.pack_sequence_as(structure, tf.nest.flatten(out))

    return call


def _call(function, frozen, args):
    """`frozen(*args)` when the args fit its signature (dtype and shape), else the `tf.function` (its errors)."""
    if frozen is not None:
        tensors = [a if isinstance(a, tf.Tensor) else np.asarray(a) for a in args]
        specs = function.input_signature
        if all(
            tf.as_dtype(t.dtype) == spec.dtype and spec.shape.is_compatible_with(t.shape)
            for t, spec in zip(tensors, specs)
        ):
            return frozen(*[tf.convert_to_tensor(t) for t in tensors])
    return function(*args)
