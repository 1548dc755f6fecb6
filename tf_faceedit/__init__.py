"""tf_faceedit: attention-guided face-editing GANs for TensorFlow 2 / Keras 3.

Conventions used across the package (see ../shared/STYLE.md of the project):
  * images are float32 NHWC in [-1, 1];
  * attributes are float32 [N, K] in {0, 1} (continuous values allowed at inference);
  * masks are float32 [N, H, W, 1] in {0, 1}, 1 marks the hole / edited region.

`tf_faceedit.load(path)` (a training run or an export) is imported lazily, so `import tf_faceedit` stays light.
"""

__version__ = "0.2.0.dev0"


def __getattr__(name):
    if name in ("load", "FaceEditModel"):
        from tf_faceedit import api

        return getattr(api, name)
    raise AttributeError(f"module 'tf_faceedit' has no attribute {name!r}")
