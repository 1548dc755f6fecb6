"""The optimizers of the trainers: `keras.optimizers.Adam`, with one fused kernel per variable on TensorFlow.

Keras 3 writes Adam's update with `keras.ops`, so on TensorFlow every variable's step is about a dozen separate
element-wise ops (two moment updates, the square root, the division, three assignments, each reading and writing
the whole tensor). On a CPU those passes over memory cost a fifth of a Fader training iteration (issue 17's
profile, `benchmarks/profile_step.py`). `Adam` below computes the same update with TensorFlow's fused
`ResourceApplyAdam` kernel, one op per variable:

    lr_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t);  m += (g - m)(1 - beta_1);  v += (g^2 - v)(1 - beta_2)
    w -= lr_t * m / (sqrt(v) + epsilon)

which is exactly `keras.optimizers.Adam.update_step` (t = iterations + 1; epsilon outside the square root).
With `global_clipnorm`, the global norm is summed from one `L2Loss` kernel per gradient (Keras: a square then
a sum, two passes over each gradient; 2.7x faster on the Fader encoder's gradients). The
variables (momentums, velocities, iterations) are Keras' own, so checkpoints written with either class restore
into the other. The fused path is taken on the TensorFlow backend, outside any `tf.distribute` strategy other
than the default one, without amsgrad, for dense gradients; anything else runs Keras' update unchanged.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="tf_faceedit")
class Adam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` (same arguments, same update, same variables) with a fused kernel on TensorFlow.

    Args:
      fused: use the fused TensorFlow kernel where it applies (see the module docstring); False runs Keras'
        update everywhere.
      **kwargs: `keras.optimizers.Adam` arguments (learning_rate, beta_1, beta_2, epsilon, global_clipnorm, ...).
    """

    def __init__(self, *args, fused: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fused = bool(fused)

    def _fused_applies(self, gradient, variable):
        if not self.fused or self.amsgrad or keras.backend.backend() != "tensorflow":
            return False
        import tensorflow as tf

        if tf.distribute.has_strategy() or isinstance(gradient, tf.IndexedSlices):
            return False
        return hasattr(_tf_variable(variable), "handle")

    def _clip_gradients(self, grads):
        if not (self.global_clipnorm and self.global_clipnorm > 0) or self.clipnorm:
            return super()._clip_gradients(grads)
        if not self.fused or keras.backend.backend() != "tensorflow":
            return super()._clip_gradients(grads)
        import tensorflow as tf

        present = [g for g in grads if g is not None]
        if any(isinstance(g, tf.IndexedSlices) for g in present):
            return super()._clip_gradients(grads)
        # Keras' clip_by_global_norm with sum(g^2) = 2 l2_loss(g): the same scale, NaN/inf norms included
        norm = tf.sqrt(2.0 * tf.add_n([tf.nn.l2_loss(tf.cast(g, tf.float32)) for g in present]))
        scale_for_finite = self.global_clipnorm * tf.minimum(1.0 / norm, 1.0 / self.global_clipnorm)
        scale = scale_for_finite + (norm - norm)
        return [g * tf.cast(scale, g.dtype) if g is not None else g for g in grads]

    def update_step(self, gradient, variable, learning_rate):
        if not self._fused_applies(gradient, variable):
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        var = _tf_variable(variable)
        dtype = var.dtype
        index = self._get_variable_index(variable)
        m, v = _tf_variable(self._momentums[index]), _tf_variable(self._velocities[index])
        local_step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        return tf.raw_ops.ResourceApplyAdam(
            var=var.handle,
            m=m.handle,
            v=v.handle,
            beta1_power=tf.pow(beta_1, local_step),
            beta2_power=tf.pow(beta_2, local_step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
            use_locking=False,
        )

    def get_config(self):
        config = super().get_config()
        config["fused"] = self.fused
        return config


def _tf_variable(variable):
    """The tf.Variable behind a Keras variable (or the variable itself)."""
    return getattr(variable, "value", variable) if isinstance(variable, keras.Variable) else variable
