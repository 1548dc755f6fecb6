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
* "auto" (`resolve`) is mixed_bfloat16 when the networks train on a CPU with native bfloat16 (AMX-BF16 or
  AVX512_BF16: 1.3-1.4x faster per step on the CPU recipes) and float32 otherwise (AVX2-only CPUs emulate bfloat16
  and are slower with it; GPUs: say mixed_bfloat16 / mixed_float16 explicitly). It is resolved each time a run is
  built, so a run resumed on another machine takes that machine's choice (checkpoints are float32 either way).
* Inference (`tf_faceedit.load`, export, evaluate, edit) builds the networks under the process's current policy
  (float32 by default) and loads the float32 weights of a run in any precision.
"""

import contextlib
import functools

import keras

from tf_faceedit.backend import native

# train.mixed_precision -> Keras dtype policy name
POLICIES = {"none": "float32", "mixed_float16": "mixed_float16", "mixed_bfloat16": "mixed_bfloat16"}
NATIVE_BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of CPUs that compute bfloat16 natively


def cpu_info():
    """(model name, feature flags) of the CPU; ("", empty set) where /proc/cpuinfo cannot be read (e.g. macOS)."""
    return _read_cpuinfo("/proc/cpuinfo")


def cpu_flags():
    """The CPU's feature flags (a set; empty where /proc/cpuinfo cannot be read)."""
    return cpu_info()[1]


def _read_cpuinfo(path):
    model = ""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    return model, set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return model, set()


@functools.cache
def _auto():
    if native.accelerator_visible():
        return "none"
    return "mixed_bfloat16" if cpu_flags() & set(NATIVE_BFLOAT16_FLAGS) else "none"


def resolve(mixed_precision):
    """`train.mixed_precision` with "auto" replaced by this machine's choice: "mixed_bfloat16" on a CPU with native
    bfloat16 (`NATIVE_BFLOAT16_FLAGS`) and no GPU/TPU visible, else "none". Other values are returned as given."""
    return _auto() if mixed_precision == "auto" else mixed_precision


def policy_name(mixed_precision):
    """The Keras policy of a `train.mixed_precision` value ("none" -> "float32"; "auto": see `resolve`)."""
    return POLICIES[resolve(mixed_precision)]


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
    return resolve(mixed_precision) == "mixed_float16"


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
