"""Gradient penalties on the critic/discriminator, per example [N].

One gradient penalty for every method (STYLE rule 9): WGAN-GP's penalty with alpha ~ U(0, 1) drawn per SAMPLE and
epsilon INSIDE the square root (so the gradient of the norm stays finite where the input gradient vanishes).
Gradients with respect to the inputs come from `tf_faceedit.backend.native.input_gradient`, which is differentiable
again, so these penalties can be minimised with respect to the critic's weights inside its training tape / grad.

`critic_fn` is any callable image batch -> logits ([N], [N, 1] or a patch map [N, h, w, 1]), e.g.
`lambda x: discriminator(x, training=True)` (a multi-output discriminator is wrapped to return only its adversarial
head). Its outputs are summed before differentiating; since example i's logits depend only on example i's input
(no batch-coupling layers such as batch norm in the critic), the gradient of the sum is the per-example gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from tf_faceedit.backend import native
from tf_faceedit.backend.tensor_types import Tensor
from tf_faceedit.losses.reduction import as_float_tensor, per_example_sum


def gradient_penalty(
    critic_fn: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    seed: int | keras.random.SeedGenerator | None = None,
    epsilon: float = 1e-10,
) -> Tensor:
    """WGAN-GP penalty (||grad_x D(x_hat)||_2 - 1)^2 per example [N] (Gulrajani et al., "Improved Training of
    Wasserstein GANs", NeurIPS 2017).

    x_hat = real + alpha * (fake - real) with alpha ~ U(0, 1) drawn once per sample (shape [N, 1, 1, 1] for images),
    and the norm is sqrt(sum(g^2 over non-batch axes) + epsilon).

    Args:
      critic_fn: callable x -> logits (see module docstring).
      real: real images [N, ...].
      fake: generated images, same shape (cast to real's dtype).
      seed: int, None or a `keras.random.SeedGenerator` for alpha. An int gives the same alpha at every call; pass a
        SeedGenerator for fresh, reproducible draws during training (and always under JAX jit).
      epsilon: added to the squared norm inside the square root.

    Returns:
      [N] penalties; the caller multiplies by lambda_gp (10 in the paper) and reduces with `compute_average_loss`.
    """
    real = keras.ops.convert_to_tensor(real)
    fake = keras.ops.cast(fake, real.dtype)
    rank = len(real.shape)
    if rank < 2:
        raise ValueError(f"gradient_penalty expects inputs [N, ...] with rank >= 2, got shape {tuple(real.shape)}")
    batch = real.shape[0] if real.shape[0] is not None else keras.ops.shape(real)[0]
    alpha = keras.random.uniform((batch,) + (1,) * (rank - 1), minval=0.0, maxval=1.0, dtype=real.dtype, seed=seed)
    interpolated = real + alpha * (fake - real)
    grad = as_float_tensor(native.input_gradient(critic_fn, interpolated))
    norm = keras.ops.sqrt(per_example_sum(keras.ops.square(grad)) + epsilon)
    return keras.ops.square(norm - 1.0)


def r1_penalty(critic_fn: Callable[[Tensor], Tensor], real: Tensor) -> Tensor:
    """R1 penalty ||grad_x D(x)||^2 on real data, per example [N] (Mescheder et al., "Which Training Methods for GANs
    do actually Converge?", ICML 2018).

    The paper's regulariser is (gamma / 2) * E||grad D(x)||^2; this function returns the squared norm WITHOUT the
    1/2 factor, so the caller multiplies by gamma / 2.

    Args:
      critic_fn: callable x -> logits (see module docstring).
      real: real images [N, ...].

    Returns:
      [N] squared gradient norms (sum over all non-batch axes).
    """
    real = keras.ops.convert_to_tensor(real)
    grad = as_float_tensor(native.input_gradient(critic_fn, real))
    return per_example_sum(keras.ops.square(grad))
