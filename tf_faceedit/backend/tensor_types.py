"""Type aliases for annotations (typing only: importing this module imports neither TensorFlow nor Keras).

Tensor: a backend tensor (tf.Tensor / jax.Array / torch.Tensor), a KerasTensor of a functional model, or a numpy
        array. `Any`, because which of these a function receives depends on the Keras backend and on how it is
        called (eagerly, inside a `tf.function` / `jax.jit`, or while building a functional model).
Shape:  a Keras shape, a sequence of ints with None for an unknown dimension (what `build` and
        `compute_output_shape` receive).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

Tensor: TypeAlias = Any
Shape: TypeAlias = Sequence[int | None]
