"""TensorFlow's oneDNN CPU kernels, which tf_faceedit turns on by default on x86-64 Linux.

TensorFlow's Linux x86-64 wheels run their oneDNN kernels (convolutions, matmuls, batch norm) by default only on
CPUs with AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX; every other x86 CPU (AVX2-only ones such as many AMD EPYC and
older Xeons) gets TensorFlow's Eigen kernels, and there the training steps of this package take 1.5-1.7x as long
(docs/RESULTS.md, 2026-12-03, fifth sitting: SaGAN 128² 22.6 s -> 13.6 s per iteration, Fader 128² 640 -> 390 ms).

TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once, when it is first imported. `import tf_faceedit` therefore sets it to
"1" when it is unset, TensorFlow is not imported yet and the machine is x86-64 Linux (`prefer`); nothing else.
The kernels give the same results up to floating-point round-off (a different order of summation).

    TF_ENABLE_ONEDNN_OPTS=0 python -m tf_faceedit.train ...    # opt out (TensorFlow's own default on this CPU)

Where TensorFlow was imported before tf_faceedit, the choice is TensorFlow's; `describe()` says which it is and the
training driver logs it (and warns, with the fix, when the kernels are off on an x86 CPU).

This module imports TensorFlow only in `enabled()` / `describe()`, so `import tf_faceedit` stays light.
"""

import os
import platform
import sys

ENV = "TF_ENABLE_ONEDNN_OPTS"

_set_by_tf_faceedit = False


def _x86_64_linux():
    return sys.platform.startswith("linux") and platform.machine().lower() in ("x86_64", "amd64")


def prefer():
    """Sets TF_ENABLE_ONEDNN_OPTS=1 if it is unset, TensorFlow is not imported yet and this is x86-64 Linux.
    Returns True when it set the variable. Called by `import tf_faceedit`."""
    global _set_by_tf_faceedit
    if ENV in os.environ or "tensorflow" in sys.modules or not _x86_64_linux():
        return False
    os.environ[ENV] = "1"
    _set_by_tf_faceedit = True
    return True


def enabled():
    """Whether TensorFlow runs its oneDNN kernels in this process (imports TensorFlow; False where it has none)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return False
    return bool(_pywrap_util_port.IsMklEnabled())


def describe():
    """One line: whether the oneDNN kernels are on, and who chose it."""
    state = "on" if enabled() else "off"
    value = os.environ.get(ENV)
    if _set_by_tf_faceedit:
        return f"{state} ({ENV}=1 set by tf_faceedit)"
    if value is not None:
        return f"{state} ({ENV}={value})"
    return f"{state} (TensorFlow's default for this CPU)"


def advice():
    """None, or a one-line warning when the kernels are off on x86-64 Linux and nobody asked for that."""
    if not _x86_64_linux() or enabled():
        return None
    if ENV in os.environ:
        return None  # the user's choice, or a TensorFlow build without oneDNN (then "1" changes nothing)
    return (
        "TensorFlow's oneDNN kernels are off on this CPU (TensorFlow was imported before tf_faceedit): training "
        f"here is about 1.6x slower; set {ENV}=1 before TensorFlow is imported (or import tf_faceedit first)"
    )
