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

NORMALIZATIONS = ("instance", "batch", "layer", "none")
ACTIVATIONS = ("relu", "lrelu", "leaky_relu", "tanh", "sigmoid", "none", "linear")


def normalization(kind: str | None, name: str | None = None, **kwargs: Any) -> keras.layers.Layer | None:
    """Returns a normalization layer of `kind`, or None for "none".

    "instance": instance normalization with learned per-channel scale and offset (Ulyanov et al., 2016), written as
      `keras.layers.GroupNormalization(groups=-1, epsilon=1e-5)` (one group per channel; no tensorflow-addons).
    "batch": `keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)` (the PyTorch-style defaults of the papers).
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
        return keras.layers.GroupNormalization(**{"groups": -1, "epsilon": 1e-5, **kwargs})
    if key == "batch":
        return keras.layers.BatchNormalization(**{"momentum": 0.9, "epsilon": 1e-5, **kwargs})
    if key == "layer":
        return keras.layers.LayerNormalization(**kwargs)
    if key == "none":
        return None
    raise ValueError(f"Unknown normalization {kind!r}; expected one of: {', '.join(NORMALIZATIONS)}")


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
