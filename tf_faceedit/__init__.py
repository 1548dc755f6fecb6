"""tf_faceedit: attention-guided face-editing GANs for TensorFlow 2 / Keras 3.

Conventions used across the package (see ../shared/STYLE.md of the project):
  * images are float32 NHWC in [-1, 1];
  * attributes are float32 [N, K] in {0, 1} (continuous values allowed at inference);
  * masks are float32 [N, H, W, 1] in {0, 1}, 1 marks the hole / edited region.

`tf_faceedit.load(path)` (a training run or an export) is imported lazily, so `import tf_faceedit` stays light.
Importing the package sets TF_ENABLE_ONEDNN_OPTS=1 when it is unset and TensorFlow is not imported yet, on x86-64
Linux (TensorFlow's oneDNN kernels: 1.5-1.7x faster training on AVX2-only CPUs; see `tf_faceedit.backend.onednn`).
"""

__version__ = "0.2.0.dev0"

from tf_faceedit.backend import onednn as _onednn

_onednn.prefer()  # TensorFlow's oneDNN CPU kernels on x86-64 Linux, before TensorFlow is imported (see onednn.py)


def __getattr__(name):
    if name in ("load", "FaceEditModel"):
        from tf_faceedit import api

        return getattr(api, name)
    raise AttributeError(f"module 'tf_faceedit' has no attribute {name!r}")
