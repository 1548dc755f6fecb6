"""Periodic validation during training: time to quality (issue 36). Off by default (`train.validation.every=0`).

Every `train.validation.every` steps, `PeriodicValidation` scores the live networks on a fixed batch of the first
`num_images` images of `train.validation.split` (loaded once by the driver), writes the numbers as `val/...` scalars
to TensorBoard and `logs/scalars.jsonl` (`callbacks.write_scalars`), and, with a target, notes the first step that
reaches it and can end the run there (a checkpoint is written as at any end of training).

What it measures, as `python -m tf_faceedit.evaluate` defines it (eval/evaluation.py), on uint8 images:
  * editing methods (task "edit"):
      val/reconstruction_psnr   PSNR (dB, capped at 100) of the edit to the image's own attributes, as the network
                                draws it: a residual edit (`model.residual_edit`) is switched off for it, since it
                                returns the input exactly there;
      val/success/<attribute>   with a judge (`train.validation.judge`): the share of edits with that attribute
                                flipped that the judge reads as the target value (probability > 0.5);
      val/edit_success          their mean over the attributes.
    The judge's minimum-accuracy gate of `evaluate` is not applied: use the judge the final evaluation uses.
  * completion methods (task "complete"):
      val/hole_psnr             PSNR inside the holes of the batch's masks (the run's `data.mask`, drawn with the
                                training seed), of the completion (the input kept outside the hole);
      val/psnr                  the same over the whole image.
    At an early stage of progressive growing the completion (at that stage's resolution) is upsampled (bilinear)
    to the image size, so the numbers of every stage compare.
  * the attribute classifier (task "classify"):
      val/balanced_accuracy/<attribute>   (TPR + TNR) / 2 of the classifier's reading (probability > 0.5) against the
                                          labels, as `evaluate` scores a judge (eval/classifier.py);
      val/balanced_accuracy               their mean; val/accuracy, the plain accuracy over all attributes.
  * always: val/train_seconds, the wall seconds of training in this process up to this validation, the validations'
    own time left out (a resumed run starts the clock again; the step is the axis that survives a resume).

The networks run through `trainer.infer` (keras.ops, eager, inference mode), so this works on every backend.
"""

import logging
import time

import keras
import numpy as np

from tf_faceedit.images import to_float, to_uint8
from tf_faceedit.layers import residual
from tf_faceedit.training import callbacks as cb

log = logging.getLogger("tf_faceedit")

PSNR_CAP = 100.0  # as evaluate's report
TASKS = ("edit", "complete", "classify")  # the methods' tasks it scores (the driver refuses the others up front)


def _numpy(value):
    return np.asarray(keras.ops.convert_to_numpy(value))


def _psnr(a, b, mask=None):
    from tf_faceedit.eval import metrics

    return np.minimum(metrics.psnr(a, b, data_range=255.0, mask=mask), PSNR_CAP)


def _mean(values):
    values = np.asarray(values, np.float64).ravel()
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else None


def load_judge(source):
    """The attribute classifier of `train.validation.judge` (`eval.classifier.load_classifier`), or None."""
    if not source:
        return None
    from tf_faceedit.eval import classifier

    return classifier.load_classifier(source)


def two_domain_batch(batch, data):
    """A two-domain batch ({"image_a", "image_b"}: AttentionGAN's unpaired pipeline) as one labelled batch: the images
    of both domains, the domain attribute `data.domain_a_value` for image_a's and its opposite for image_b's (the
    other attributes 0)."""
    a, b = np.asarray(batch["image_a"]), np.asarray(batch["image_b"])
    column = list(data.attributes).index(data.domain_attribute)
    attributes = np.zeros((len(a) + len(b), len(data.attributes)), np.float32)
    attributes[: len(a), column] = float(data.domain_a_value)
    attributes[len(a) :, column] = 1.0 - float(data.domain_a_value)
    return {"image": np.concatenate([a, b]), "attributes": attributes}


def validation_metrics(trainer, batch, judge=None):
    """{"val/...": value} of `trainer`'s networks on `batch` (numpy "image" float [-1, 1], "attributes", "mask" for
    completion; or a two-domain batch, `two_domain_batch`); see the module docstring. Inputs go through uint8, as
    `evaluate` reads images from files."""
    if "image" not in batch and "image_a" in batch:
        batch = two_domain_batch(batch, trainer.config.data)
    images = to_uint8(batch["image"])
    attributes = np.asarray(batch["attributes"], np.float32)
    inputs = {"image": keras.ops.convert_to_tensor(to_float(images))}
    out = {}
    if trainer.task == "complete":
        mask = (np.asarray(batch["mask"], np.float32) > 0.5).astype(np.float32)
        result = trainer.infer(
            {
                **inputs,
                "attributes": keras.ops.convert_to_tensor(attributes),
                "mask": keras.ops.convert_to_tensor(mask),
            }
        )
        completion = result["completed"]
        if completion.shape[1] != images.shape[1]:  # an early stage of progressive growing: its own resolution
            completion = keras.ops.image.resize(completion, images.shape[1:3], interpolation="bilinear")
        completed = np.where(mask > 0, to_uint8(_numpy(completion)), images)
        out["val/hole_psnr"] = _mean(_psnr(images, completed, mask=mask))
        out["val/psnr"] = _mean(_psnr(images, completed))
        return {key: value for key, value in out.items() if value is not None}
    if trainer.task == "classify":
        from tf_faceedit.eval.classifier import balanced_accuracy

        reading = _numpy(trainer.infer(inputs)["probabilities"]) > 0.5
        labels = attributes > 0.5
        rates = balanced_accuracy(reading, labels)
        for name, rate in zip(trainer.config.data.attributes, rates):
            out[f"val/balanced_accuracy/{name}"] = float(rate)
        out["val/balanced_accuracy"] = float(np.mean(rates))
        out["val/accuracy"] = float(np.mean(reading == labels))
        return out
    if trainer.task not in TASKS:
        raise ValueError(f"validation scores the tasks {', '.join(TASKS)}, not {trainer.task!r}")
    names = list(trainer.config.data.attributes)

    def edit(target):
        result = trainer.infer({**inputs, "attributes": keras.ops.convert_to_tensor(target)})
        return to_uint8(_numpy(result["image"]))

    with residual.switched_off(trainer.config.model):
        out["val/reconstruction_psnr"] = _mean(_psnr(images, edit(attributes)))
    if judge is not None:
        judged = {name: judge.attribute_names.index(name) for name in names if name in judge.attribute_names}
        successes = []
        for i, name in enumerate(names):
            if name not in judged:
                continue
            target = attributes.copy()
            target[:, i] = 1.0 - target[:, i]
            reading = judge.predict(to_float(edit(target)))[:, judged[name]] > 0.5
            out[f"val/success/{name}"] = float(np.mean(reading == (target[:, i] > 0.5)))
            successes.append(out[f"val/success/{name}"])
        if successes:
            out["val/edit_success"] = float(np.mean(successes))
    return {key: value for key, value in out.items() if value is not None}


class PeriodicValidation(keras.callbacks.Callback):
    """Every `config.every` steps (of the trainer's own counter), `validation_metrics` on `batch`, written with
    `callbacks.write_scalars` (TensorBoard `writer`, may be None; `jsonl_path`); the target of `config`
    (`config.ValidationConfig`) is checked after each, and with `stop_at_target` ends `fit`.

    After `fit`: `last` (the latest metrics), `reached` ((step, train seconds, value) of the first validation that met
    the target, or None) and `stop_requested`.
    """

    def __init__(self, config, batch, writer=None, jsonl_path=None, judge=None):
        super().__init__()
        self.config, self.batch, self.writer, self.jsonl_path, self.judge = config, batch, writer, jsonl_path, judge
        self.last, self.reached, self.stop_requested = {}, None, False
        self._train_seconds, self._since = 0.0, None

    def _clock(self):
        now = time.perf_counter()
        if self._since is not None:
            self._train_seconds += now - self._since
        self._since = now
        return self._train_seconds

    def on_train_begin(self, logs=None):
        self._since = time.perf_counter()

    def on_train_end(self, logs=None):
        self._clock()
        self._since = None

    def on_train_batch_end(self, batch, logs=None):
        step = cb.trainer_step(self.model)
        if step % self.config.every == 0:
            self.validate(step)

    def validate(self, step):
        seconds = self._clock()
        metrics = validation_metrics(self.model, self.batch, self.judge)
        metrics["val/train_seconds"] = seconds
        target, reached = self.config.target_metric, None
        if target and self.reached is None and target in metrics and metrics[target] >= self.config.target_value:
            self.reached = (step, seconds, metrics[target])
            reached = {"val/target_reached_step": step, "val/target_reached_seconds": seconds}
            log.info(
                "validation target %s >= %g reached at step %d (%.1f s of training): %.4f",
                target,
                self.config.target_value,
                step,
                seconds,
                metrics[target],
            )
        cb.write_scalars(self.writer, self.jsonl_path, step, {**metrics, **(reached or {})})
        self.last = metrics
        log.info("validation at step %d: %s", step, ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items())))
        if reached and self.config.stop_at_target:
            self.stop_requested = True
            self.model.stop_training = True
        self._since = time.perf_counter()  # the validation's own time is not training time
        return metrics

    def summary(self):
        """What the driver's result reports: {"last": metrics, "target_reached": {...} or None}."""
        reached = None
        if self.reached:
            step, seconds, value = self.reached
            reached = {"metric": self.config.target_metric, "value": value, "step": step, "train_seconds": seconds}
        return {"last": dict(self.last), "target_reached": reached}
