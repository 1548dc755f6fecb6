"""Normalization, activation and initializer factories shared by every network.

All factories return plain `keras.layers` objects (or None for "no layer"), so the networks built from them run
on every Keras 3 backend and serialize without custom objects.

Kinds:
  normalization: "instance" | "batch" | "layer" | "none"
  activation:    "relu" | "lrelu" (= "leaky_relu") | "tanh" | "sigmoid" | "none" (= "linear" = None)
"""

from __future__ import annotations

from typing import Any

import keras

from tf_faceedit.backend import native

NORMALIZATIONS = ("instance", "batch", "layer", "none")
ACTIVATIONS = ("relu", "lrelu", "leaky_relu", "tanh", "sigmoid", "none", "linear")


def normalization(kind: str | None, name: str | None = None, **kwargs: Any) -> keras.layers.Layer | None:
    """Returns a normalization layer of `kind`, or None for "none".

    "instance": `InstanceNormalization(epsilon=1e-5)`, per-sample per-channel statistics over the spatial axes with
      learned per-channel scale and offset (Ulyanov et al., 2016; no tensorflow-addons). It computes what
      `keras.layers.GroupNormalization(groups=-1)` computes, without the reshape to groups (faster; see the class).
    "batch": `BatchNormalization(momentum=0.9, epsilon=1e-5)` (the PyTorch-style defaults of the papers): Keras'
      layer, with TensorFlow's fused kernel on that backend (see the class).
    "layer": `keras.layers.LayerNormalization()` over the channel axis.
    "none": None.

    Args:
      kind: one of NORMALIZATIONS (case-insensitive); None is read as "none".
      name: optional layer name.
      **kwargs: override the defaults above (e.g. `epsilon=1e-3`, `dtype=...`).

    Raises:
      ValueError: unknown kind.
    """
    key = "none" if kind is None else str(kind).lower()
    if name is not None:
        kwargs["name"] = name
    if key == "instance":
        return InstanceNormalization(**{"epsilon": 1e-5, **kwargs})
    if key == "batch":
        return BatchNormalization(**{"momentum": 0.9, "epsilon": 1e-5, **kwargs})
    if key == "layer":
        return keras.layers.LayerNormalization(**kwargs)
    if key == "none":
        return None
    raise ValueError(f"Unknown normalization {kind!r}; expected one of: {', '.join(NORMALIZATIONS)}")


@keras.saving.register_keras_serializable(package="tf_faceedit")
class InstanceNormalization(keras.layers.Layer):
    """Instance normalization: y = (x - mean) / sqrt(var + epsilon) * gamma + beta, the mean and the (biased)
    variance taken per sample and per channel over the spatial axes (Ulyanov et al., 2016).

    Input [N, ..., C] (channels last, rank >= 3); output of the same shape. gamma [C] (init 1) and beta [C] (init 0)
    are the layer's weights, in that order and under those names, as in `keras.layers.GroupNormalization`, so
    networks saved with `GroupNormalization(groups=-1)` as their instance norm (tf_faceedit < 0.2) load unchanged.

    It computes the same function as `GroupNormalization(groups=-1)` (equal within float rounding: a test), but
    reduces the input directly over its spatial axes where GroupNormalization reshapes it to [N, H, W, C, 1] and
    back, and folds the affine part into one scale-and-shift (x * a + b). Statistics are taken in float32 under a
    mixed-precision policy; the output is in the layer's compute dtype. In training on TensorFlow the gradient is the
    closed form of `tf_faceedit.backend.native.instance_norm` (same forward values, about half the passes of autodiff).

    Args:
      epsilon: added to the variance.
      center: learn beta.
      scale: learn gamma.
      **kwargs: `keras.layers.Layer` arguments (name, dtype, ...).
    """

    def __init__(self, epsilon: float = 1e-5, center: bool = True, scale: bool = True, **kwargs: Any) -> None:
        for legacy in ("groups", "axis"):  # GroupNormalization's; only one group per channel, channels last
            value = kwargs.pop(legacy, None)
            if value not in (None, -1):
                raise ValueError(
                    f"InstanceNormalization works on the last axis, one group per channel; got {legacy}={value!r}"
                )
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        if len(input_shape) < 3 or input_shape[-1] is None:
            raise ValueError(f"InstanceNormalization needs [N, ..., C] inputs with a known C, got {tuple(input_shape)}")
        dim = int(input_shape[-1])
        self.gamma = (
            self.add_weight(shape=(dim,), name="gamma", initializer="ones", autocast=False) if self.scale else None
        )
        self.beta = (
            self.add_weight(shape=(dim,), name="beta", initializer="zeros", autocast=False) if self.center else None
        )

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        x = inputs
        if keras.backend.standardize_dtype(x.dtype) in ("float16", "bfloat16"):
            x = keras.ops.cast(x, "float32")
        if training and native.has_instance_norm_gradient() and keras.backend.standardize_dtype(x.dtype) == "float32":
            # in training only: inference, export and TFLite keep the plain ops (the same forward values)
            gamma = None if self.gamma is None else keras.ops.cast(self.gamma, x.dtype)
            beta = None if self.beta is None else keras.ops.cast(self.beta, x.dtype)
            return keras.ops.cast(native.instance_norm(x, gamma, beta, self.epsilon), self.compute_dtype)
        axes = tuple(range(1, len(x.shape) - 1))
        mean, variance = keras.ops.moments(x, axes=axes, keepdims=True)
        inv = keras.ops.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            inv = inv * keras.ops.cast(self.gamma, x.dtype)
        shift = -mean * inv
        if self.beta is not None:
            shift = shift + keras.ops.cast(self.beta, x.dtype)
        return keras.ops.cast(x * inv + shift, self.compute_dtype)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(epsilon=self.epsilon, center=self.center, scale=self.scale)
        return config


@keras.saving.register_keras_serializable(package="tf_faceedit")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` (same arguments, weights and results) run by TensorFlow's fused kernel.

    Keras 3 computes batch norm with separate ops (the moments, then the scale-and-shift, each a pass over the
    tensor, and as many again in the gradient); TensorFlow's `FusedBatchNormV3` (oneDNN on CPU) does the forward in
    one kernel and the gradient in one more (`tf_faceedit.backend.native.fused_batch_norm`). On the TensorFlow backend,
    for [N, H, W, C] inputs normalised over the last axis (no mask, renorm or synchronized statistics), `call` uses
    it; everywhere else it is Keras' layer. Same results within float rounding: the batch statistics normalise in
    training, the moving statistics are updated with momentum from the BIASED batch variance, as Keras does, and
    inference uses the moving statistics.
    """

    def _fused_applies(self, inputs, mask):
        if not native.has_fused_batch_norm() or mask is not None or self.renorm or self.synchronized:
            return False
        return len(inputs.shape) == 4 and self.axis in (-1, 3)

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        if not self._fused_applies(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        ops = keras.ops
        x = ops.cast(inputs, "float32")
        channels = x.shape[-1]
        gamma = ops.cast(self.gamma, "float32") if self.scale else ops.ones((channels,), "float32")
        beta = ops.cast(self.beta, "float32") if self.center else ops.zeros((channels,), "float32")
        if training and self.trainable:
            y, mean, variance = native.fused_batch_norm(x, gamma, beta, epsilon=self.epsilon)
            momentum = self.momentum
            self.moving_mean.assign(ops.cast(self.moving_mean, "float32") * momentum + mean * (1.0 - momentum))
            self.moving_variance.assign(
                ops.cast(self.moving_variance, "float32") * momentum + variance * (1.0 - momentum)
            )
        else:
            y, _, _ = native.fused_batch_norm(
                x,
                gamma,
                beta,
                epsilon=self.epsilon,
                mean=ops.cast(self.moving_mean, "float32"),
                variance=ops.cast(self.moving_variance, "float32"),
            )
        return ops.cast(y, self.compute_dtype)


def gan_initializer(stddev: float = 0.02) -> keras.initializers.RandomNormal:
    """Returns `keras.initializers.RandomNormal(0.0, stddev)`: the N(0, 0.02) init of DCGAN (Radford et al., 2016)."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=stddev)


def activation_layer(name_or_none: str | None, negative_slope: float = 0.2, **kwargs: Any) -> keras.layers.Layer | None:
    """Returns an activation layer, or None for "none"/"linear"/None.

    Args:
      name_or_none: one of ACTIVATIONS (case-insensitive) or None.
      negative_slope: slope of "lrelu"/"leaky_relu" for x < 0 (0.2 in the GAN literature).
      **kwargs: forwarded to the layer constructor (e.g. `name=`, `dtype=`).

    Raises:
      ValueError: unknown activation.
    """
    key = "none" if name_or_none is None else str(name_or_none).lower()
    if key == "relu":
        return keras.layers.ReLU(**kwargs)
    if key in ("lrelu", "leaky_relu"):
        return keras.layers.LeakyReLU(negative_slope=negative_slope, **kwargs)
    if key in ("tanh", "sigmoid"):
        # the squashing outputs (images, attention masks) compute in float32 under a mixed-precision policy
        policy = keras.dtype_policies.get(kwargs.get("dtype") or keras.config.dtype_policy())
        if policy.compute_dtype in ("float16", "bfloat16"):
            kwargs["dtype"] = "float32"
        return keras.layers.Activation(key, **kwargs)
    if key in ("none", "linear"):
        return None
    raise ValueError(f"Unknown activation {name_or_none!r}; expected one of: {', '.join(ACTIVATIONS)} or None")
