"""Convolutional building blocks of the generators and discriminators.

Tensors are NHWC. Every block builds its sublayers in `__init__` (so their weights are tracked and saved) and builds
them explicitly in `build`, so a block reloaded from a `.keras` file gets the same weights in the same variables.

  ConvNormAct:   conv (or transposed conv) -> optional normalization -> optional activation
  ResidualBlock: x + [conv-norm-act, conv-norm](x)                                   (He et al., 2016)
  DownBlock:     ConvNormAct with stride 2: [N,H,W,C] -> [N,H/2,W/2,filters]
  UpBlock:       transposed ConvNormAct with stride 2, or nearest-neighbour x2 + conv (Odena et al., 2016):
                 [N,H,W,C] -> [N,2H,2W,filters]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from tf_faceedit.backend.tensor_types import Shape, Tensor
from tf_faceedit.layers.conv_fast_paths import ConvFastPaths
from tf_faceedit.layers.norm import activation_layer, gan_initializer, normalization

PADDINGS = ("same", "valid", "reflect")
UP_MODES = ("transpose", "resize")


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    """Reads an int or a pair of ints as a tuple (h, w)."""
    if isinstance(value, int):
        return (value, value)
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, int) for v in value):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return value


@keras.saving.register_keras_serializable(package="tf_faceedit")
class ConvNormAct(ConvFastPaths, keras.layers.Layer):
    """Convolution -> normalization -> activation, the unit of the DCGAN/CycleGAN/StarGAN family of networks.

    Input [N, H, W, C_in]; output [N, H', W', filters] with H' = ceil(H / strides) for "same" padding,
    H' = H * strides for a transposed "same" convolution (e.g. kernel 4, stride 2 doubles the size), and H' = H for
    "reflect" padding (stride 1 only). The convolution runs through `ConvFastPaths` (`layers/conv_fast_paths.py`)
    where another computation of the same sums is faster on CPU (small maps, thin image heads).

    Args:
      filters: output channels.
      kernel_size: int or (kh, kw).
      strides: int or (sh, sw).
      norm: "instance" | "batch" | "layer" | "none" (see `normalization`).
      activation: "relu" | "lrelu" | "tanh" | "sigmoid" | "none" | None (see `activation_layer`).
      transpose: use `keras.layers.Conv2DTranspose` (fractionally strided convolution) instead of `Conv2D`.
      padding: "same" | "valid" | "reflect". "reflect" pads explicitly by reflection (CycleGAN's ReflectionPad2d,
        Zhu et al., 2017), then runs a "valid" convolution; the total padding per axis is k - 1, split as
        (k - 1) // 2 before and the rest after (the "same" convention), so the size is kept for odd and even kernels.
        Needs strides 1 and transpose False.
      use_bias: convolution bias.
      negative_slope: slope of the leaky ReLU for activation "lrelu".
      kernel_stddev: the kernel is initialised from N(0, kernel_stddev) (DCGAN, Radford et al., 2016).
      **kwargs: `keras.layers.Layer` arguments (name, dtype, ...).
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int] = 3,
        strides: int | Sequence[int] = 1,
        norm: str | None = "instance",
        activation: str | None = "relu",
        transpose: bool = False,
        padding: str = "same",
        use_bias: bool = True,
        negative_slope: float = 0.2,
        kernel_stddev: float = 0.02,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        padding = str(padding).lower()
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}")
        kernel_hw = _pair(kernel_size, "kernel_size")
        strides_hw = _pair(strides, "strides")
        if padding == "reflect" and (strides_hw != (1, 1) or transpose):
            raise ValueError(
                f"padding='reflect' needs strides=1 and transpose=False, got strides={strides!r}, transpose={transpose}"
            )
        self.filters = int(filters)
        self.kernel_size = kernel_size
        self.strides = strides
        self.norm = norm
        self.activation = activation
        self.transpose = bool(transpose)
        self.padding = padding
        self.use_bias = bool(use_bias)
        self.negative_slope = float(negative_slope)
        self.kernel_stddev = float(kernel_stddev)

        if padding == "reflect":
            # Same split as TF's "same" padding: the extra pixel of an even kernel goes after.
            self._pad_width = [
                [0, 0],
                [(kernel_hw[0] - 1) // 2, kernel_hw[0] - 1 - (kernel_hw[0] - 1) // 2],
                [(kernel_hw[1] - 1) // 2, kernel_hw[1] - 1 - (kernel_hw[1] - 1) // 2],
                [0, 0],
            ]
        else:
            self._pad_width = None
        conv_class = keras.layers.Conv2DTranspose if self.transpose else keras.layers.Conv2D
        self.conv = conv_class(
            self.filters,
            kernel_hw,
            strides=strides_hw,
            padding="valid" if padding == "reflect" else padding,
            use_bias=self.use_bias,
            kernel_initializer=gan_initializer(self.kernel_stddev),
            dtype=self.dtype_policy,
            name="conv",
        )
        self.norm_layer = normalization(norm, name="norm", dtype=self.dtype_policy)
        self.act = activation_layer(activation, negative_slope=self.negative_slope, name="act", dtype=self.dtype_policy)

    def _padded_shape(self, input_shape: Shape) -> tuple[int | None, ...]:
        if self._pad_width is None:
            return tuple(input_shape)
        shape = list(input_shape)
        for axis in (1, 2):
            if shape[axis] is not None:
                shape[axis] += sum(self._pad_width[axis])
        return tuple(shape)

    def build(self, input_shape: Shape) -> None:
        conv_input_shape = self._padded_shape(input_shape)
        self.conv.build(conv_input_shape)
        if self.norm_layer is not None:
            self.norm_layer.build(self.conv.compute_output_shape(conv_input_shape))

    def call(self, inputs: Tensor, training: bool | None = None) -> Tensor:
        x = inputs
        if self._pad_width is not None:
            x = keras.ops.pad(x, self._pad_width, mode="reflect")
        x = self._convolve(x, training)
        if self.norm_layer is not None:
            x = self.norm_layer(x, training=training)
        if self.act is not None:
            x = self.act(x)
        return x

    def compute_output_shape(self, input_shape: Shape) -> tuple[int | None, ...]:
        return tuple(self.conv.compute_output_shape(self._padded_shape(input_shape)))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            norm=self.norm,
            activation=self.activation,
            transpose=self.transpose,
            padding=self.padding,
            use_bias=self.use_bias,
            negative_slope=self.negative_slope,
            kernel_stddev=self.kernel_stddev,
        )
        return config


@keras.saving.register_keras_serializable(package="tf_faceedit")
class ResidualBlock(keras.layers.Layer):
    """Residual block `x + [conv-norm-act, conv-norm](x)` of the CycleGAN/StarGAN/SaGAN generators' bottleneck.

    Both convolutions have stride 1 and keep the size; there is no activation after the sum (He et al., "Deep
    Residual Learning for Image Recognition", CVPR 2016; as used by Johnson et al., 2016 and StarGAN, Choi et al.,
    2018). Input and output are [N, H, W, filters].

    Args:
      filters: channels of both convolutions; must equal the input channels.
      kernel_size: int or (kh, kw) of both convolutions.
      norm: normalization kind of both convolutions.
      activation: activation after the first convolution.
      padding: "same" or "reflect" ("valid" would shrink the branch and is refused).
      kernel_stddev: std of the N(0, std) kernel initialiser.
      negative_slope: slope of the leaky ReLU for activation "lrelu".
      **kwargs: `keras.layers.Layer` arguments.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int] = 3,
        norm: str | None = "instance",
        activation: str | None = "relu",
        padding: str = "same",
        kernel_stddev: float = 0.02,
        negative_slope: float = 0.2,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if str(padding).lower() not in ("same", "reflect"):
            raise ValueError(f"ResidualBlock padding must be 'same' or 'reflect', got {padding!r}")
        self.filters = int(filters)
        self.kernel_size = kernel_size
        self.norm = norm
        self.activation = activation
        self.padding = str(padding).lower()
        self.kernel_stddev = float(kernel_stddev)
        self.negative_slope = float(negative_slope)
        common = dict(
            kernel_size=kernel_size,
            strides=1,
            norm=norm,
            padding=self.padding,
            kernel_stddev=self.kernel_stddev,
            negative_slope=self.negative_slope,
            dtype=self.dtype_policy,
        )
        self.conv1 = ConvNormAct(self.filters, activation=activation, name="conv1", **common)
        self.conv2 = ConvNormAct(self.filters, activation=None, name="conv2", **common)

    def build(self, input_shape: Shape) -> None:
        channels = input_shape[-1]
        if channels != self.filters:
            raise ValueError(
                f"ResidualBlock {self.name!r} has filters={self.filters} but its input has {channels} channels; "
                "the skip connection needs them equal (project the input first, e.g. with ConvNormAct)"
            )
        self.conv1.build(input_shape)
        self.conv2.build(self.conv1.compute_output_shape(input_shape))

    def call(self, inputs: Tensor, training: bool | None = None) -> Tensor:
        return inputs + self.conv2(self.conv1(inputs, training=training), training=training)

    def compute_output_shape(self, input_shape: Shape) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            norm=self.norm,
            activation=self.activation,
            padding=self.padding,
            kernel_stddev=self.kernel_stddev,
            negative_slope=self.negative_slope,
        )
        return config


@keras.saving.register_keras_serializable(package="tf_faceedit")
class DownBlock(keras.layers.Layer):
    """Downsampling block: a stride-2 ConvNormAct, [N, H, W, C] -> [N, ceil(H/2), ceil(W/2), filters].

    The encoder unit of StarGAN (Choi et al., CVPR 2018) and SaGAN (Zhang et al., ECCV 2018): 4x4 convolution, stride
    2, instance norm, ReLU.

    Args:
      filters: output channels.
      kernel_size: int or (kh, kw).
      norm: normalization kind.
      activation: activation name or None.
      padding: "same" or "valid".
      use_bias: convolution bias.
      negative_slope: slope of the leaky ReLU for activation "lrelu".
      kernel_stddev: std of the N(0, std) kernel initialiser.
      **kwargs: `keras.layers.Layer` arguments.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int] = 4,
        norm: str | None = "instance",
        activation: str | None = "relu",
        padding: str = "same",
        use_bias: bool = True,
        negative_slope: float = 0.2,
        kernel_stddev: float = 0.02,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = kernel_size
        self.norm = norm
        self.activation = activation
        self.padding = str(padding).lower()
        self.use_bias = bool(use_bias)
        self.negative_slope = float(negative_slope)
        self.kernel_stddev = float(kernel_stddev)
        self.block = ConvNormAct(
            self.filters,
            kernel_size=kernel_size,
            strides=2,
            norm=norm,
            activation=activation,
            padding=self.padding,
            use_bias=self.use_bias,
            negative_slope=self.negative_slope,
            kernel_stddev=self.kernel_stddev,
            dtype=self.dtype_policy,
            name="block",
        )

    def build(self, input_shape: Shape) -> None:
        self.block.build(input_shape)

    def call(self, inputs: Tensor, training: bool | None = None) -> Tensor:
        return self.block(inputs, training=training)

    def compute_output_shape(self, input_shape: Shape) -> tuple[int | None, ...]:
        return self.block.compute_output_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            norm=self.norm,
            activation=self.activation,
            padding=self.padding,
            use_bias=self.use_bias,
            negative_slope=self.negative_slope,
            kernel_stddev=self.kernel_stddev,
        )
        return config


@keras.saving.register_keras_serializable(package="tf_faceedit")
class UpBlock(keras.layers.Layer):
    """Upsampling block, [N, H, W, C] -> [N, 2H, 2W, filters].

    mode "transpose": a 4x4 stride-2 transposed ConvNormAct (StarGAN/SaGAN decoders).
    mode "resize": nearest-neighbour x2 upsampling then a stride-1 ConvNormAct, which avoids the checkerboard
      artefacts of transposed convolutions (Odena et al., "Deconvolution and Checkerboard Artifacts", Distill 2016).

    Args:
      filters: output channels.
      kernel_size: int or (kh, kw).
      norm: normalization kind.
      activation: activation name or None.
      mode: "transpose" | "resize".
      padding: "same"; mode "resize" also accepts "reflect".
      use_bias: convolution bias.
      negative_slope: slope of the leaky ReLU for activation "lrelu".
      kernel_stddev: std of the N(0, std) kernel initialiser.
      **kwargs: `keras.layers.Layer` arguments.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int] = 4,
        norm: str | None = "instance",
        activation: str | None = "relu",
        mode: str = "transpose",
        padding: str = "same",
        use_bias: bool = True,
        negative_slope: float = 0.2,
        kernel_stddev: float = 0.02,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        mode = str(mode).lower()
        if mode not in UP_MODES:
            raise ValueError(f"UpBlock mode must be one of {', '.join(UP_MODES)}, got {mode!r}")
        padding = str(padding).lower()
        allowed = ("same", "reflect") if mode == "resize" else ("same",)
        if padding not in allowed:
            raise ValueError(
                f"UpBlock mode={mode!r} needs padding in {allowed}, got {padding!r} (the size must double)"
            )
        self.filters = int(filters)
        self.kernel_size = kernel_size
        self.norm = norm
        self.activation = activation
        self.mode = mode
        self.padding = padding
        self.use_bias = bool(use_bias)
        self.negative_slope = float(negative_slope)
        self.kernel_stddev = float(kernel_stddev)
        if mode == "resize":
            self.upsample = keras.layers.UpSampling2D(
                size=2, interpolation="nearest", dtype=self.dtype_policy, name="upsample"
            )
        else:
            self.upsample = None
        self.block = ConvNormAct(
            self.filters,
            kernel_size=kernel_size,
            strides=1 if mode == "resize" else 2,
            norm=norm,
            activation=activation,
            transpose=mode == "transpose",
            padding=padding,
            use_bias=self.use_bias,
            negative_slope=self.negative_slope,
            kernel_stddev=self.kernel_stddev,
            dtype=self.dtype_policy,
            name="block",
        )

    def _block_input_shape(self, input_shape: Shape) -> tuple[int | None, ...]:
        if self.upsample is None:
            return tuple(input_shape)
        return tuple(self.upsample.compute_output_shape(input_shape))

    def build(self, input_shape: Shape) -> None:
        self.block.build(self._block_input_shape(input_shape))

    def call(self, inputs: Tensor, training: bool | None = None) -> Tensor:
        x = inputs if self.upsample is None else self.upsample(inputs)
        return self.block(x, training=training)

    def compute_output_shape(self, input_shape: Shape) -> tuple[int | None, ...]:
        return self.block.compute_output_shape(self._block_input_shape(input_shape))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            norm=self.norm,
            activation=self.activation,
            mode=self.mode,
            padding=self.padding,
            use_bias=self.use_bias,
            negative_slope=self.negative_slope,
            kernel_stddev=self.kernel_stddev,
        )
        return config
