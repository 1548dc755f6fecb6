"""The loss-balance readout: how much each generator loss term weighs, in value and in gradient.

For a trainer that exposes `generator_output(batch)` (G's raw output image) and `generator_terms(batch, output)`
(name -> (weight, per-example value [N])), `loss_balance` reports per term

  * "weighted": weight * mean(value), the term's share of the total G loss;
  * "grad_norm": the L2 norm of d(weight * mean(value)) / d(output), the pull the term exerts on G's output image;
  * "grad_share": grad_norm / the sum of every term's grad_norm.

A term whose gradient share is near 1 decides what G learns, whatever the paper's weights were meant to do: a
feature loss 10^2-10^3 times too heavy shows up here at step 0, with any weights (pggan_completion issue 33). The
readout runs on TensorFlow (GradientTape) and leaves the trainer's state as it found it (its RNG and buffers are put
back), so logging it during training does not change the run.

    balance = loss_balance(trainer, batch)              # batch: a dataset batch, as the trainer's data pipeline gives
    print(format_balance(balance))

`LossBalance` (a Keras callback) logs it every `every` steps on the sample-grid batch, to TensorBoard
(`balance/<term>/grad_share`, `balance/<term>/weighted`) and to `logs/scalars.jsonl` (the same keys).
"""

import math

import keras

from tf_faceedit.backend.lazy_tf import tf
from tf_faceedit.errors import ConfigError
from tf_faceedit.training.callbacks import trainer_step, write_scalars


def supports_balance(trainer):
    """Whether the trainer exposes the generator terms the readout needs."""
    return hasattr(trainer, "generator_terms") and hasattr(trainer, "generator_output")


def loss_balance(trainer, batch, seed=None):
    """term -> {"weight", "value", "weighted", "grad_norm", "grad_share"} of the trainer's G loss on `batch`.

    Args:
      trainer: a built trainer with `generator_terms` / `generator_output` (see the module docstring).
      batch: a raw dataset batch (it goes through `trainer.prepare_batch` first, as in a training step).
      seed: the draws' seed (default: the trainer's seed generator, whose state is restored afterwards).

    Raises:
      ConfigError: the method has no readout, or Keras does not run on TensorFlow.
    """
    if not supports_balance(trainer):
        raise ConfigError(f"method {trainer.config.method!r} has no loss-balance readout (no generator_terms)")
    if keras.backend.backend() != "tensorflow":
        raise ConfigError("the loss-balance readout runs on the TensorFlow backend (KERAS_BACKEND=tensorflow)")
    with trainer.state_kept():
        prepared = trainer.prepare_batch(batch, trainer.seed_generator if seed is None else seed)
        with tf.GradientTape(persistent=True) as tape:
            output = trainer.generator_output(prepared)
            tape.watch(output)
            terms = trainer.generator_terms(prepared, output)
            weighted = {name: weight * tf.reduce_mean(value) for name, (weight, value) in terms.items()}
        rows = {}
        for name, (weight, value) in terms.items():
            grad = tape.gradient(weighted[name], output) if weight else None
            norm = 0.0 if grad is None else float(tf.norm(tf.cast(grad, tf.float32)))
            rows[name] = {
                "weight": float(weight),
                "value": float(tf.reduce_mean(value)),
                "weighted": float(weighted[name]),
                "grad_norm": norm,
            }
        del tape
    total = sum(row["grad_norm"] for row in rows.values())
    for row in rows.values():
        row["grad_share"] = row["grad_norm"] / total if total > 0 else float("nan")
    return rows


def format_balance(rows):
    """A fixed-width table of `loss_balance`'s rows, heaviest gradient first."""
    lines = [f"{'term':10s} {'weight':>10s} {'value':>11s} {'weighted':>11s} {'grad norm':>11s} {'grad share':>10s}"]
    for name, row in sorted(rows.items(), key=lambda item: -item[1]["grad_norm"]):
        share = row["grad_share"]
        lines.append(
            f"{name:10s} {row['weight']:10.4g} {row['value']:11.4g} {row['weighted']:11.4g} "
            f"{row['grad_norm']:11.4g} {'' if math.isnan(share) else f'{share:10.3f}'}"
        )
    return "\n".join(lines)


def balance_scalars(rows):
    """Flat {"balance/<term>/grad_share": v, "balance/<term>/weighted": v} for TensorBoard and scalars.jsonl."""
    out = {}
    for name, row in rows.items():
        out[f"balance/{name}/grad_share"] = row["grad_share"]
        out[f"balance/{name}/weighted"] = row["weighted"]
    return out


class LossBalance(keras.callbacks.Callback):
    """Every `every` steps (and at the start), logs `loss_balance` of a fixed batch to TensorBoard and
    `scalars.jsonl` (one line with the step and the `balance/...` keys; `read_scalars_jsonl` merges it with the
    losses of the same step)."""

    def __init__(self, batch, every, writer=None, jsonl_path=None):
        super().__init__()
        self.batch, self.every, self.writer = batch, every, writer
        self.jsonl_path = jsonl_path
        self.last = None

    def write(self):
        step = trainer_step(self.model)
        if step != self.last:
            write_scalars(self.writer, self.jsonl_path, step, balance_scalars(loss_balance(self.model, self.batch)))
            self.last = step

    def on_train_begin(self, logs=None):
        self.write()

    def on_train_batch_end(self, batch, logs=None):
        if trainer_step(self.model) % self.every == 0:
            self.write()
