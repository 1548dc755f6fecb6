"""Backend-specific code: automatic differentiation, and the fused batch-norm kernel; the ONE place in tf_faceedit
where it lives.

Layers and losses are written with `keras.ops` only (STYLE rule 0), but a gradient with respect to an *input*
(the gradient penalty of WGAN-GP, R1) cannot be written with `keras.ops`: each backend has its own autodiff.
`input_gradient` hides that difference, dispatching on `keras.backend.backend()`:

  "tensorflow": a `tf.GradientTape` watching x. Called inside an outer tape (the critic's training tape), the
                inner gradient computation is recorded by the outer tape, so the result is differentiable again
                (second order) with respect to the critic's weights.
  "jax":        `jax.grad` of the summed function; differentiable by construction (also under an outer `jax.grad`
                or `jax.value_and_grad` of a stateless train step).
  "torch":      `torch.autograd.grad(..., create_graph=True)` so the gradient keeps its graph.

`fused_batch_norm` is TensorFlow's `FusedBatchNormV3` (oneDNN on CPU: one kernel forward, one for the gradient,
where `keras.ops` computes batch norm in several passes); `layers.BatchNormalization` uses it where
`has_fused_batch_norm()` says the backend has it, and Keras' own computation elsewhere.

`instance_norm` is instance norm with a closed-form gradient on TensorFlow (its autodiff of the moments is about
twice the passes); `layers.InstanceNormalization` uses it there in training, for float32 statistics.

`xla_conv2d` is a stride-1 convolution compiled by XLA on TensorFlow (one nested `tf.function(jit_compile=True)`,
its gradient compiled too): `layers.ConvNormAct` runs thin-output heads through it in float32 training, where
oneDNN's kernel is 2x slower on AVX2 (docs/RESULTS.md, 2026-12-03).

Backend libraries are imported lazily, inside the function, so importing this module never needs them.
"""

import keras


def input_gradient(fn, x):
    """Returns d sum(fn(x)) / dx, with the shape of x, differentiable itself (second-order safe).

    Args:
      fn: a callable taking one tensor; its output (any shape, e.g. [N], [N, 1] or a patch map [N, h, w, 1]) is
        summed with `keras.ops.sum` before differentiating, so per-example outputs give per-example gradients.
      x: the input tensor (or array) to differentiate with respect to; floating point.

    Returns:
      A tensor of x's shape. Inputs that `fn` does not depend on get zeros (not None).

    Raises:
      NotImplementedError: the Keras backend has no implementation here (e.g. "numpy", "openvino").
    """
    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = keras.ops.sum(fn(x))
        return tape.gradient(y, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    if name == "jax":
        import jax
        import jax.numpy as jnp

        return jax.grad(lambda t: jnp.sum(keras.ops.sum(fn(t))))(jnp.asarray(x))
    if name == "torch":
        import torch

        x = keras.ops.convert_to_tensor(x)
        with torch.enable_grad():
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            y = keras.ops.sum(fn(x))
            (grad,) = torch.autograd.grad(y, x, create_graph=True, allow_unused=True)
        return torch.zeros_like(x) if grad is None else grad
    raise NotImplementedError(
        f"input_gradient is not implemented for the Keras backend {name!r}; use KERAS_BACKEND=tensorflow, jax or torch"
    )


def has_fused_batch_norm():
    """True when `fused_batch_norm` runs on the current Keras backend (TensorFlow)."""
    return keras.backend.backend() == "tensorflow"


def fused_batch_norm(x, gamma, beta, epsilon, mean=None, variance=None):
    """Batch norm of a float32 [N, H, W, C] tensor over N, H, W in one fused kernel (TensorFlow only).

    Args:
      x: [N, H, W, C] float32; gamma, beta: [C] float32.
      epsilon: added to the variance.
      mean, variance: [C] statistics to normalise with (inference); None: the batch's (training).
    Returns:
      (y [N, H, W, C], mean [C], variance [C]): with batch statistics, the batch mean and the BIASED batch
      variance (what Keras' BatchNormalization moves its statistics with; the kernel's own is unbiased and is
      rescaled by (n - 1) / n); with given statistics, those.
    Raises:
      NotImplementedError: another backend (see `has_fused_batch_norm`).
    """
    if not has_fused_batch_norm():
        raise NotImplementedError(f"fused_batch_norm needs the TensorFlow backend, not {keras.backend.backend()!r}")
    import tensorflow as tf

    if mean is None:
        y, batch_mean, unbiased = tf.compat.v1.nn.fused_batch_norm(
            x, gamma, beta, epsilon=epsilon, is_training=True, data_format="NHWC"
        )
        n = tf.cast(tf.size(x) // tf.shape(x)[-1], "float32")
        return y, batch_mean, unbiased * tf.maximum(n - 1.0, 0.0) / n
    y, _, _ = tf.compat.v1.nn.fused_batch_norm(
        x, gamma, beta, mean=mean, variance=variance, epsilon=epsilon, is_training=False, data_format="NHWC"
    )
    return y, mean, variance


def has_instance_norm_gradient():
    """True when `instance_norm` runs on the current Keras backend (TensorFlow)."""
    return keras.backend.backend() == "tensorflow"


def instance_norm(x, gamma, beta, epsilon):
    """Instance norm of a float32 [N, ..., C] tensor over its spatial axes, with a hand-written gradient
    (TensorFlow only).

    The forward is the plain one (moments, then x * a + b with a = gamma / sqrt(var + epsilon), b = beta - mean * a),
    so its values are those of the autodiff version exactly. The gradient is the closed form
      dx = a * (dy - mean(dy) - x_hat * mean(dy * x_hat)),  dgamma = sum(dy * x_hat),  dbeta = sum(dy)
    (means over the spatial axes, sums over the batch too), a few passes over the tensor where TensorFlow's
    autodiff of the moments takes about twice as many, with Tile ops to broadcast each mean's gradient: 1.3-1.7x
    faster forward + backward at SaGAN's 128x128x32 maps on an AVX2 CPU (docs/RESULTS.md, 2026-12-03, fourth
    sitting). The gradient is written in TensorFlow ops, so it can be differentiated again.

    Args:
      x: [N, ..., C] float32 (rank >= 3); gamma, beta: [C] float32 or None (1 and 0, no gradient).
      epsilon: added to the variance.
    Raises:
      NotImplementedError: another backend (see `has_instance_norm_gradient`).
    """
    if not has_instance_norm_gradient():
        raise NotImplementedError(f"instance_norm needs the TensorFlow backend, not {keras.backend.backend()!r}")
    import tensorflow as tf

    axes = list(range(1, len(x.shape) - 1))
    reduce = [0] + axes
    channels = tf.shape(x)[-1:]
    use_gamma, use_beta = gamma is not None, beta is not None
    gamma = tf.convert_to_tensor(gamma) if use_gamma else tf.ones(channels, x.dtype)
    beta = tf.convert_to_tensor(beta) if use_beta else tf.zeros(channels, x.dtype)

    @tf.custom_gradient
    def norm(x, gamma, beta):
        mean, variance = tf.nn.moments(x, axes, keepdims=True)
        rstd = tf.math.rsqrt(variance + epsilon)
        scale = rstd * gamma
        y = x * scale + (beta - mean * scale)

        def grad(dy):
            x_hat = (x - mean) * rstd
            mean_dy = tf.reduce_mean(dy, axes, keepdims=True)
            mean_dy_x_hat = tf.reduce_mean(dy * x_hat, axes, keepdims=True)
            dx = scale * (dy - mean_dy - x_hat * mean_dy_x_hat)
            count = tf.cast(tf.reduce_prod(tf.shape(x)[1:-1]), x.dtype)
            dgamma = tf.reduce_sum(mean_dy_x_hat, reduce) * count if use_gamma else tf.zeros_like(gamma)
            dbeta = tf.reduce_sum(mean_dy, reduce) * count if use_beta else tf.zeros_like(beta)
            return dx, dgamma, dbeta

        return y, grad

    return norm(x, gamma, beta)


_XLA_CONV2D = []


def xla_conv2d(x, kernel, padding):
    """`tf.nn.conv2d(x, kernel, 1, padding)` (NHWC, padding "SAME" or "VALID") compiled by XLA; TensorFlow only.

    One function for the process, traced once per shape; differentiable (first and second order)."""
    if not _XLA_CONV2D:
        import tensorflow as tf

        @tf.function(jit_compile=True, autograph=False)
        def conv(x, kernel, padding):
            return tf.nn.conv2d(x, kernel, 1, padding)

        _XLA_CONV2D.append(conv)
    return _XLA_CONV2D[0](x, kernel, padding)


def onednn_enabled():
    """Whether TensorFlow runs its oneDNN CPU kernels in this process (`tf_faceedit.backend.onednn.enabled`; False
    without TensorFlow). The layers ask here: they import no backend themselves (STYLE rule 0)."""
    from tf_faceedit.backend import onednn

    return onednn.enabled()


def accelerator_visible():
    """True when the current Keras backend computes on a GPU or TPU (what `train.mixed_precision=auto` asks)."""
    name = keras.backend.backend()
    if name == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if name == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))
    if name == "torch":
        import torch

        return torch.cuda.is_available()
    return False
