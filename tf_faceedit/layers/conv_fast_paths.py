"""The CPU fast paths of `ConvNormAct`'s convolution: the same sums as the Keras layer, computed another way where
oneDNN (or TensorFlow's Eigen kernels) is slow on CPU. Issue 17 and docs/RESULTS.md (2026-12-03/04) hold the timings.

  * small maps (at most `SMALL_MAP` output positions, or input positions of a transposed convolution): matrix products
    (`ConvFastPaths._small_map_plan`);
  * thin heads in training (a stride-1 convolution to at most `THIN_OUTPUT` channels): an XLA-compiled convolution on
    TensorFlow with oneDNN off (`_thin_output_xla`);
  * thin heads in inference: a convolution of the space-to-depth map (`_blocked_conv`).

`ConvFastPaths` is a mixin of `layers.blocks.ConvNormAct` (it holds no state): its methods read the layer's `conv`
(the built `keras.layers.Conv2D` / `Conv2DTranspose`: kernel, bias, kernel size, strides, dilation, padding),
`filters`, `transpose`, `padding`, `use_bias` and `_pad_width` (the explicit "reflect" padding, or None). Each path
is exercised against the plain layer in tests/layers/test_conv_fast_paths.py.
"""

from __future__ import annotations

from typing import Any

import keras

from tf_faceedit.backend import native
from tf_faceedit.backend.tensor_types import Shape, Tensor

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
        _ONEDNN.append(native.onednn_enabled())
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
    """`native.xla_conv2d`, the convolution of the thin heads in training (a module function: tests count calls)."""
    return native.xla_conv2d(x, kernel, padding)


class ConvFastPaths:
    """`_convolve(x, training)`: `self.conv(x)`, or one of the fast paths of the module docstring."""

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
        (kh, kw), (sh, sw) = self.conv.kernel_size, self.conv.strides
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
        (kh, kw), (sh, sw) = self.conv.kernel_size, self.conv.strides
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
        (kh, kw), (sh, sw) = self.conv.kernel_size, self.conv.strides
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
        (kh, kw), (sh, sw) = self.conv.kernel_size, self.conv.strides
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
