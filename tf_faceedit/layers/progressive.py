"""Building blocks of progressively grown GANs (Karras et al., "Progressive Growing of GANs for Improved Quality,
Stability, and Variation", ICLR 2018).

Tensors are NHWC; resolutions are powers of two.

  downsample2x(x, factor=2): average pooling, [N, H, W, C] -> [N, H/f, W/f, C]
  upsample2x(x, factor=2):   nearest-neighbour repeat, [N, H, W, C] -> [N, H*f, W*f, C]
  FadeIn:          alpha * new + (1 - alpha) * old, the blend that fades a new resolution's layers in while alpha
                   goes 0 -> 1 over a stage (alpha: a scalar variable or tensor, or one value per example)
  MinibatchStddev: appends one channel holding the mean standard deviation of the features across groups of the
                   batch (lets the discriminator see the variety of a batch)
  stage_resolutions(start, resolution): [start, 2 start, ..., resolution], the side of each stage
  filters_at(R, fmap_base, fmap_max): PGGAN's width at resolution R; he_std(fan_in, gain): He initial std
  ProgressiveNetwork: base `keras.Model` holding the layers of every stage, `set_stage(s)`, the fade-in `alpha`
                   and the active (current-stage) trainable variables

Equalized learning rate (PGGAN's run-time weight scaling) is not provided: the networks use He-scaled initial
weights and Adam, see docs/methods/pggan_completion.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import keras

from tf_faceedit.backend.tensor_types import Shape, Tensor
from tf_faceedit.layers.blocks import ConvNormAct

MIN_FILTERS = 8


def downsample2x(x: Tensor, factor: int = 2) -> Tensor:
    """Average pooling by `factor` (pool size = stride = factor, "valid"): [N, H, W, C] -> [N, H/f, W/f, C]."""
    factor = int(factor)
    if factor == 1:
        return x
    return keras.ops.average_pool(x, pool_size=factor, strides=factor, padding="valid")


def upsample2x(x: Tensor, factor: int = 2) -> Tensor:
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

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # No weights: built from the start, so a network whose single stage never calls its FadeIn still counts as
        # built (Keras' fit under JAX refuses a model with an unbuilt layer).
        self.built = True

    def call(self, inputs: Sequence[Tensor]) -> Tensor:
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 3:
            raise ValueError(f"FadeIn expects inputs [new, old, alpha], got {type(inputs).__name__}")
        new, old, alpha = inputs
        old = keras.ops.cast(old, new.dtype)
        alpha = keras.ops.cast(alpha, new.dtype)
        return alpha * new + (1.0 - alpha) * old

    def compute_output_shape(self, input_shape: Sequence[Shape]) -> tuple[int | None, ...]:
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

    def __init__(self, group_size: int = 4, epsilon: float = 1e-8, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if int(group_size) < 1:
            raise ValueError(f"MinibatchStddev group_size must be >= 1, got {group_size}")
        self.group_size = int(group_size)
        self.epsilon = float(epsilon)

    def build(self, input_shape: Shape) -> None:
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

    def call(self, inputs: Tensor) -> Tensor:
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
        maps = keras.ops.broadcast_to(
            keras.ops.cast(std, x.dtype)[:, None, None, None], (shape[0], shape[1], shape[2], 1)
        )
        return keras.ops.concatenate([x, maps], axis=-1)

    def compute_output_shape(self, input_shape: Shape) -> tuple[int | None, ...]:
        channels = input_shape[-1]
        return tuple(input_shape[:-1]) + (None if channels is None else channels + 1,)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(group_size=self.group_size, epsilon=self.epsilon)
        return config


def is_power_of_two(n: object) -> bool:
    """True for an int n = 2^k >= 1."""
    return isinstance(n, int) and n >= 1 and n & (n - 1) == 0


def stage_resolutions(start_resolution: int, resolution: int) -> list[int]:
    """[start, 2 * start, ..., resolution]: the side of each stage."""
    sizes, r = [], int(start_resolution)
    while r <= resolution:
        sizes.append(r)
        r *= 2
    if sizes[-1] != resolution:
        raise ValueError(f"resolution {resolution} is not start_resolution {start_resolution} times a power of two")
    return sizes


def filters_at(resolution: int, fmap_base: int, fmap_max: int) -> int:
    """PGGAN's width at a resolution: min(fmap_max, 2 * fmap_base / R), at least 8."""
    return max(MIN_FILTERS, min(int(fmap_max), (2 * int(fmap_base)) // int(resolution)))


def he_std(fan_in: int, gain: float = 2.0) -> float:
    """He et al. (2015) initial std sqrt(gain / fan_in) (gain 2 before a (leaky) ReLU, 1 before a linear output)."""
    return math.sqrt(gain / fan_in)


def run_layers(layers: Iterable[keras.layers.Layer], x: Tensor, training: bool | None) -> Tensor:
    """Calls `layers` in sequence on x (each with `training=`)."""
    for layer in layers:
        x = layer(x, training=training)
    return x


class ProgressiveNetwork(keras.Model):
    """Base of progressively grown networks: the stages, the fade-in weight `alpha` and the per-stage variables.

    A subclass creates the layers of EVERY resolution in its constructor, then calls `_build_all_stages` (one
    eager pass per stage creates all variables, so optimizers can be built on all of them); its `call` runs the
    graph of `self.stage`, blending the newest resolution in with `FadeIn` and `self.alpha`; `_used()` lists the
    layers of the current stage (`active_trainable_variables`, what a trainer updates); `get_config` extends
    `_base_config()`. `set_stage(s)` selects stage s (0 = start_resolution); the non-trainable scalar `alpha` is
    assigned by the trainer every step.

    Args:
      resolution: final side (start_resolution times a power of two).
      start_resolution: side of stage 0.
      fmap_base, fmap_max: widths, see `filters_at`.
      negative_slope: LeakyReLU slope of `_conv`.
      **kwargs: `keras.Model` arguments (name, ...).
    """

    def __init__(
        self,
        resolution: int,
        start_resolution: int,
        fmap_base: int,
        fmap_max: int,
        negative_slope: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.resolution = int(resolution)
        self.start_resolution = int(start_resolution)
        self.fmap_base = int(fmap_base)
        self.fmap_max = int(fmap_max)
        self.negative_slope = float(negative_slope)
        self.resolutions = stage_resolutions(self.start_resolution, self.resolution)
        self.num_stages = len(self.resolutions)
        self.stage = self.num_stages - 1
        # fade-in weight of the current stage's new layers; assigned by the trainer every step
        self.alpha = self.add_weight(
            shape=(), initializer="ones", trainable=False, name="alpha", aggregation="only_first_replica"
        )

    def filters(self, resolution: int) -> int:
        """`filters_at(resolution)` with this network's fmap_base / fmap_max."""
        return filters_at(resolution, self.fmap_base, self.fmap_max)

    def _conv(self, filters, kernel_size, fan_in, name, norm="none", activation="lrelu", gain=2.0):
        """A ConvNormAct with He-scaled initial weights for `fan_in` input channels."""
        return ConvNormAct(
            filters,
            kernel_size,
            norm=norm,
            activation=activation,
            negative_slope=self.negative_slope,
            kernel_stddev=he_std(kernel_size * kernel_size * fan_in, gain),
            name=name,
        )

    @property
    def current_resolution(self) -> int:
        return self.resolutions[self.stage]

    def set_stage(self, stage: int) -> None:
        """Selects the graph of stage `stage` (python int, 0 = start resolution); alpha is left as it is."""
        stage = int(stage)
        if not 0 <= stage < self.num_stages:
            raise ValueError(
                f"{self.name}: stage must be in [0, {self.num_stages - 1}] "
                f"(resolutions {self.resolutions}), got {stage}"
            )
        self.stage = stage
        self.predict_function = None  # a stage has its own graph

    def _check_size(self, image):
        size = image.shape[1]
        if size is not None and size != self.current_resolution:
            raise ValueError(
                f"{self.name} is at stage {self.stage} ({self.current_resolution}x"
                f"{self.current_resolution}) but got {size}x{image.shape[2]} images; call "
                f"set_stage() or average-pool the input to the stage resolution"
            )

    def _build_all_stages(self, make_inputs, stage):
        """One eager forward pass per stage on a batch of 1 creates every variable (optimizers are built on all)."""
        for s, r in enumerate(self.resolutions):
            self.stage = s
            self.call(make_inputs(r), training=False)
        self.built = True
        self.set_stage(self.num_stages - 1 if stage is None else stage)

    def _used(self):
        raise NotImplementedError

    @property
    def active_trainable_variables(self) -> list[keras.Variable]:
        """Trainable variables of the layers the current stage uses (both fade-in paths included)."""
        variables = []
        for layer in self._used():
            variables.extend(layer.trainable_variables)
        return variables

    def _base_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "resolution": self.resolution,
            "start_resolution": self.start_resolution,
            "fmap_base": self.fmap_base,
            "fmap_max": self.fmap_max,
            "negative_slope": self.negative_slope,
            "stage": self.stage,
        }
