"""TensorFlow, imported on first use.

`from tf_faceedit.backend.lazy_tf import tf` gives a stand-in for the `tensorflow` module: the real module is imported
the first time an attribute is read (`tf.data`, `tf.summary`, ...). Modules that hold TensorFlow-only functions next to
backend-neutral ones (the CelebA record readers of `data/celeba.py`, the trainer, the callbacks) use it, so that
importing them never needs TensorFlow: the `--backend=jax` path (numpy input pipeline, JAX trainer) runs on machines
where TensorFlow is not installed. Calling a TensorFlow-only function there raises ImportError naming the way out.
"""

import importlib


def available():
    """True when TensorFlow can be imported (it is imported to find out)."""
    try:
        importlib.import_module("tensorflow")
    except ImportError:
        return False
    return True


class _LazyModule:
    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        try:
            module = importlib.import_module(self._name)
        except ImportError as err:
            raise ImportError(
                f"this feature needs TensorFlow ({err}); without TensorFlow, train with --backend=jax "
                "(KERAS_BACKEND=jax), which uses the numpy input pipeline"
            ) from err
        return getattr(module, attr)

    def __repr__(self):
        return f"<lazily imported module {self._name!r}>"


tf = _LazyModule("tensorflow")
