"""Total-variation loss, per example [N].

Anisotropic L1 total variation (Rudin, Osher & Fatemi, 1992; the form of `tf.image.total_variation`), SUMMED over
every pixel and channel of one example:
    TV(A) = sum_{h,w,c} |A[h+1, w, c] - A[h, w, c]| + |A[h, w+1, c] - A[h, w, c]|
AttentionGAN (Tang et al.) puts it on the attention masks so they stay smooth and do not saturate; because it is a
sum (not a mean) its weight is tiny (1e-6 in the paper). Images are [N, H, W, C].
"""

from __future__ import annotations

import keras

from tf_faceedit.backend.tensor_types import Tensor
from tf_faceedit.losses.reduction import as_float_tensor, per_example_sum


def total_variation_loss(images: Tensor) -> Tensor:
    """Sum of absolute vertical and horizontal neighbour differences over H, W and C, per example [N].

    Raises:
      ValueError: images are not rank 4 [N, H, W, C].
    """
    x = as_float_tensor(images)
    if len(x.shape) != 4:
        raise ValueError(f"total_variation_loss expects [N, H, W, C] images, got shape {tuple(x.shape)}")
    vertical = keras.ops.abs(x[:, 1:, :, :] - x[:, :-1, :, :])
    horizontal = keras.ops.abs(x[:, :, 1:, :] - x[:, :, :-1, :])
    return per_example_sum(vertical) + per_example_sum(horizontal)
