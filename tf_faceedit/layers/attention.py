"""Attention-mask blending of an edited image with the original.

Images are [N, H, W, C] in [-1, 1]; the mask is [N, H, W, 1] in [0, 1] (1 = take the edited pixel) and broadcasts
over channels. The output keeps the original outside the attended region, which is what lets SaGAN and
AttentionGAN edit one attribute without touching the rest of the face.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from tf_faceedit.backend.tensor_types import Shape, Tensor


@keras.saving.register_keras_serializable(package="tf_faceedit")
class AttentionBlend(keras.layers.Layer):
    """Blends `edited * mask + original * (1 - mask)`.

    This is SaGAN's `I_hat = I_a * b + I * (1 - b)`, with `I_a` the attribute-manipulation network's output, `b`
    the spatial attention mask and `I` the input face (Zhang et al., "Generative Adversarial Network with Spatial
    Attention for Face Attribute Editing", ECCV 2018); AttentionGAN uses the same composition.

    call([edited, original, mask]) with edited/original [N, H, W, C] and mask [N, H, W, 1] (or [N, H, W, C]);
    returns [N, H, W, C] in the dtype of `edited`.

    Args:
      **kwargs: `keras.layers.Layer` arguments (name, dtype, ...).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def build(self, input_shape: Sequence[Shape]) -> None:
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 3:
            raise ValueError(f"AttentionBlend expects inputs [edited, original, mask], got shapes {input_shape!r}")

    def call(self, inputs: Sequence[Tensor]) -> Tensor:
        edited, original, mask = inputs
        original = keras.ops.cast(original, edited.dtype)
        mask = keras.ops.cast(mask, edited.dtype)
        return edited * mask + original * (1.0 - mask)

    def compute_output_shape(self, input_shape: Sequence[Shape]) -> tuple[int | None, ...]:
        return tuple(input_shape[0])


@keras.saving.register_keras_serializable(package="tf_faceedit")
class MultiMaskBlend(keras.layers.Layer):
    """Blends n - 1 content masks and the original with n attention masks: `sum_f C_f * A_f + original * A_b`.

    AttentionGAN scheme II (Tang et al., "AttentionGAN: Unpaired Image-to-Image Translation using Attention-Guided
    Generative Adversarial Networks"): the attention masks are a softmax across n channels, the first n - 1
    foreground masks A_f weighting the content masks C_f and the last one A_b (background) the input. With n = 2
    this is `AttentionBlend` with mask A_1.

    call([content, original, attention]) with content [N, H, W, C * (n - 1)] (mask f in channels
    [C * f, C * (f + 1))), original [N, H, W, C] and attention [N, H, W, n]; returns [N, H, W, C].

    Args:
      **kwargs: `keras.layers.Layer` arguments (name, dtype, ...).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def build(self, input_shape: Sequence[Shape]) -> None:
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 3:
            raise ValueError(f"MultiMaskBlend expects inputs [content, original, attention], got {input_shape!r}")
        content, original, attention = input_shape
        channels, n = original[-1], attention[-1]
        if content[-1] != channels * (n - 1):
            raise ValueError(
                f"MultiMaskBlend: content has {content[-1]} channels, expected {channels} * (n - 1) = "
                f"{channels * (n - 1)} for n = {n} attention masks"
            )

    def call(self, inputs: Sequence[Tensor]) -> Tensor:
        content, original, attention = inputs
        original = keras.ops.cast(original, content.dtype)
        attention = keras.ops.cast(attention, content.dtype)
        channels, n = original.shape[-1], attention.shape[-1]
        out = original * attention[..., n - 1 : n]
        for f in range(n - 1):
            out = out + content[..., channels * f : channels * (f + 1)] * attention[..., f : f + 1]
        return out

    def compute_output_shape(self, input_shape: Sequence[Shape]) -> tuple[int | None, ...]:
        return tuple(input_shape[1])
