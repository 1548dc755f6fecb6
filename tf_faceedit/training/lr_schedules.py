"""Learning-rate schedules (keras.ops only, serializable).

`ConstantThenLinearDecay`: the CycleGAN/AttentionGAN schedule, lr(t) = base for t < decay_start, then linear to 0 at
`total_steps`: base * (total_steps - t) / (total_steps - decay_start), never below 0. The optimizer's `iterations`
is the step t (one apply per training step), and it is restored with the optimizer state on resume.
"""

import keras


@keras.saving.register_keras_serializable(package="tf_faceedit")
class ConstantThenLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Constant learning rate, then a linear decay to 0 (Zhu et al., CycleGAN, ICCV 2017: 100 + 100 epochs).

    Args:
      initial_learning_rate: base rate; decay_start: first step of the decay; total_steps: step at which it is 0.
    """

    def __init__(self, initial_learning_rate, decay_start, total_steps):
        if total_steps <= decay_start:
            raise ValueError(f"total_steps ({total_steps}) must be > decay_start ({decay_start})")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_start = int(decay_start)
        self.total_steps = int(total_steps)

    def __call__(self, step):
        t = keras.ops.cast(step, "float32")
        fraction = (self.total_steps - t) / float(self.total_steps - self.decay_start)
        return self.initial_learning_rate * keras.ops.clip(fraction, 0.0, 1.0)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_start": self.decay_start,
            "total_steps": self.total_steps,
        }
