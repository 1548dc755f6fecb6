"""Reducing per-example losses to the scalar that is differentiated (STYLE rule 8: scale for distribution once).

Every loss in `tf_faceedit.losses` returns a per-example vector [N]. The trainer turns it into a scalar with
`compute_average_loss(per_example, global_batch_size)` = sum(per_example) / global_batch_size, the semantics of
`tf.nn.compute_average_loss`: under a distribution strategy each replica sees N = global_batch / replicas examples
and divides by the GLOBAL batch size, so summing the replicas' gradients (what the strategy does) gives the gradient
of the global mean. Never mix this with a plain mean over the batch, which would scale gradients by the number of
replicas.
"""

from __future__ import annotations

import keras

from tf_faceedit.backend.tensor_types import Tensor


def as_float_tensor(x: Tensor) -> Tensor:
    """Converts x to a float tensor for loss computation: ints -> floatx, float16/bfloat16 -> float32 (losses of
    mixed-precision models are computed in float32); float32/float64 are kept."""
    x = keras.ops.convert_to_tensor(x)
    dtype = keras.backend.standardize_dtype(x.dtype)
    if not keras.backend.is_float_dtype(dtype):
        return keras.ops.cast(x, keras.backend.floatx())
    if dtype in ("float16", "bfloat16"):
        return keras.ops.cast(x, "float32")
    return x


def per_example_mean(x: Tensor) -> Tensor:
    """Mean over every non-batch axis: [N, ...] -> [N]; a vector [N] is returned as is.

    Raises:
      ValueError: x is a scalar (there is no batch axis).
    """
    x = as_float_tensor(x)
    rank = len(x.shape)
    if rank == 0:
        raise ValueError("per_example_mean needs a tensor with a batch axis, got a scalar")
    if rank == 1:
        return x
    return keras.ops.mean(x, axis=tuple(range(1, rank)))


def per_example_sum(x: Tensor) -> Tensor:
    """Sum over every non-batch axis: [N, ...] -> [N]; a vector [N] is returned as is."""
    x = as_float_tensor(x)
    rank = len(x.shape)
    if rank == 0:
        raise ValueError("per_example_sum needs a tensor with a batch axis, got a scalar")
    if rank == 1:
        return x
    return keras.ops.sum(x, axis=tuple(range(1, rank)))


def compute_average_loss(per_example_loss: Tensor, global_batch_size: int | float | Tensor | None = None) -> Tensor:
    """Returns sum(per_example_loss) / global_batch_size, a scalar (`tf.nn.compute_average_loss` semantics).

    Args:
      per_example_loss: [N] per-example losses of this replica (any rank >= 1 is summed over all its elements).
      global_batch_size: the batch size summed over ALL replicas, a python number or a scalar tensor. None means the
        local batch size N, which is right only without a distribution strategy; under a strategy pass the global
        batch size explicitly (`tf.nn.compute_average_loss` would read the replica count from the strategy, which
        backend-portable code cannot).

    Raises:
      ValueError: per_example_loss is a scalar, or global_batch_size is a non-positive python number.
    """
    loss = as_float_tensor(per_example_loss)
    if len(loss.shape) == 0:
        raise ValueError(
            "compute_average_loss expects per-example losses with a batch axis, got a scalar "
            "(reduce per example, not over the batch)"
        )
    if global_batch_size is None:
        denominator = keras.ops.cast(keras.ops.shape(loss)[0], loss.dtype)
    else:
        if isinstance(global_batch_size, (int, float)) and global_batch_size <= 0:
            raise ValueError(f"global_batch_size must be > 0, got {global_batch_size}")
        denominator = keras.ops.cast(global_batch_size, loss.dtype)
    return keras.ops.sum(loss) / denominator
