"""Mixed precision and XLA options of a training run (`train.mixed_precision`, `train.jit_compile`).

* `policy_scope(name)` sets the Keras global dtype policy while a trainer's networks are BUILT and puts the previous
  policy back afterwards, so one run's policy never leaks into the next run of the same process. A layer keeps the
  policy it was built with, so nothing else needs the global policy.
* Under "mixed_float16"/"mixed_bfloat16" the variables stay float32 (checkpoints load across precisions); the
  squashing output activations (tanh images, sigmoid/softmax attention) and the attention blends compute in float32,
  and every loss is computed in float32 (`losses.reduction.as_float_tensor`).
* "mixed_float16" needs loss scaling: `loss_scale_optimizers` wraps each optimizer in a Keras `LossScaleOptimizer`
  (dynamic scale). The trainer keeps the plain optimizers as its attributes (what checkpoints save, the same layout
  in every precision) and applies updates through the wrappers; the dynamic loss scale itself is not checkpointed
  and restarts from its initial value on resume.
* Inference (`tf_faceedit.load`, export, evaluate, edit) builds the networks under the process's current policy
  (float32 by default) and loads the float32 weights of a run in any precision.
"""

import contextlib

import keras

# train.mixed_precision -> Keras dtype policy name
POLICIES = {"none": "float32", "mixed_float16": "mixed_float16", "mixed_bfloat16": "mixed_bfloat16"}


def policy_name(mixed_precision):
    """The Keras policy of a `train.mixed_precision` value ("none" -> "float32")."""
    return POLICIES[mixed_precision]


@contextlib.contextmanager
def policy_scope(mixed_precision):
    """Sets the global dtype policy for `train.mixed_precision` inside the block and restores the previous one."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy_name(mixed_precision))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def needs_loss_scaling(mixed_precision):
    return mixed_precision == "mixed_float16"


def loss_scale_optimizers(optimizers):
    """name -> `keras.optimizers.LossScaleOptimizer` wrapping each optimizer of `optimizers` (a dict)."""
    return {
        name: keras.optimizers.LossScaleOptimizer(optimizer, name=f"{name}_loss_scale")
        for name, optimizer in optimizers.items()
    }


def jit_compile_arg(value):
    """`train.jit_compile` ("auto" | "true" | "false") -> the `jit_compile` argument of `keras.Model.compile`."""
    value = str(value).lower()
    return "auto" if value == "auto" else value == "true"
