"""Random hole masks in numpy: the twin of `data/masks.py` (same distributions), for the TensorFlow-free pipeline.

Every function returns float32 [height, width, 1] in {0, 1} (1 = hole). Randomness comes from a
`numpy.random.Generator`, so one seed gives one mask. The rectangle's height and width are drawn independently and
uniformly among the integers in [ceil(min_ratio * side), floor(max_ratio * side)] (at least 1 px), its position
uniformly with the rectangle fully inside the image; the noise mask fills it with a `noise_resolution`² uniform
grid, upsampled bilinearly (half-pixel centres, as `tf.image.resize`) and thresholded. The exact pixels differ from
the TF version (other random streams); the distributions are the same (tests/jax/test_numpy_pipeline.py).
"""

import math

import cv2
import numpy as np

from tf_faceedit.errors import ConfigError, suggest


def _side_range(side, min_ratio, max_ratio):
    low = max(math.ceil(min_ratio * side - 1e-4), 1)
    high = min(math.floor(max_ratio * side + 1e-4), side)
    return low, max(high, low)


def _random_box(height, width, rng, min_ratio, max_ratio):
    h = int(rng.integers(*_side_range(height, min_ratio, max_ratio), endpoint=True))
    w = int(rng.integers(*_side_range(width, min_ratio, max_ratio), endpoint=True))
    top = int(rng.integers(0, height - h, endpoint=True))
    left = int(rng.integers(0, width - w, endpoint=True))
    return top, left, h, w


def random_noise_mask(height, width, rng, min_ratio=0.25, max_ratio=0.5, noise_resolution=4, threshold=0.5):
    """A rectangle of thresholded, upsampled uniform noise (Chen & Zhong 2018); see `masks.random_noise_mask`."""
    top, left, h, w = _random_box(height, width, rng, min_ratio, max_ratio)
    noise = rng.random((noise_resolution, noise_resolution), dtype=np.float32)
    patch = cv2.resize(noise, (w, h), interpolation=cv2.INTER_LINEAR)
    mask = np.zeros((height, width, 1), np.float32)
    mask[top : top + h, left : left + w, 0] = (patch > threshold).astype(np.float32)
    return mask


def random_rectangle_mask(height, width, rng, min_ratio=0.25, max_ratio=0.5):
    """A filled rectangle; same arguments and output as `random_noise_mask`."""
    top, left, h, w = _random_box(height, width, rng, min_ratio, max_ratio)
    mask = np.zeros((height, width, 1), np.float32)
    mask[top : top + h, left : left + w] = 1.0
    return mask


def make_mask_fn(mask_cfg, image_size):
    """`fn(rng) -> float32 [image_size, image_size, 1]` for a `MaskConfig`, or None when kind is "none"."""
    kind = mask_cfg.kind
    if kind == "none":
        return None
    if kind == "noise":
        return lambda rng: random_noise_mask(
            image_size,
            image_size,
            rng,
            mask_cfg.min_ratio,
            mask_cfg.max_ratio,
            mask_cfg.noise_resolution,
            mask_cfg.threshold,
        )
    if kind == "rect":
        return lambda rng: random_rectangle_mask(image_size, image_size, rng, mask_cfg.min_ratio, mask_cfg.max_ratio)
    if kind == "mixed":

        def mixed(rng):
            noise = rng.random() < 0.5
            if noise:
                return random_noise_mask(
                    image_size,
                    image_size,
                    rng,
                    mask_cfg.min_ratio,
                    mask_cfg.max_ratio,
                    mask_cfg.noise_resolution,
                    mask_cfg.threshold,
                )
            return random_rectangle_mask(image_size, image_size, rng, mask_cfg.min_ratio, mask_cfg.max_ratio)

        return mixed
    kinds = ["none", "noise", "rect", "mixed"]
    raise ConfigError(f"data.mask.kind must be one of {', '.join(kinds)}, got {kind!r}{suggest(kind, kinds)}")
