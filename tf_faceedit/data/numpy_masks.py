"""Random hole masks in numpy: the twin of `data/masks.py` (same distributions), for the TensorFlow-free pipeline.

Every function returns float32 [height, width, 1] in {0, 1} (1 = hole). Randomness comes from a
`numpy.random.Generator`, so one seed gives one mask. The rectangle's height and width are drawn independently and
uniformly among the integers in [ceil(min_ratio * side), floor(max_ratio * side)] (at least 1 px), its position
uniformly with the rectangle fully inside the image; the noise mask fills it with a `noise_resolution`² uniform
grid, upsampled bilinearly (half-pixel centres, as `tf.image.resize`) and thresholded. The face-part box
(`face_part_mask`) is a solid box over the eyes, nose or mouth of an aligned face (`FACE_PARTS`). The exact pixels
differ from the TF version (other random streams); the distributions are the same (tests/jax/test_numpy_pipeline.py).
"""

import math

import cv2
import numpy as np

from tf_faceedit.errors import ConfigError, suggest

MASK_KINDS = ["none", "noise", "rect", "mixed", "parts", "noise+parts"]


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


# Centres (row, column; fractions of the side) of the face parts of an aligned CelebA face, square-cropped as the data
# pipeline does (crop_fraction 1): the mean landmarks of list_landmarks_align_celeba (eyes (69, 111) and (108, 111),
# nose (88, 134), mouth corners (72, 152) and (106, 152) in the 178x218 crop) after the centred 178x178 square.
FACE_PARTS = {"eyes": (0.51, 0.50), "nose": (0.64, 0.50), "mouth": (0.74, 0.50)}


def part_box(size, part, u, min_ratio=0.30, max_ratio=0.45, jitter=0.05):
    """(top, left, h, w) of a solid box over a face part from four uniforms u in [0, 1): height, width, row and
    column jitter. Sides are integers in [min_ratio, max_ratio] * size; the centre is the part's, moved by up to
    `jitter` * size each way; the box is kept inside the image."""
    low, high = _side_range(size, min_ratio, max_ratio)
    h = low + min(int(u[0] * (high - low + 1)), high - low)
    w = low + min(int(u[1] * (high - low + 1)), high - low)
    row, col = FACE_PARTS[part]
    top = int(round((row + jitter * (2.0 * u[2] - 1.0)) * size - h / 2.0))
    left = int(round((col + jitter * (2.0 * u[3] - 1.0)) * size - w / 2.0))
    return min(max(top, 0), size - h), min(max(left, 0), size - w), h, w


def face_part_mask(size, rng, part=None, min_ratio=0.30, max_ratio=0.45, jitter=0.05):
    """A solid box over the eyes, the nose or the mouth (`part`, or one of the three at random) of an aligned face,
    float32 [size, size, 1]; see `part_box`."""
    if part is None:
        part = list(FACE_PARTS)[int(rng.integers(0, len(FACE_PARTS)))]
    top, left, h, w = part_box(size, part, rng.random(4), min_ratio, max_ratio, jitter)
    mask = np.zeros((size, size, 1), np.float32)
    mask[top : top + h, left : left + w] = 1.0
    return mask


def make_mask_fn(mask_cfg, image_size):
    """`fn(rng) -> float32 [image_size, image_size, 1]` for a `MaskConfig`, or None when kind is "none"."""
    kind = mask_cfg.kind
    if kind == "none":
        return None

    def noise(rng):
        return random_noise_mask(
            image_size,
            image_size,
            rng,
            mask_cfg.min_ratio,
            mask_cfg.max_ratio,
            mask_cfg.noise_resolution,
            mask_cfg.threshold,
        )

    def rect(rng):
        return random_rectangle_mask(image_size, image_size, rng, mask_cfg.min_ratio, mask_cfg.max_ratio)

    def part(rng):
        return face_part_mask(image_size, rng, None, mask_cfg.part_min_ratio, mask_cfg.part_max_ratio)

    def half_each(first, second):
        """`first` or `second`, each with probability 1/2."""
        return lambda rng: first(rng) if rng.random() < 0.5 else second(rng)

    makers = {
        "noise": noise,
        "rect": rect,
        "mixed": half_each(noise, rect),
        "parts": part,
        "noise+parts": half_each(noise, part),
    }
    if kind in makers:
        return makers[kind]
    kinds = MASK_KINDS
    raise ConfigError(f"data.mask.kind must be one of {', '.join(kinds)}, got {kind!r}{suggest(kind, kinds)}")
