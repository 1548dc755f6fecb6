"""History buffer / image pool: earlier generated images shown to the discriminator again.

Shrivastava et al., "Learning from Simulated and Unsupervised Images through Adversarial Training", CVPR 2017; the
image pool of CycleGAN (Zhu et al., ICCV 2017), used by pggan_completion and attentiongan. Graph-safe: keras.ops /
keras.random only, no data-dependent Python control flow, so it runs inside a compiled train step. Its two
variables (`variables`) belong in the trainer's `state_variables()` so a checkpoint restores the pool.

Images are [N, *image_shape] float tensors (any channel count: attentiongan stores image + attention mask).
"""

import keras
from keras import ops

POOL_MODES = ("first", "bernoulli")


class HistoryBuffer:
    """A pool of `size` earlier fakes.

    `query(fakes, seed)`: before the buffer is full, `fakes` is returned as is. Once it is full, examples are
    replaced by stored images drawn uniformly (with replacement):
      mode "first":     the FIRST floor(fraction * N) examples, deterministically (pggan_completion);
      mode "bernoulli": each example independently with probability `fraction` (CycleGAN's ImagePool, 0.5),
        swapped: the stored image is returned and its slot takes the new fake; examples not swapped are returned
        as they are and not stored (so the pool only changes where it was drawn from).
    Storing: while filling, the N new fakes go into the next free slots. Once full, mode "first" writes them into N
    distinct random slots, mode "bernoulli" only the swapped ones into the slots they were swapped with. N <= size.

    Args:
      size: images kept; image_shape: (H, W, C) of one image; fraction: share (mode "first") or probability (mode
        "bernoulli") of replacement once the buffer is full; mode: "first" or "bernoulli".
    """

    def __init__(self, size, image_shape, fraction, mode="first"):
        if mode not in POOL_MODES:
            raise ValueError(f"HistoryBuffer mode must be one of {', '.join(POOL_MODES)}, got {mode!r}")
        self.size = int(size)
        self.fraction = float(fraction)
        self.mode = mode
        self.images = keras.Variable(
            ops.zeros((self.size, *image_shape)),
            trainable=False,
            name="history_images",
            aggregation="only_first_replica",
        )
        self.count = keras.Variable(
            0, dtype="int32", trainable=False, name="history_count", aggregation="only_first_replica"
        )

    @property
    def variables(self):
        return [self.images, self.count]

    def query(self, fakes, seed):
        fakes = ops.convert_to_tensor(fakes)
        n = ops.shape(fakes)[0]
        full = ops.greater_equal(ops.convert_to_tensor(self.count), self.size)
        # 1. mix: once full, the chosen examples come from the buffer
        if self.mode == "first":
            n_old = ops.cast(ops.floor(self.fraction * ops.cast(n, "float32")), "int32")
            chosen = ops.arange(n, dtype="int32") < n_old
        else:
            chosen = keras.random.uniform((n,), seed=seed) < self.fraction
        replace = ops.logical_and(chosen, full)
        pool = ops.convert_to_tensor(self.images)
        mask = ops.reshape(replace, (-1,) + (1,) * (len(fakes.shape) - 1))
        count = ops.convert_to_tensor(self.count)
        sequential = (count + ops.arange(n, dtype="int32")) % self.size
        if self.mode == "first":  # (the random draws of earlier versions, kept for pggan_completion's runs)
            stored = ops.take(pool, keras.random.randint((n,), 0, self.size, seed=seed), axis=0)
            mixed = ops.where(mask, ops.cast(stored, fakes.dtype), fakes)
            # 2. store the new fakes: sequential slots while filling, distinct random slots afterwards
            random_slots = ops.cast(keras.random.shuffle(ops.arange(self.size, dtype="int32"), seed=seed)[:n], "int32")
            slots = ops.where(full, random_slots, sequential)
            new_values = ops.cast(fakes, self.images.dtype)
        else:  # CycleGAN's swap, at N distinct random slots
            random_slots = ops.cast(keras.random.shuffle(ops.arange(self.size, dtype="int32"), seed=seed)[:n], "int32")
            stored = ops.take(pool, random_slots, axis=0)
            mixed = ops.where(mask, ops.cast(stored, fakes.dtype), fakes)
            # 2. while filling every fake is stored; once full only the swapped ones (the others write back the
            # slot's own image)
            slots = ops.where(full, random_slots, sequential)
            keep_new = ops.reshape(ops.logical_or(replace, ops.logical_not(full)), ops.shape(mask))
            new_values = ops.where(keep_new, ops.cast(fakes, self.images.dtype), stored)
        self.images.assign(ops.scatter_update(pool, slots[:, None], new_values))
        self.count.assign(ops.minimum(count + n, self.size))
        return mixed
