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

from tf_faceedit import backend
from tf_faceedit.layers.norm import activation_layer, gan_initializer, normalization
from tf_faceedit.tensor_types import Shape, Tensor

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


# at most this many positions (output of a convolution, input of a transposed one): matrix products instead of
# oneDNN's convolution (ConvNormAct._small_map_plan)
SMALL_MAP = 4

# A stride-1 convolution with at most THIN_OUTPUT output channels, a kernel of at least 3x3 and a map of at least
# THIN_MIN_POSITIONS positions (the generators' 7x7 image and mask heads) runs in training through an XLA-compiled
# function on TensorFlow, in float32, where TensorFlow runs Eigen's kernels (oneDNN off): Eigen's kernels for it are
# 2x slower than XLA's, forward and both gradients (docs/RESULTS.md, 2026-12-03). With oneDNN on (the default of
# `import tf_faceedit` on x86-64 Linux) the plain layer is 1.9x faster than XLA (2026-12-04) and is kept, as in
# inference, export and bfloat16.
THIN_OUTPUT = 4
THIN_MIN_POSITIONS = 32 * 32
# In inference (training not True) such a head with "same" zero padding and a kernel of at least THIN_BLOCKED_KERNEL
# runs as a convolution of the map's THIN_BLOCK x THIN_BLOCK space-to-depth rearrangement: the same sums, with
# THIN_BLOCK**2 times the output channels (and a few zero taps). oneDNN vectorizes over output channels, so 1-3
# outputs waste most of each vector: on 128x128x32, 7x7 to 1 output 1.9 -> 0.9 ms, to 3 outputs 1.9 -> 1.2 ms
# (docs/RESULTS.md, 2026-12-04 eighth sitting). `_blocked_conv`.
THIN_BLOCK = 2
THIN_BLOCKED_KERNEL = 5

_ONEDNN: list[bool] = []


def _onednn_on() -> bool:
    """Whether TensorFlow runs its oneDNN kernels in this process (read once; a module function: tests patch it)."""
    if not _ONEDNN:
        _ONEDNN.append(backend.onednn_enabled())
    return _ONEDNN[0]


def _block_placement(k: int, b: int) -> list:
    """P[D][s][r][i] = 1 where b D + s = r + i (D < blocks, s, r < b, i < k): where kernel tap i of output phase r
    lands in a b-blocked kernel (`ConvNormAct._blocked_conv`), along one axis (nested lists: no array library here)."""
    blocks = (b - 1 + k - 1) // b + 1
    return [
        [[[1.0 if b * d + s == r + i else 0.0 for i in range(k)] for r in range(b)] for s in range(b)]
        for d in range(blocks)
    ]


def _xla_conv2d(x: Tensor, kernel: Tensor, padding: str) -> Tensor:
    """`backend.xla_conv2d`, the convolution of the thin heads in training (a module function: tests count calls)."""
    return backend.xla_conv2d(x, kernel, padding)


@keras.saving.register_keras_serializable(package="tf_faceedit")
class ConvNormAct(keras.layers.Layer):
    """Convolution -> normalization -> activation, the unit of the DCGAN/CycleGAN/StarGAN family of networks.

    Input [N, H, W, C_in]; output [N, H', W', filters] with H' = ceil(H / strides) for "same" padding,
    H' = H * strides for a transposed "same" convolution (e.g. kernel 4, stride 2 doubles the size), and H' = H for
    "reflect" padding (stride 1 only).

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

    def _convolve(self, x: Tensor, training: bool | None = None) -> Tensor:
        """`self.conv(x)`, computed as matrix products on small maps (issue 17; see `_small_map_plan`), and by XLA
        for thin outputs in training (see `THIN_OUTPUT`)."""
        plan = self._small_map_plan(x.shape)
        if plan is None:
            if training is not True and self._thin_output_blocked(x.shape):
                return self._blocked_conv(x)
            if training is True and self._thin_output_xla(x):
                y = _xla_conv2d(x, keras.ops.cast(self.conv.kernel, x.dtype), self.conv.padding.upper())
                return y + keras.ops.cast(self.conv.bias, x.dtype) if self.use_bias else y
            return self.conv(x)
        kind, arg = plan
        if kind == "single":
            return self._single_output_conv(x, arg)
        if kind == "patches":
            return self._patches_conv(x, arg)
        return self._scatter_transposed_conv(x, arg)

    def _thin_head(self, shape: Shape) -> bool:
        """A stride-1 convolution to at most THIN_OUTPUT channels on a known map of at least THIN_MIN_POSITIONS: what
        both thin-head paths (`_thin_output_xla`, `_thin_output_blocked`) ask first."""
        if self.transpose or len(shape) != 4 or shape[1] is None or shape[2] is None:
            return False
        return (
            self.filters <= THIN_OUTPUT
            and tuple(self.conv.strides) == (1, 1)
            and tuple(self.conv.dilation_rate) == (1, 1)
            and shape[1] * shape[2] >= THIN_MIN_POSITIONS
        )

    def _thin_output_xla(self, x: Tensor) -> bool:
        """Whether the training convolution of `x` goes through `_xla_conv2d` (see `THIN_OUTPUT`)."""
        return (
            keras.backend.backend() == "tensorflow"
            and self._thin_head(x.shape)
            and keras.backend.standardize_dtype(x.dtype) == "float32"
            and self.conv.kernel_size[0] * self.conv.kernel_size[1] >= 9
            and not _onednn_on()
        )

    def _thin_output_blocked(self, shape: Shape) -> bool:
        """Whether the inference convolution of a map of `shape` goes through `_blocked_conv` (see `THIN_BLOCK`)."""
        return (
            self.padding == "same"  # zero padding ("reflect" pads explicitly and convolves "valid")
            and self._thin_head(shape)
            and min(self.conv.kernel_size) >= THIN_BLOCKED_KERNEL
            and shape[1] % THIN_BLOCK == 0
            and shape[2] % THIN_BLOCK == 0
        )

    def _blocked_conv(self, x: Tensor) -> Tensor:
        """The "same" stride-1 convolution as a "valid" one on the b x b space-to-depth map (b = THIN_BLOCK).

        With p the "same" padding before, y[b Q + r] = sum_i k[i] x_p[b Q + r + i] and b Q + r + i = b (Q + D) + s
        for (D, s) = divmod(r + i, b): a convolution of the blocked padded input (channels (s, c)) with the kernel
        K[D, (s, c), (r, f)] = k[i] where b D + s = r + i, into b x b blocks of outputs (channels (r, f)); the kernel is
        rearranged in the graph (constant-folded once the weights are frozen)."""
        ops = keras.ops
        dtype = self.conv.compute_dtype
        (kh, kw), b = self.conv.kernel_size, THIN_BLOCK
        n_h, n_w, channels = int(x.shape[1]) // b, int(x.shape[2]) // b, int(x.shape[3])
        blocks_h, blocks_w = (b - 1 + kh - 1) // b + 1, (b - 1 + kw - 1) // b + 1
        before_h, before_w = (kh - 1) // 2, (kw - 1) // 2
        x = ops.pad(
            ops.cast(x, dtype),
            [[0, 0], [before_h, b * (blocks_h - 1) - before_h], [before_w, b * (blocks_w - 1) - before_w], [0, 0]],
        )
        rows_h, rows_w = n_h + blocks_h - 1, n_w + blocks_w - 1
        x = ops.reshape(x, (-1, rows_h, b, rows_w, b, channels))
        x = ops.reshape(ops.transpose(x, (0, 1, 3, 2, 4, 5)), (-1, rows_h, rows_w, b * b * channels))
        kernel = ops.einsum(
            "asri,btqj,ijcf->abstcrqf",
            ops.convert_to_tensor(_block_placement(kh, b), dtype),
            ops.convert_to_tensor(_block_placement(kw, b), dtype),
            ops.cast(self.conv.kernel, dtype),
        )
        kernel = ops.reshape(kernel, (blocks_h, blocks_w, b * b * channels, b * b * self.filters))
        y = ops.conv(x, kernel, strides=1, padding="valid")  # [N, n_h, n_w, (r_h, r_w, f)]
        y = ops.reshape(y, (-1, n_h, n_w, b, b, self.filters))
        y = ops.reshape(ops.transpose(y, (0, 1, 3, 2, 4, 5)), (-1, n_h * b, n_w * b, self.filters))
        if self.use_bias:
            y = y + ops.cast(self.conv.bias, dtype)
        return y

    def _small_map_plan(self, shape: Shape) -> tuple[str, Any] | None:
        """How `call` computes the convolution on a small map, or None for the plain Keras layer.

        oneDNN runs convolutions on maps of a few positions with many channels (Fader's 2x2 latent and the maps
        next to it, SaGAN's last critic map) far below its matmul speed: 3x slower for a 4x4 s2 conv from 4x4x512 to
        2x2x512, forward and backward. The same sums as matrix products:
          * ("single", taps): one output position (`_single_output_taps`);
          * ("patches", pad): at most `SMALL_MAP` output positions: the zero-padded input's patches, one matmul;
          * ("scatter", pad): a transposed convolution from at most `SMALL_MAP` input positions: one matmul to
            every input position's kh x kw x filters patch, summed where the patches overlap.
        Not for "reflect" padding or unknown spatial sizes.
        """
        if self._pad_width is not None or len(shape) != 4 or None in shape[1:]:
            return None
        h, w = int(shape[1]), int(shape[2])
        (kh, kw), (sh, sw) = _pair(self.kernel_size, "kernel_size"), _pair(self.strides, "strides")
        if self.transpose:
            if h * w > SMALL_MAP or kh < sh or kw < sw:
                return None
            if self.padding == "same":  # the output is (h s, w s); TF drops the smaller half of the excess before
                return "scatter", (((h - 1) * sh + kh - h * sh) // 2, ((w - 1) * sw + kw - w * sw) // 2)
            return "scatter", (0, 0)
        taps = self._single_output_taps(shape)
        if taps is not None:
            return "single", taps
        if self.padding == "same":
            out_h, out_w = -(-h // sh), -(-w // sw)
            pad_h, pad_w = max((out_h - 1) * sh + kh - h, 0), max((out_w - 1) * sw + kw - w, 0)
            pad = ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2))
        else:
            out_h, out_w = (h - kh) // sh + 1, (w - kw) // sw + 1
            pad = ((0, 0), (0, 0))
        if out_h < 1 or out_w < 1 or out_h * out_w > SMALL_MAP:
            return None
        return "patches", pad

    def _patches_conv(self, x: Tensor, pad: tuple[tuple[int, int], tuple[int, int]]) -> Tensor:
        ops = keras.ops
        (kh, kw), (sh, sw) = _pair(self.kernel_size, "kernel_size"), _pair(self.strides, "strides")
        dtype = self.conv.compute_dtype
        x = ops.pad(ops.cast(x, dtype), [[0, 0], list(pad[0]), list(pad[1]), [0, 0]])
        h, w, channels = int(x.shape[1]), int(x.shape[2]), int(x.shape[3])
        out_h, out_w = (h - kh) // sh + 1, (w - kw) // sw + 1
        patches = [
            ops.reshape(x[:, i * sh : i * sh + kh, j * sw : j * sw + kw, :], (-1, 1, kh * kw * channels))
            for i in range(out_h)
            for j in range(out_w)
        ]
        patches = ops.reshape(ops.concatenate(patches, axis=1), (-1, kh * kw * channels))
        y = ops.matmul(patches, ops.reshape(ops.cast(self.conv.kernel, dtype), (-1, self.filters)))
        if self.use_bias:
            y = y + ops.cast(self.conv.bias, dtype)
        return ops.reshape(y, (-1, out_h, out_w, self.filters))

    def _scatter_transposed_conv(self, x: Tensor, crop: tuple[int, int]) -> Tensor:
        ops = keras.ops
        (kh, kw), (sh, sw) = _pair(self.kernel_size, "kernel_size"), _pair(self.strides, "strides")
        dtype = self.conv.compute_dtype
        h, w, channels = int(x.shape[1]), int(x.shape[2]), int(x.shape[3])
        # Conv2DTranspose's kernel is [kh, kw, filters, channels]: row-major [kh kw filters, channels], no copy
        kernel = ops.reshape(ops.cast(self.conv.kernel, dtype), (kh * kw * self.filters, channels))
        z = ops.matmul(ops.reshape(ops.cast(x, dtype), (-1, channels)), ops.transpose(kernel))
        # at most rank 4 throughout (TFLite's slicing kernels take at most 5 dimensions)
        z = ops.reshape(z, (-1, h * w, kh, kw * self.filters))
        canvas_h, canvas_w = (h - 1) * sh + kh, (w - 1) * sw + kw
        y = None
        for i in range(h):
            for j in range(w):
                patch = ops.reshape(z[:, i * w + j], (-1, kh, kw, self.filters))
                placed = ops.pad(
                    patch, [[0, 0], [i * sh, canvas_h - kh - i * sh], [j * sw, canvas_w - kw - j * sw], [0, 0]]
                )
                y = placed if y is None else y + placed
        if self.padding == "same":
            y = y[:, crop[0] : crop[0] + h * sh, crop[1] : crop[1] + w * sw, :]
        if self.use_bias:
            y = y + ops.cast(self.conv.bias, dtype)
        return y

    def _single_output_taps(self, shape: Shape) -> tuple[int, int] | None:
        """(first kernel row, first kernel column) that sees the input, when this convolution has a 1x1 output.

        A convolution whose output is a single position (e.g. 4x4 stride 2 on a 2x2 map: Fader's latent
        discriminator) is a matrix product of the flattened input with the kernel taps that overlap the input; the
        other taps only ever meet zero padding. oneDNN runs such convolutions far below its matmul speed (issue 17),
        so `call` computes them as that product (the same sums, the same gradients; zero for the unused taps).
        None when it does not apply (transposed, "reflect", an unknown or larger output).
        """
        if self.transpose or self._pad_width is not None or len(shape) != 4 or None in shape[1:]:
            return None
        (kh, kw), (sh, sw) = _pair(self.kernel_size, "kernel_size"), _pair(self.strides, "strides")
        h, w = int(shape[1]), int(shape[2])
        if kh < h or kw < w:
            return None
        if self.padding == "same":
            if -(-h // sh) != 1 or -(-w // sw) != 1:
                return None
            return ((kh - h) // 2, (kw - w) // 2)  # TF's "same": the smaller half of the padding goes before
        if self.padding == "valid" and (kh, kw) == (h, w):
            return (0, 0)
        return None

    def _single_output_conv(self, x: Tensor, taps: tuple[int, int]) -> Tensor:
        ops = keras.ops
        h, w, channels = int(x.shape[1]), int(x.shape[2]), int(x.shape[3])
        dtype = self.conv.compute_dtype
        kernel = ops.cast(self.conv.kernel, dtype)[taps[0] : taps[0] + h, taps[1] : taps[1] + w]
        y = ops.matmul(ops.reshape(ops.cast(x, dtype), (-1, h * w * channels)), ops.reshape(kernel, (-1, self.filters)))
        if self.use_bias:
            y = y + ops.cast(self.conv.bias, dtype)
        return ops.reshape(y, (-1, 1, 1, self.filters))

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
