"""Random hole masks for face completion, as pure, stateless TensorFlow ops.

Every function returns a float32 tensor of shape [height, width, 1] with values in {0, 1}, where 1 marks the hole
(the region to be filled in). All randomness comes from `tf.random.stateless_*` ops driven by `seed`, a shape-[2]
int32/int64 tensor, so one seed always gives one mask, in eager mode, inside `tf.function` and inside
`tf.data.Dataset.map`.

The rectangle that bounds a hole has height h and width w drawn independently and uniformly among the integers in
[ceil(min_ratio * side), floor(max_ratio * side)] (at least 1 px), and a uniformly random position fully inside the
image.

Masks:
  * `random_noise_mask`: the rectangle filled with thresholded, bilinearly upsampled uniform noise
    (Chen & Zhong, "High Resolution Face Completion with Multiple Controllable Attributes via Fully End-to-End
    Progressive Generative Adversarial Networks", 2018);
  * `random_rectangle_mask`: the rectangle filled with ones;
  * `random_face_part_mask`: a solid box over the eyes, nose or mouth of an aligned face (kinds "parts" and
    "noise+parts", the latter half noise masks).
"""

from tf_faceedit.backend.lazy_tf import tf  # TensorFlow is imported on first use (the JAX path runs without it)
from tf_faceedit.data.numpy_masks import FACE_PARTS, MASK_KINDS
from tf_faceedit.errors import ConfigError, suggest


def _split_seed(seed, num):
    """Derives `num` independent shape-[2] seeds from one shape-[2] seed."""
    seed = tf.cast(seed, tf.int64)  # int32 and int64 seeds of the same values give the same mask
    return tf.unstack(tf.random.experimental.stateless_split(seed, num=num), num=num)


def _side_range(side, min_ratio, max_ratio):
    """Integer bounds [low, high] of a rectangle side drawn in [min_ratio, max_ratio] * side, at least 1 px."""
    side_f = tf.cast(side, tf.float32)
    low = tf.maximum(tf.cast(tf.math.ceil(min_ratio * side_f - 1e-4), tf.int32), 1)
    high = tf.minimum(tf.cast(tf.math.floor(max_ratio * side_f + 1e-4), tf.int32), tf.cast(side, tf.int32))
    return low, tf.maximum(high, low)


def _uniform_int(u, low, high):
    """Maps u ~ U[0, 1) to an integer uniform in [low, high] (int32 tensors of the same shape)."""
    span = tf.cast(high - low + 1, tf.float32)
    return low + tf.minimum(tf.cast(tf.math.floor(u * span), tf.int32), high - low)


def _random_box(height, width, seed, min_ratio, max_ratio):
    """Returns (top, left, h, w) int32 scalars of a random rectangle fully inside a height x width image."""
    size_seed, pos_seed = _split_seed(seed, 2)
    height = tf.cast(height, tf.int32)
    width = tf.cast(width, tf.int32)
    h_low, h_high = _side_range(height, min_ratio, max_ratio)
    w_low, w_high = _side_range(width, min_ratio, max_ratio)
    size = _uniform_int(
        tf.random.stateless_uniform([2], size_seed), tf.stack([h_low, w_low]), tf.stack([h_high, w_high])
    )
    position = _uniform_int(
        tf.random.stateless_uniform([2], pos_seed), tf.zeros([2], tf.int32), tf.stack([height, width]) - size
    )
    return position[0], position[1], size[0], size[1]


def _place(patch, top, left, height, width):
    """Pads a [h, w, 1] patch with zeros into a [height, width, 1] image at (top, left)."""
    h, w = tf.shape(patch)[0], tf.shape(patch)[1]
    paddings = [[top, tf.cast(height, tf.int32) - top - h], [left, tf.cast(width, tf.int32) - left - w], [0, 0]]
    mask = tf.pad(patch, paddings)
    static_h = height if isinstance(height, int) else None
    static_w = width if isinstance(width, int) else None
    mask.set_shape([static_h, static_w, 1])
    return mask


def random_noise_mask(height, width, seed, min_ratio=0.25, max_ratio=0.5, noise_resolution=4, threshold=0.5):
    """A rectangle of thresholded, upsampled uniform noise (Chen & Zhong 2018).

    Args:
      height, width: image size (Python ints give a static output shape; scalar tensors are accepted).
      seed: shape-[2] int32/int64 tensor; one seed gives one mask.
      min_ratio, max_ratio: the rectangle's height and width are each in [min_ratio, max_ratio] * side.
      noise_resolution: side of the uniform noise grid that is upsampled bilinearly to the rectangle.
      threshold: upsampled noise values above it become hole pixels.

    Returns:
      float32 [height, width, 1] in {0, 1}; 1 = hole. Hole pixels lie only inside the rectangle.
    """
    box_seed, noise_seed = _split_seed(seed, 2)
    top, left, h, w = _random_box(height, width, box_seed, min_ratio, max_ratio)
    noise = tf.random.stateless_uniform([noise_resolution, noise_resolution, 1], noise_seed, dtype=tf.float32)
    noise = tf.image.resize(noise, tf.stack([h, w]), method="bilinear")
    patch = tf.cast(noise > threshold, tf.float32)
    return _place(patch, top, left, height, width)


def random_rectangle_mask(height, width, seed, min_ratio=0.25, max_ratio=0.5):
    """A filled rectangle; same arguments and output as `random_noise_mask`."""
    box_seed, _ = _split_seed(seed, 2)
    top, left, h, w = _random_box(height, width, box_seed, min_ratio, max_ratio)
    patch = tf.ones(tf.stack([h, w, 1]), tf.float32)
    return _place(patch, top, left, height, width)


def random_face_part_mask(size, seed, min_ratio=0.30, max_ratio=0.45, jitter=0.05):
    """A solid box over the eyes, the nose or the mouth (one of `FACE_PARTS` at random) of an aligned face, float32
    [size, size, 1]: the TensorFlow twin of `numpy_masks.face_part_mask` (same rule: sides in [min_ratio,
    max_ratio] * size, centre moved by up to jitter * size)."""
    part_seed, box_seed = _split_seed(seed, 2)
    centres = tf.constant(list(FACE_PARTS.values()), tf.float32)
    part = tf.random.stateless_uniform([], part_seed, 0, len(FACE_PARTS), dtype=tf.int32)
    u = tf.random.stateless_uniform([4], box_seed)
    low, high = _side_range(size, min_ratio, max_ratio)
    sides = _uniform_int(u[:2], tf.stack([low, low]), tf.stack([high, high]))
    centre = (tf.gather(centres, part) + jitter * (2.0 * u[2:] - 1.0)) * float(size)
    corner = tf.cast(tf.round(centre - tf.cast(sides, tf.float32) / 2.0), tf.int32)
    corner = tf.clip_by_value(corner, 0, size - sides)
    patch = tf.ones(tf.stack([sides[0], sides[1], 1]), tf.float32)
    return _place(patch, corner[0], corner[1], size, size)


def make_mask_fn(mask_cfg, image_size):
    """Returns `fn(seed) -> float32 [image_size, image_size, 1]` for a `MaskConfig`, or None when kind is "none"."""
    kind = mask_cfg.kind
    if kind == "none":
        return None

    def noise(seed):
        return random_noise_mask(
            image_size,
            image_size,
            seed,
            min_ratio=mask_cfg.min_ratio,
            max_ratio=mask_cfg.max_ratio,
            noise_resolution=mask_cfg.noise_resolution,
            threshold=mask_cfg.threshold,
        )

    def rect(seed):
        return random_rectangle_mask(
            image_size, image_size, seed, min_ratio=mask_cfg.min_ratio, max_ratio=mask_cfg.max_ratio
        )

    def part(seed):
        return random_face_part_mask(image_size, seed, mask_cfg.part_min_ratio, mask_cfg.part_max_ratio)

    def half_each(first, second):
        """`first` or `second`, each with probability 1/2; both are drawn from the same derived seed."""

        def mask_fn(seed):
            choice_seed, mask_seed = _split_seed(seed, 2)
            return tf.where(tf.random.stateless_uniform([], choice_seed) < 0.5, first(mask_seed), second(mask_seed))

        return mask_fn

    makers = {
        "noise": noise,
        "rect": rect,
        "mixed": half_each(noise, rect),
        "parts": lambda seed: part(_split_seed(seed, 2)[1]),  # the box of "noise+parts" for the same seed
        "noise+parts": half_each(noise, part),
    }
    if kind in makers:
        return makers[kind]
    kinds = MASK_KINDS
    raise ConfigError(f"data.mask.kind must be one of {', '.join(kinds)}, got {kind!r}{suggest(kind, kinds)}")
