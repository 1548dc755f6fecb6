"""The JAX backend of `GANTrainer`'s step: stateless, jitted, sharing every model and loss line with the TF trainer.

Keras' JAX `fit` loop calls `trainer.train_step(state, data)` with
`state = (trainable, non_trainable, optimizer, metrics)` value lists and expects `(logs, new_state)` back; it jits
that function and threads the state from step to step (see keras/src/backend/jax/trainer.py). `GANTrainer.compile`
installs `train_step` below as the trainer's step when `keras.backend.backend() == "jax"` (`attach`), so `fit`, the
callbacks, checkpoints and the driver (`driver.py`) are the same on both backends.

The step itself is `GANTrainer.run_step`, the skeleton both backends share (seeds, `prepare_batch`, strided slices,
every `Update` in order, `step += 1`, the logs); this module only supplies its two backend parts, over an explicit
dict `id(variable) -> value` holding all trainer state:
  * every piece of code that reads or assigns Keras variables (loss functions, `prepare_batch`, optimizers, metric
    trackers) runs inside a `keras.StatelessScope` mapping EVERY state variable to its current value; what it
    assigns (BatchNorm statistics, the seed generator, a history buffer, the fade-in alpha, optimizer slots) is
    read back from the scope into the dict;
  * one player's update (`run_step`'s `run_update`): `jax.value_and_grad` of its reduced total with respect to the
    values of ITS variables only (`trainer.variables_of(update)`, the active ones of a progressive stage), the
    other variables' new values as aux; then `optimizer.apply(grads, variables)` in a scope (the optimizer was built
    on the variables of every phase, so it updates just the slots of these variables, as on TF).

Variables that Keras' loop does not thread by itself ride in the "optimizer" slot of the state: `OptimizerGroup`
stands in for `trainer.optimizer` and lists every optimizer's variables plus the `state_variables()` that are not
network/trainer weights (e.g. `HistoryBuffer`s, which are plain objects, not layers). So `jax_state_sync`, which
callbacks trigger before they read `trainer.step` or write a checkpoint, puts all of them back into the variables.

This module imports jax; it is imported only under the JAX backend (and never imports the trainer module).
"""

import functools

import jax
import keras

from tf_faceedit.errors import ConfigError
from tf_faceedit.losses.reduction import compute_average_loss
from tf_faceedit.training import precision


class OptimizerGroup:
    """Stands in for `trainer.optimizer` in Keras' JAX `fit`: the variables of every optimizer, then the trainer's
    state variables that are not already trainable/non-trainable weights of the trainer (in a fixed order)."""

    built = True  # the optimizers are built by GANTrainer.compile, for the variables of every phase

    def __init__(self, trainer):
        self._trainer = trainer

    @property
    def variables(self):
        trainer = self._trainer
        variables = [v for name in trainer.optimizer_names for v in getattr(trainer, name).variables]
        known = {id(v) for v in variables}
        known.update(id(v) for v in trainer.trainable_variables)
        known.update(id(v) for v in trainer.non_trainable_variables)
        known.update(id(v) for v in trainer.metrics_variables)
        for variable in trainer.state_variables():
            if id(variable) not in known:
                known.add(id(variable))
                variables.append(variable)
        return variables


def attach(trainer):
    """Prepares a compiled `GANTrainer` for Keras' JAX fit loop (called by `GANTrainer.compile`); returns its
    `train_step(state, data) -> (logs, state)`."""
    if precision.needs_loss_scaling(trainer.config.train.mixed_precision):
        raise ConfigError(
            "train.mixed_precision=mixed_float16 (loss scaling) is implemented for the TensorFlow "
            "backend only; under --backend=jax use train.mixed_precision=mixed_bfloat16 or float32"
        )
    trainer.optimizer = OptimizerGroup(trainer)
    return functools.partial(train_step, trainer)


class _State:
    """The values of all state variables, and StatelessScopes over them."""

    def __init__(self, variables, values):
        self.variables = variables
        self.values = values

    def scope(self, overrides=None):
        overrides = overrides or {}
        return keras.StatelessScope(
            state_mapping=[(v, overrides.get(id(v), self.values[id(v)])) for v in self.variables]
        )

    def changed(self, scope, skip=()):
        """The values of the scope's variables after the code that ran in it (skipping the ids in `skip`)."""
        out = {}
        for variable in self.variables:
            if id(variable) not in skip:
                value = scope.get_current_value(variable)
                if value is not None:
                    out[id(variable)] = value
        return out

    def run(self, fn):
        """Runs fn() with the current values; keeps what it assigns. Returns fn's result."""
        with self.scope() as scope:
            result = fn()
        self.values.update(self.changed(scope))
        return result


def _run_update(trainer, state, update, batch, seed):
    """One player's update on the values in `state` (`run_step`'s `run_update`; the TF twin is
    `GANTrainer._run_update`)."""
    variables = trainer.variables_of(update)
    ids = [id(v) for v in variables]
    own = set(ids)

    def total_of(params):
        # (a) forward pass of this player's losses with its variables set to `params`
        with state.scope(dict(zip(ids, params))) as scope:
            losses = update.loss_fn(batch, seed)
            total = compute_average_loss(losses[update.loss_key], trainer.global_batch_size)
        return total, (losses, state.changed(scope, skip=own))

    # (b) gradient of the reduced total with respect to this player's variables only
    params = [state.values[i] for i in ids]
    (_, (losses, changed)), grads = jax.value_and_grad(total_of, has_aux=True)(params)
    state.values.update(changed)

    # (c) optimizer step, and the running means of the logged losses
    def apply():
        getattr(trainer, update.optimizer).apply(grads, variables)
        trainer.record_losses(losses)

    state.run(apply)


def train_step(trainer, state, data):
    """Keras' JAX `train_step(state, data) -> (logs, state)` for a `GANTrainer`: `trainer.run_step` on the threaded
    state."""
    groups = (
        trainer.trainable_variables,
        trainer.non_trainable_variables,
        trainer.optimizer.variables,
        trainer.metrics_variables,
    )
    values = {}
    for variables, group_values in zip(groups, state):
        for variable, value in zip(variables, group_values):
            values[id(variable)] = value
    state_ = _State([v for variables in groups for v in variables], values)
    if isinstance(data, (tuple, list)):  # a Python generator yields (batch,) to fit
        (data,) = data
    logs = trainer.run_step(dict(data), functools.partial(_run_update, trainer, state_), stateful=state_.run)
    new_state = tuple([state_.values[id(v)] for v in variables] for variables in groups)
    return logs, new_state
