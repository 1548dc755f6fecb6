"""Reconstruction and attribute-classification losses, per example [N].

Images are [N, H, W, C] (any rank >= 2 works: every non-batch axis is reduced); masks are [N, H, W, 1] (or
[N, H, W, C]) in {0, 1} with 1 marking the hole / edited region, broadcast over channels; attribute labels are
[N, K] in {0, 1} (soft labels in [0, 1] allowed) and logits [N, K] are raw classifier outputs.

Normalisation: l1_loss, l2_loss and masked_l1_loss all divide by the number of ELEMENTS of one example (H * W * C),
never by the hole area (the convention of Liu et al., "Image Inpainting for Irregular Holes Using Partial
Convolutions", ECCV 2018), so a loss on a small hole is small; weight it with the config, not here.
"""

from __future__ import annotations

import keras

from tf_faceedit.backend.tensor_types import Tensor
from tf_faceedit.losses.reduction import as_float_tensor, per_example_mean, per_example_sum


def _pair(target: Tensor, prediction: Tensor) -> tuple[Tensor, Tensor]:
    prediction = as_float_tensor(prediction)
    target = keras.ops.cast(as_float_tensor(target), prediction.dtype)
    return target, prediction


def l1_loss(target: Tensor, prediction: Tensor) -> Tensor:
    """Mean absolute error over all non-batch axes, per example [N]."""
    target, prediction = _pair(target, prediction)
    return per_example_mean(keras.ops.abs(target - prediction))


def l2_loss(target: Tensor, prediction: Tensor) -> Tensor:
    """Mean squared error over all non-batch axes, per example [N]."""
    target, prediction = _pair(target, prediction)
    return per_example_mean(keras.ops.square(target - prediction))


def masked_l1_loss(
    target: Tensor, prediction: Tensor, mask: Tensor, hole_weight: float | Tensor | None = None
) -> Tensor:
    """L1 restricted to / weighted by a mask, per example [N].

    Without hole_weight: sum(M * |target - prediction|) / (H * W * C), i.e. the hole term of Liu et al. 2018
    (errors outside the mask are ignored; normalised by the number of elements, not by the hole area).
    With hole_weight a in [0, 1]: sum(a * M * |d| + (1 - a) * (1 - M) * |d|) / (H * W * C), a convex weighting of
    the hole and valid regions (a = 0.5 is half the plain L1).

    Args:
      target, prediction: [N, H, W, C].
      mask: [N, H, W, 1] or [N, H, W, C], 1 = hole.
      hole_weight: None or a python float in [0, 1] (or a scalar tensor).

    Raises:
      ValueError: a python hole_weight outside [0, 1].
    """
    target, prediction = _pair(target, prediction)
    mask = keras.ops.cast(as_float_tensor(mask), prediction.dtype)
    diff = keras.ops.abs(target - prediction)
    if hole_weight is None:
        weighted = mask * diff
    else:
        if isinstance(hole_weight, (int, float)) and not 0.0 <= hole_weight <= 1.0:
            raise ValueError(f"hole_weight must be in [0, 1], got {hole_weight}")
        a = keras.ops.cast(hole_weight, prediction.dtype)
        weighted = a * mask * diff + (1.0 - a) * (1.0 - mask) * diff
    # `weighted` has the diff's shape [N, H, W, C] (the mask broadcasts), so the mean divides by H * W * C.
    return per_example_mean(weighted)


def attribute_bce_loss(labels: Tensor, logits: Tensor) -> Tensor:
    """Binary cross-entropy with logits SUMMED over the K attributes, per example [N].

    The StarGAN (Choi et al., 2018) / SaGAN (Zhang et al., 2018) domain-classification loss. Per attribute:
    softplus(z) - y * z = -y log sigmoid(z) - (1 - y) log(1 - sigmoid(z)), evaluated without overflow for any
    finite logit z.
    """
    logits = as_float_tensor(logits)
    labels = keras.ops.cast(as_float_tensor(labels), logits.dtype)
    return per_example_sum(keras.ops.softplus(logits) - labels * logits)
