"""Residual edits: the input plus the change a generator makes, beyond the papers of Fader and IcGAN.

An autoencoder-style editor (Fader's D(E(x), a), IcGAN's G(E_z(x), y)) redraws every pixel from a small code, so its
output is a blurred or different face even where the edit changes nothing. A residual edit keeps the input and adds
only the change: x + g (edited - own), with `own` the editor's output at the input's own attributes and g a gain.

The change also carries the editor's idea of the attribute's average look: Fader's smiling faces are warmer and
brighter on average than its non-smiling ones, so the change tints the whole face (on photos, yellow-green or orange
casts). `highpass_sigma` removes that low-frequency part: the change minus its Gaussian blur of that standard
deviation (pixels at the model's size), from the chroma only (`highpass="chroma"`: the change's deviation from its
channel mean; shading is kept) or from every channel (`"all"`). A smile's change (teeth, lips, cheeks) is a few
pixels wide at 64^2; a cast spans the face.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

from keras import ops

from tf_faceedit.backend.tensor_types import Tensor
from tf_faceedit.config import check_choice, check_range

HIGHPASS_MODES = ("chroma", "all")


def gaussian_taps(sigma: float, max_radius: int) -> list[float]:
    """1-D normalized Gaussian of standard deviation `sigma`, radius ceil(3 sigma) capped at `max_radius` (>= 1)."""
    radius = max(1, min(int(math.ceil(3.0 * sigma)), int(max_radius)))
    g = [math.exp(-(x * x) / (2.0 * sigma * sigma)) for x in range(-radius, radius + 1)]
    total = sum(g)
    return [value / total for value in g]


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """[N, H, W, C] float32 blurred by a separable Gaussian (two depthwise convolutions, TFLite-convertible).

    Normalized at the border: each output pixel is the weighted mean of the in-image pixels only (the zero padding's
    weight is divided out), so a constant image stays constant."""
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    g = gaussian_taps(sigma, max(1, min(height or 64, width or 64) - 1))
    k = len(g)
    taps = ops.convert_to_tensor(g, "float32")
    kernel_h = ops.tile(ops.reshape(taps, (k, 1, 1, 1)), (1, 1, channels, 1))
    kernel_w = ops.tile(ops.reshape(taps, (1, k, 1, 1)), (1, 1, channels, 1))

    def blur(t):
        return ops.depthwise_conv(ops.depthwise_conv(t, kernel_h, padding="same"), kernel_w, padding="same")

    return blur(images) / blur(ops.ones_like(images))


def highpass(change: Tensor, sigma: float, mode: str = "chroma") -> Tensor:
    """`change` less its low-frequency part (Gaussian blur of `sigma` pixels): of the chroma only, or of all."""
    if mode not in HIGHPASS_MODES:
        raise ValueError(f"highpass mode must be one of {HIGHPASS_MODES}, got {mode!r}")
    part = change - ops.mean(change, axis=-1, keepdims=True) if mode == "chroma" else change
    return change - gaussian_blur(part, sigma)


def residual_edit(
    images: Tensor, edited: Tensor, own: Tensor, gain: float = 1.0, highpass_sigma: float = 0.0, mode: str = "chroma"
) -> Tensor:
    """x + g (edited - own) in float32, clipped to [-1, 1]; with `highpass_sigma` > 0 the change is high-passed
    first (`highpass`). images, edited, own: [N, H, W, C] in [-1, 1]."""
    change = ops.cast(edited, "float32") - ops.cast(own, "float32")
    if highpass_sigma > 0:
        change = highpass(change, float(highpass_sigma), mode)
    return ops.clip(ops.cast(images, "float32") + float(gain) * change, -1.0, 1.0)


@dataclasses.dataclass
class ResidualEditOptions:
    """The residual-edit fields of a method's model config (Fader's and IcGAN's subclass it): inference options,
    settable on a trained model (`--option model.FIELD=VALUE`); see the module docstring and `residual_edit`.

    residual_edit: on/off (off = the paper's output); residual_gain: g; residual_highpass_sigma (0 = off) and
    residual_highpass ("chroma" | "all"): the high-pass of the change.
    """

    residual_edit: bool = False
    residual_gain: float = 1.0
    residual_highpass_sigma: float = 0.0
    residual_highpass: str = "chroma"

    RESIDUAL_OPTIONS = ("residual_edit", "residual_gain", "residual_highpass_sigma", "residual_highpass")


def is_on(model) -> bool:
    """Whether a method's model config (any method's) has the residual edit switched on."""
    return bool(getattr(model, "residual_edit", False))


@contextlib.contextmanager
def switched_off(model):
    """Within the block, `model.residual_edit` is False: what the network itself draws (its reconstruction of a face
    at the face's own attributes: with the residual edit on, that is the input, exactly). For eager inference that
    reads the config at call time (`training.validation`); a compiled model keeps what it was traced with."""
    if not is_on(model):
        yield model
        return
    model.residual_edit = False
    try:
        yield model
    finally:
        model.residual_edit = True


def validate_options(model, prefix: str = "model") -> None:
    """Checks a method's residual-edit options: residual_gain, residual_highpass_sigma (>= 0) and residual_highpass."""
    check_range(model.residual_gain, f"{prefix}.residual_gain", 0.0)
    check_range(model.residual_highpass_sigma, f"{prefix}.residual_highpass_sigma", 0.0)
    check_choice(model.residual_highpass, f"{prefix}.residual_highpass", HIGHPASS_MODES)


def residual_from_config(images: Tensor, edited: Tensor, own: Tensor, model) -> Tensor:
    """`residual_edit` with a method's model config (residual_gain, residual_highpass_sigma, residual_highpass)."""
    return residual_edit(
        images, edited, own, model.residual_gain, model.residual_highpass_sigma, model.residual_highpass
    )
