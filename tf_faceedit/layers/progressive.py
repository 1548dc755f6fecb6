"""Building blocks of progressively grown GANs (Karras et al., "Progressive Growing of GANs for Improved Quality,
Stability, and Variation", ICLR 2018).

Tensors are NHWC; resolutions are powers of two.

  downsample2x(x, factor=2): average pooling, [N, H, W, C] -> [N, H/f, W/f, C]
  upsample2x(x, factor=2):   nearest-neighbour repeat, [N, H, W, C] -> [N, H*f, W*f, C]
  FadeIn:          alpha * new + (1 - alpha) * old, the blend that fades a new resolution's layers in while alpha
                   goes 0 -> 1 over a stage (alpha: a scalar variable or tensor, or one value per example)
  MinibatchStddev: appends one channel holding the mean standard deviation of the features across groups of the
                   batch (lets the discriminator see the variety of a batch)

Equalized learning rate (PGGAN's run-time weight scaling) is not provided: the networks use He-scaled initial
weights and Adam, see docs/methods/pggan_completion.md.
"""

import keras


def downsample2x(x, factor=2):
    """Average pooling by `factor` (pool size = stride = factor, "valid"): [N, H, W, C] -> [N, H/f, W/f, C]."""
    factor = int(factor)
    if factor == 1:
        return x
    return keras.ops.average_pool(x, pool_size=factor, strides=factor, padding="valid")


def upsample2x(x, factor=2):
    """Nearest-neighbour upsampling by `factor` (each pixel repeated f x f): [N, H, W, C] -> [N, H*f, W*f, C]."""
    factor = int(factor)
    if factor == 1:
        return x
    return keras.ops.repeat(keras.ops.repeat(x, factor, axis=1), factor, axis=2)


@keras.saving.register_keras_serializable(package="tf_faceedit")
class FadeIn(keras.layers.Layer):
    """Blends the output of a newly added resolution with the upsampled/downsampled output of the previous one.

    call([new, old, alpha]) -> alpha * new + (1 - alpha) * old, where `new` and `old` have the same shape and
    `alpha` is a scalar (e.g. a non-trainable `keras.Variable` the trainer assigns every step) or any tensor that
    broadcasts against them (e.g. [N, 1, 1, 1]). At alpha = 0 the result is exactly `old`, at alpha = 1 exactly
    `new` (Karras et al., "Progressive Growing of GANs for Improved Quality, Stability, and Variation", ICLR 2018,
    Fig. 2).

    Args:
      **kwargs: `keras.layers.Layer` arguments (name, dtype, ...).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 3:
            raise ValueError(f"FadeIn expects inputs [new, old, alpha], got shapes {input_shape!r}")

    def call(self, inputs):
        new, old, alpha = inputs
        old = keras.ops.cast(old, new.dtype)
        alpha = keras.ops.cast(alpha, new.dtype)
        return alpha * new + (1.0 - alpha) * old

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])


@keras.saving.register_keras_serializable(package="tf_faceedit")
class MinibatchStddev(keras.layers.Layer):
    """Appends the minibatch standard deviation as one extra feature map: [N, H, W, C] -> [N, H, W, C + 1].

    The batch is split into groups of G examples (example i belongs to group-column i mod (N / G)); for each column
    the standard deviation of every feature over its G examples is averaged over (H, W, C) and the scalar is
    broadcast to an [H, W, 1] map for each example of the column (Karras et al., ICLR 2018, Sec. 3). G is the
    largest divisor of N that is <= group_size, so any batch size works (a batch of 1 gets sqrt(epsilon)).

    Args:
      group_size: examples per group (PGGAN: 4).
      epsilon: added to the variance before the square root.
      **kwargs: `keras.layers.Layer` arguments.
    """

    def __init__(self, group_size=4, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        if int(group_size) < 1:
            raise ValueError(f"MinibatchStddev group_size must be >= 1, got {group_size}")
        self.group_size = int(group_size)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"MinibatchStddev expects [N, H, W, C] inputs, got shape {tuple(input_shape)}")

    def _group(self, batch):
        """Largest divisor of `batch` that is <= group_size (graph-safe when batch is a tensor)."""
        if isinstance(batch, int):
            return max(g for g in range(1, min(self.group_size, batch) + 1) if batch % g == 0)
        candidates = keras.ops.arange(1, self.group_size + 1, dtype="int32")
        batch = keras.ops.cast(batch, "int32")
        valid = keras.ops.logical_and(keras.ops.equal(batch % candidates, 0), candidates <= batch)
        return keras.ops.max(keras.ops.where(valid, candidates, keras.ops.ones_like(candidates)))

    def call(self, inputs):
        x = inputs
        shape = keras.ops.shape(x)
        batch = x.shape[0] if x.shape[0] is not None else shape[0]
        group = self._group(batch)
        compute_dtype = "float32" if keras.backend.standardize_dtype(x.dtype) in ("float16", "bfloat16") else x.dtype
        y = keras.ops.cast(keras.ops.reshape(x, (group, -1, shape[1], shape[2], shape[3])), compute_dtype)
        y = y - keras.ops.mean(y, axis=0, keepdims=True)
        std = keras.ops.sqrt(keras.ops.mean(keras.ops.square(y), axis=0) + self.epsilon)  # [N/G, H, W, C]
        std = keras.ops.mean(std, axis=(1, 2, 3))  # [N/G]
        std = keras.ops.tile(std, (group,))  # [N]: example i -> column i mod (N/G)
        maps = keras.ops.broadcast_to(keras.ops.cast(std, x.dtype)[:, None, None, None],
                                      (shape[0], shape[1], shape[2], 1))
        return keras.ops.concatenate([x, maps], axis=-1)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        return tuple(input_shape[:-1]) + (None if channels is None else channels + 1,)

    def get_config(self):
        config = super().get_config()
        config.update(group_size=self.group_size, epsilon=self.epsilon)
        return config
