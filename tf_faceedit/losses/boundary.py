"""Boundary loss of face completion: an L1 term concentrated on the border between the hole and the context, per
example [N].

Images are [N, H, W, C] in [-1, 1]; masks [N, H, W, 1] (or [N, H, W, C]) in {0, 1}, 1 = hole (soft masks in [0, 1]
are accepted). Chen & Zhong ("High Resolution Face Completion with Multiple Controllable Attributes via Fully
End-to-End Progressive GANs", arXiv 1801.07632) penalise ||w ⊙ (I_real − I_syn)||₁ with w the blurred mask
boundary, so that the synthesized region joins the context without a visible seam. Here

    w = 1 − |2 · mean_filter_k(B) − 1|,   B = [M > 0]

with mean_filter_k a k x k box filter, stride 1, "same" padding: a window that crosses the image border averages
only the pixels inside the image (so the image border is not a mask boundary). B binarizes the mask first: at a
progressive stage below the full resolution the mask is average-pooled, and a soft mask (0.5 everywhere, say) would
otherwise weight pixels with no boundary nearby. w is 1 where the window is half hole, half context (on the
boundary), falls linearly to 0 towards pure hole or pure context, and is 0 for every pixel more than k // 2 pixels
(Chebyshev distance) from a pixel on the other side of B's boundary. The window should be small against the image:
at 8x8 a 7x7 window spans the image and w is a global weight (the trainer applies the loss only from
`loss.boundary_min_resolution`, 16x16 by default).
"""

from __future__ import annotations

import keras

from tf_faceedit.backend.tensor_types import Tensor
from tf_faceedit.losses.reduction import as_float_tensor, per_example_mean


def boundary_weights(mask: Tensor, kernel_size: int = 7) -> Tensor:
    """w = 1 - |2 * mean_filter_k(mask) - 1|, same shape as `mask`, values in [0, 1] (see the module docstring).

    Args:
      mask: [N, H, W, 1] (or [N, H, W, C]) in [0, 1], 1 = hole; every pixel > 0 counts as hole.
      kernel_size: side k of the box filter; an odd int >= 1.

    Raises:
      ValueError: kernel_size is not an odd positive int.
    """
    if int(kernel_size) != kernel_size or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"boundary kernel_size must be an odd int >= 1, got {kernel_size}")
    mask = keras.ops.cast(as_float_tensor(mask) > 0.0, "float32")
    blurred = keras.ops.average_pool(mask, pool_size=int(kernel_size), strides=1, padding="same")
    return 1.0 - keras.ops.abs(2.0 * blurred - 1.0)


def boundary_loss(real: Tensor, fake: Tensor, mask: Tensor, kernel_size: int = 7) -> Tensor:
    """mean(w ⊙ |real - fake|) over H, W, C per example [N], with w = `boundary_weights(mask, kernel_size)`.

    Normalised like `masked_l1_loss`: divided by the number of elements H * W * C of one example.
    """
    fake = as_float_tensor(fake)
    real = keras.ops.cast(as_float_tensor(real), fake.dtype)
    weights = keras.ops.cast(boundary_weights(mask, kernel_size), fake.dtype)
    return per_example_mean(weights * keras.ops.abs(real - fake))
