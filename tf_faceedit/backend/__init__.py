"""What depends on the Keras backend or on TensorFlow itself, in one package.

  native.py:       input gradients and the TensorFlow kernels that `keras.ops` cannot express (fused batch norm,
                   instance norm's closed-form gradient, the XLA convolution); the one place for them.
  lazy_tf.py:      `from tf_faceedit.backend.lazy_tf import tf`, TensorFlow imported on first use.
  onednn.py:       TensorFlow's oneDNN CPU kernels, turned on by `import tf_faceedit` on x86-64 Linux.
  tensor_types.py: the `Tensor` and `Shape` annotation aliases.

This file imports nothing: `import tf_faceedit` imports `backend.onednn` before TensorFlow, and layers and losses
import `backend.native` and `backend.tensor_types` without bringing a backend library in.
"""
