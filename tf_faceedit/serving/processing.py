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

from collections.abc import Callable, Mapping

import numpy as np
import tensorflow as tf

from tf_faceedit import images as images_lib
from tf_faceedit.tensor_types import Tensor

TASKS = ("edit", "complete")  # the tasks a serving signature exists for
EDIT_OUTPUTS = ("image",)
COMPLETE_OUTPUTS = ("completed", "raw")


to_uint8 = images_lib.to_uint8_tf  # [-1, 1] float images -> uint8: clip(round((x + 1) * 127.5), 0, 255)


def preprocess_images(images: Tensor, size: int) -> tf.Tensor:
    """uint8 [N, H, W, 3] -> float32 [N, S, S, 3] in [-1, 1] (the training pipeline's resize and rounding)."""
    images = tf.convert_to_tensor(images)
    resized = tf.image.resize(tf.cast(images, tf.float32), [size, size], method="bilinear", antialias=True)
    resized = tf.clip_by_value(tf.round(resized), 0.0, 255.0)
    return images_lib.to_float_tf(resized)


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
    image, attributes, mask = check_inputs(image, attributes, num_attributes, mask if task == "complete" else None)
    height, width = tf.shape(image)[1], tf.shape(image)[2]
    inputs = {"image": preprocess_images(image, image_size), "attributes": attributes}
    if task == "complete":
        inputs["mask"] = preprocess_masks(mask, image_size)
    out = dict(infer(inputs))
    images = EDIT_OUTPUTS if task == "edit" else COMPLETE_OUTPUTS
    missing = [key for key in images if key not in out]
    if missing:
        raise KeyError(f"infer() of a {task!r} model must return {', '.join(images)}; missing {', '.join(missing)}")
    result = {key: tf.cast(value, tf.float32) for key, value in out.items() if key not in images}
    for key in images:
        result[key] = postprocess_images(tf.cast(out[key], tf.float32), height, width)  # bfloat16 networks too
    if task == "complete":
        hole = tf.not_equal(mask, 0)  # [N, H, W, 1], broadcast over the channels
        result["completed"] = tf.where(hole, result["completed"], tf.cast(image, tf.uint8))
    return result


def predict_attributes(predict: Callable[[tf.Tensor], Tensor], image: Tensor, image_size: int) -> tf.Tensor:
    """uint8 [N, H, W, 3] -> the model's {0, 1} attribute prediction float32 [N, K] (`predict` at resolution S)."""
    image = tf.convert_to_tensor(image)
    with tf.control_dependencies([tf.debugging.assert_rank(image, 4, message="image must be uint8 [N, H, W, 3]")]):
        image = tf.identity(image)
    return tf.cast(predict(preprocess_images(image, image_size)), tf.float32)


class CompiledInference:
    """`run_inference` (and `predict_attributes`) around one model as `tf.function`s, traced ONCE for every batch
    size and image size: the input signatures have None batch, height and width (the network itself always runs
    at S x S). This is the `tf_faceedit.load(model_dir)` backend's path, so edit, augment, evaluate and the demo
    never run the networks eagerly; it computes what the exported `serving_default` signature computes.

    With `freeze=True` each function is traced at construction and its variables are folded into constants
    (TensorFlow's `convert_variables_to_constants_v2`, what a frozen serving graph is): oneDNN then prepares each
    convolution's weights once instead of on every call, 6-30 % of a batch-1 forward on CPU (issue 17, see
    docs/RESULTS.md). The weights are those of that moment: later changes to the model's variables are not seen
    (`tf_faceedit.load` freezes, since a loaded model does not train). Inputs of another dtype or shape than the
    signature's (e.g. a wrong number of attributes) go through the unfrozen function, which gives the same
    one-line errors as without freezing.

    Args:
      infer: the model's `infer` (see `run_inference`); predict: its `predict_attributes`, or None.
      task, image_size, num_attributes: as for `run_inference`.
      freeze: fold the variables into constants (see above).
    Call: `compiled(image, attributes, mask=None)` -> the dict of `run_inference` (tensors);
      `compiled.predict(image)` -> float32 [N, K]. `tracing_count()`: traces so far (1 per function used).
    """

    def __init__(
        self,
        infer: Callable[[dict[str, tf.Tensor]], Mapping[str, Tensor]],
        task: str,
        image_size: int,
        num_attributes: int,
        predict: Callable[[tf.Tensor], Tensor] | None = None,
        freeze: bool = False,
    ) -> None:
        if task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
        self.task, self.image_size, self.num_attributes = task, int(image_size), int(num_attributes)
        image_spec = tf.TensorSpec([None, None, None, 3], tf.uint8, name="image")
        attributes_spec = tf.TensorSpec([None, self.num_attributes], tf.float32, name="attributes")
        if task == "complete":
            mask_spec = tf.TensorSpec([None, None, None, 1], tf.uint8, name="mask")

            @tf.function(input_signature=[image_spec, attributes_spec, mask_spec])
            def run(image, attributes, mask):
                return run_inference(infer, task, image, attributes, self.image_size, self.num_attributes, mask)
        else:

            @tf.function(input_signature=[image_spec, attributes_spec])
            def run(image, attributes):
                return run_inference(infer, task, image, attributes, self.image_size, self.num_attributes)

        self._run = run
        self._predict = None
        if predict is not None:

            @tf.function(input_signature=[image_spec])
            def predict_fn(image):
                return predict_attributes(predict, image, self.image_size)

            self._predict = predict_fn
        self._frozen_run = self._frozen_predict = None
        if freeze:
            self._frozen_run = _frozen(self._run)
            self._frozen_predict = _frozen(self._predict) if self._predict is not None else None

    def __call__(self, image: Tensor, attributes: Tensor, mask: Tensor | None = None) -> dict[str, tf.Tensor]:
        if self.task == "complete":
            if mask is None:
                raise ValueError("a completion model needs a mask")
            args = (image, attributes, mask)
        else:
            args = (image, attributes)
        return _call(self._run, self._frozen_run, args)

    def predict(self, image: Tensor) -> tf.Tensor:
        if self._predict is None:
            raise ValueError("this model has no predict_attributes")
        return _call(self._predict, self._frozen_predict, (image,))

    def tracing_count(self) -> int:
        """How many times the functions were traced (a retrace per call would show here)."""
        count = self._run.experimental_get_tracing_count()
        return count + (self._predict.experimental_get_tracing_count() if self._predict is not None else 0)


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
