"""Training callbacks: stop at the configured step, checkpoints, TensorBoard scalars/images, PNG sample grids and
a NaN guard. All of them read the trainer's own `step` counter (not Keras' epoch/batch numbers), so they line up
after a resume.
"""

import json
import logging
import math
from pathlib import Path

import cv2
import keras
import numpy as np

from tf_faceedit import images as image_lib
from tf_faceedit.backend.lazy_tf import tf  # TensorFlow is imported on first use (the JAX path runs without it)

log = logging.getLogger(__name__)


def trainer_step(trainer):
    """The trainer's own step counter as an int (callbacks use it, not Keras' epoch/batch numbers)."""
    return int(keras.ops.convert_to_numpy(trainer.step))


def to_uint8(images):
    """[-1, 1] float images (or [0, 1] masks with `mask=True` callers) -> uint8 numpy [N, H, W, 3]."""
    array = np.asarray(keras.ops.convert_to_numpy(images), dtype=np.float32)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return image_lib.to_uint8(array)  # NaN -> mid-grey


def make_grid(rows, label_width=120):
    """Assembles named rows of images into one uint8 RGB grid with the row names written on the left.

    Args:
        rows: list of (label, images) where images are float [N, H, W, C] in [-1, 1] (C = 1 or 3).
    Returns: uint8 array [rows*H, label_width + N*W, 3].
    """
    tiles = []
    for label, images in rows:
        strip = np.concatenate(list(to_uint8(images)), axis=1)
        height = strip.shape[0]
        margin = np.full((height, label_width, 3), 255, np.uint8)
        scale = max(0.3, min(0.5, height / 90.0))
        for i, line in enumerate(_wrap(label, int(label_width / (scale * 20)))):
            cv2.putText(
                margin, line, (4, 14 + int(i * 30 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA
            )
        tiles.append(np.concatenate([margin, strip], axis=1))
    return np.concatenate(tiles, axis=0)


def _wrap(text, width):
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > max(width, 4):
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])


class StopAtStep(keras.callbacks.Callback):
    """Stops `fit` once the trainer's step counter reaches `steps`."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps

    def on_train_batch_end(self, batch, logs=None):
        if trainer_step(self.model) >= self.steps:
            self.model.stop_training = True


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and remembers which loss and step it was."""

    def __init__(self):
        super().__init__()
        self.failure = None

    def on_train_batch_end(self, batch, logs=None):
        for key, value in (logs or {}).items():
            if not np.all(np.isfinite(np.asarray(value, dtype=np.float64))):
                self.failure = (key, trainer_step(self.model), float(np.asarray(value)))
                self.model.stop_training = True
                return


class CheckpointCallback(keras.callbacks.Callback):
    """Writes a checkpoint every `every` steps and at the end of training (unless a NaN guard fired)."""

    def __init__(self, manager, every, nan_guard=None, extra_state=None):
        super().__init__()
        self.manager, self.every, self.nan_guard = manager, every, nan_guard
        self.extra_state = extra_state or (lambda: {})
        self.last_saved = None

    def _save(self):
        step = trainer_step(self.model)
        if step != self.last_saved and step > 0:
            path = self.manager.save(step, self.extra_state())
            self.last_saved = step
            if path is not None:  # None: a non-chief worker, which writes nothing
                log.info("checkpoint %s", path)

    def on_train_batch_end(self, batch, logs=None):
        if self.nan_guard is not None and self.nan_guard.failure:
            return
        if trainer_step(self.model) % self.every == 0:
            self._save()

    def on_train_end(self, logs=None):
        if self.nan_guard is None or not self.nan_guard.failure:
            self._save()


class ScalarSummaries(keras.callbacks.Callback):
    """Writes the running means of every logged loss to TensorBoard every `every` steps, and (with `jsonl_path`)
    appends the same values as one JSON line `{"step": s, "<loss>": value, ...}` to a text log (`logs/scalars.jsonl`).

    After a resume the steps past the last checkpoint appear again: the last line of a step is the one that counts.
    """

    def __init__(self, writer, every, jsonl_path=None):
        super().__init__()
        self.writer, self.every = writer, every
        self.jsonl_path = Path(jsonl_path) if jsonl_path else None

    def on_train_batch_end(self, batch, logs=None):
        step = trainer_step(self.model)
        if step % self.every == 0 and logs:
            write_scalars(self.writer, self.jsonl_path, step, logs, tag_prefix="losses/")


def write_scalars(writer, jsonl_path, step, values, tag_prefix=""):
    """Writes {key: value} at `step` to TensorBoard (tags `tag_prefix + key`; skipped when `writer` is None, i.e.
    no TensorFlow) and appends it as one JSON line `{"step": s, key: value, ...}` to `jsonl_path` (when given)."""
    values = {key: float(np.asarray(value)) for key, value in values.items()}
    if writer is not None:
        with writer.as_default(step=step):
            for key, value in values.items():
                tf.summary.scalar(f"{tag_prefix}{key}", value)
        writer.flush()
    if jsonl_path is not None:
        jsonl_path = Path(jsonl_path)
        jsonl_path.parent.mkdir(parents=True, exist_ok=True)
        with open(jsonl_path, "a") as f:  # NaN/Infinity are written as such (Python's json)
            f.write(json.dumps({"step": step, **values}) + "\n")


def make_summary_writer(logdir):
    """A TensorBoard writer for `logdir`, or None when TensorFlow is not installed (summaries are then skipped;
    `ScalarSummaries` still writes `scalars.jsonl` and `SampleGrid` the PNGs)."""
    from tf_faceedit.backend import lazy_tf

    if not lazy_tf.available():
        log.info("TensorFlow is not installed: no TensorBoard summaries (losses go to logs/scalars.jsonl)")
        return None
    return tf.summary.create_file_writer(str(logdir))


def read_scalars_jsonl(path):
    """step -> {key: value} from a `scalars.jsonl`: the lines of one step are merged (losses, the loss-balance
    readout), and where a key repeats the last line wins, as after a resume."""
    out = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            out.setdefault(int(row.pop("step")), {}).update(row)
    return out


class SampleGrid(keras.callbacks.Callback):
    """Every `every` steps (and at the start and end), writes `samples/step_XXXXXXXX.png` and an image summary.

    The rows come from `trainer.sample_rows(batch)` on a fixed batch, so grids of different steps compare.
    """

    def __init__(self, batch, out_dir, every, writer=None):
        super().__init__()
        self.batch, self.every, self.writer = batch, every, writer
        self.out_dir = Path(out_dir)
        self.last_written = None
        self.last_path = None

    def write(self):
        step = trainer_step(self.model)
        if step == self.last_written:
            return self.last_path
        grid = make_grid(self.model.sample_rows(self.batch))
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"step_{step:08d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        if self.writer is not None:
            with self.writer.as_default(step=step):
                tf.summary.image("samples", grid[None], max_outputs=1)
            self.writer.flush()
        self.last_written, self.last_path = step, path
        return path

    def on_train_begin(self, logs=None):
        self.write()

    def on_train_batch_end(self, batch, logs=None):
        if trainer_step(self.model) % self.every == 0:
            self.write()

    def on_train_end(self, logs=None):
        self.write()


def epochs_for(start_step, total_steps, chunk):
    """Keras epochs used as progress-bar chunks: (initial_epoch, epochs) covering [start_step, total_steps)."""
    return start_step // chunk, math.ceil(total_steps / chunk)
