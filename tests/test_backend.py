"""Tests of tf_faceedit.backend.input_gradient and of STYLE rule 0 (no TensorFlow in layers/ and losses/)."""

import ast
import importlib.util
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_faceedit
from tf_faceedit import backend

PACKAGE = pathlib.Path(tf_faceedit.__file__).parent


def test_gradient_of_sum_of_squares_is_2x():
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 1)).astype("float32")
    grad = backend.input_gradient(lambda t: keras.ops.square(t), x)
    assert tuple(grad.shape) == x.shape
    np.testing.assert_allclose(np.asarray(grad), 2 * x, rtol=1e-6)


def test_per_example_outputs_give_per_example_gradients():
    x = np.random.default_rng(1).normal(size=(3, 5)).astype("float32")
    grad = backend.input_gradient(lambda t: keras.ops.sum(t**3, axis=1), x)
    np.testing.assert_allclose(np.asarray(grad), 3 * x**2, rtol=1e-5)


def test_unconnected_input_gives_zeros():
    x = tf.ones((2, 3))
    grad = backend.input_gradient(lambda t: tf.constant([1.0, 2.0]), x)
    np.testing.assert_array_equal(np.asarray(grad), np.zeros((2, 3)))


def test_second_order_inside_outer_tape():
    x = tf.Variable(np.array([[1.0, -2.0], [0.5, 3.0]], "float32"))
    with tf.GradientTape() as tape:
        # grad of sum(x^3) is 3x^2; d sum(3x^2) / dx = 6x.
        first = backend.input_gradient(lambda t: t**3, x)
        total = tf.reduce_sum(first)
    np.testing.assert_allclose(first.numpy(), 3 * x.numpy() ** 2, rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(total, x).numpy(), 6 * x.numpy(), rtol=1e-6)


def test_unsupported_backend(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "numpy")
    with pytest.raises(NotImplementedError, match="numpy"):
        backend.input_gradient(lambda t: t, np.ones((1, 2), "float32"))


def test_module_docstring_names_the_one_place():
    assert "ONE place" in backend.__doc__


def _imports(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("subpackage", ["layers", "losses"])
def test_layers_and_losses_do_not_import_backends(subpackage):
    for path in sorted((PACKAGE / subpackage).glob("*.py")):
        forbidden = _imports(path) & {"tensorflow", "jax", "torch", "numpy"}
        assert not forbidden, f"{path.name} imports {forbidden} (STYLE rule 0: keras.ops only)"


PORTABILITY_SCRIPT = """
import math, numpy as np, keras
from tf_faceedit import backend, losses, layers
x = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype("float32")
np.testing.assert_allclose(np.asarray(backend.input_gradient(lambda t: t ** 2, x)), 2 * x, rtol=1e-5)
gp = losses.gradient_penalty(lambda t: 2.0 * keras.ops.sum(t, axis=(1, 2, 3)), x, -x,
                             seed=keras.random.SeedGenerator(0))
np.testing.assert_allclose(np.asarray(gp), (2 * math.sqrt(48) - 1) ** 2, rtol=1e-5)
image, attrs = keras.Input((8, 8, 3)), keras.Input((2,))
h = layers.TileAttributes()([image, attrs])
h = layers.ResidualBlock(5, padding="reflect")(h)
out = layers.AttentionBlend()([layers.UpBlock(3)(layers.DownBlock(5)(h)), image, layers.ConvNormAct(1)(h)])
x8 = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype("float32")
assert tuple(keras.Model([image, attrs], out)([x8, np.ones((2, 2), "float32")]).shape) == (2, 8, 8, 3)
print("ok")
"""


@pytest.mark.parametrize("name", ["jax", "torch"])
def test_other_backends(name):
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed")
    env = dict(os.environ, KERAS_BACKEND=name)
    result = subprocess.run([sys.executable, "-c", PORTABILITY_SCRIPT], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
