"""Attribute conditioning of convolutional feature maps.

`TileAttributes` turns an attribute vector [N, K] into K constant maps and concatenates them to features
[N, H, W, C] along the channel axis -> [N, H, W, C + K]. This is how StarGAN (Choi et al., CVPR 2018), IcGAN
(Perarnau et al., 2016), AttGAN and SaGAN feed the target attributes to a convolutional generator. Attributes are
float in {0, 1} (any real value is accepted at inference, e.g. for attribute intensity sliders).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from tf_faceedit.backend.tensor_types import Shape, Tensor


def flip_attribute(attributes: Tensor, index: int) -> Tensor:
    """Attributes [N, K] in {0, 1} with attribute `index` flipped for every sample (sample grids, evaluation)."""
    k = attributes.shape[-1]
    onehot = ops.one_hot(ops.full((ops.shape(attributes)[0],), index, dtype="int32"), k, dtype=attributes.dtype)
    return attributes + onehot * (1.0 - 2.0 * attributes)


def flip_one_attribute(attributes: Tensor, seed: int | keras.random.SeedGenerator | Tensor) -> Tensor:
    """Training targets: one randomly chosen attribute flipped per sample (K = 1: always flipped).

    `seed`: an int, a `keras.random.SeedGenerator` or a seed tensor (see `keras.random`).
    """
    k = attributes.shape[-1]
    if k == 1:
        return 1.0 - attributes
    index = keras.random.randint((ops.shape(attributes)[0],), 0, k, seed=seed)
    onehot = ops.one_hot(index, k, dtype=attributes.dtype)
    return attributes + onehot * (1.0 - 2.0 * attributes)


@keras.saving.register_keras_serializable(package="tf_faceedit")
class TileAttributes(keras.layers.Layer):
    """Concatenates attributes, tiled spatially, to feature maps: ([N,H,W,C], [N,K]) -> [N,H,W,C+K].

    Each attribute becomes a constant H x W map (StarGAN, Choi et al., "StarGAN: Unified Generative Adversarial
    Networks for Multi-Domain Image-to-Image Translation", CVPR 2018). The attributes are cast to the features'
    dtype. Batch, height and width may be unknown (functional models with `shape=(None, None, C)`).

    Args:
      **kwargs: `keras.layers.Layer` arguments (name, dtype, ...).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def build(self, input_shape: Sequence[Shape]) -> None:
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2:
            raise ValueError(f"TileAttributes expects inputs [features, attributes], got shapes {input_shape!r}")
        features_shape, attributes_shape = input_shape
        if len(features_shape) != 4 or len(attributes_shape) != 2:
            raise ValueError(
                "TileAttributes expects features [N, H, W, C] and attributes [N, K], got "
                f"{tuple(features_shape)} and {tuple(attributes_shape)}"
            )

    def call(self, inputs: Sequence[Tensor]) -> Tensor:
        features, attributes = inputs
        attributes = keras.ops.cast(attributes, features.dtype)
        shape = keras.ops.shape(features)
        maps = keras.ops.broadcast_to(
            attributes[:, None, None, :], (shape[0], shape[1], shape[2], keras.ops.shape(attributes)[-1])
        )
        return keras.ops.concatenate([features, maps], axis=-1)

    def compute_output_shape(self, input_shape: Sequence[Shape]) -> tuple[int | None, ...]:
        features_shape, attributes_shape = input_shape
        channels, k = features_shape[-1], attributes_shape[-1]
        batch = features_shape[0] if features_shape[0] is not None else attributes_shape[0]
        out_channels = None if channels is None or k is None else channels + k
        return (batch, features_shape[1], features_shape[2], out_channels)
