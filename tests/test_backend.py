"""Tests of tf_faceedit.backend.native.input_gradient and of STYLE rule 0 (no TensorFlow in layers/ and losses/)."""

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
from tf_faceedit.backend import native

PACKAGE = pathlib.Path(tf_faceedit.__file__).parent


def test_gradient_of_sum_of_squares_is_2x():
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 1)).astype("float32")
    grad = native.input_gradient(lambda t: keras.ops.square(t), x)
    assert tuple(grad.shape) == x.shape
    np.testing.assert_allclose(np.asarray(grad), 2 * x, rtol=1e-6)


def test_per_example_outputs_give_per_example_gradients():
    x = np.random.default_rng(1).normal(size=(3, 5)).astype("float32")
    grad = native.input_gradient(lambda t: keras.ops.sum(t**3, axis=1), x)
    np.testing.assert_allclose(np.asarray(grad), 3 * x**2, rtol=1e-5)


def test_unconnected_input_gives_zeros():
    x = tf.ones((2, 3))
    grad = native.input_gradient(lambda t: tf.constant([1.0, 2.0]), x)
    np.testing.assert_array_equal(np.asarray(grad), np.zeros((2, 3)))


def test_second_order_inside_outer_tape():
    x = tf.Variable(np.array([[1.0, -2.0], [0.5, 3.0]], "float32"))
    with tf.GradientTape() as tape:
        # grad of sum(x^3) is 3x^2; d sum(3x^2) / dx = 6x.
        first = native.input_gradient(lambda t: t**3, x)
        total = tf.reduce_sum(first)
    np.testing.assert_allclose(first.numpy(), 3 * x.numpy() ** 2, rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(total, x).numpy(), 6 * x.numpy(), rtol=1e-6)


def test_unsupported_backend(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "numpy")
    with pytest.raises(NotImplementedError, match="numpy"):
        native.input_gradient(lambda t: t, np.ones((1, 2), "float32"))


# Autodiff calls: input gradients live in backend/native.py, parameter gradients in the trainers (training/), nowhere
# else.
AUTODIFF = {"GradientTape", "grad", "value_and_grad", "vjp", "jvp", "gradients", "autograd"}
AUTODIFF_HOMES = {"backend/native.py"}
AUTODIFF_DIRS = {"training"}
FRAMEWORKS = {"tensorflow", "jax", "torch"}
BACKENDS = FRAMEWORKS | {"numpy"}  # numpy too, directly: a numpy op on a tensor is a silent host round trip
# tf_faceedit modules that bring TensorFlow in (lazily or not): layers/ and losses/ import none of them
TF_MODULES = {"tf_faceedit.backend.lazy_tf"}


def _module_name(path, package=PACKAGE):
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path, package=PACKAGE):
    """Every module name an import in `path` refers to, anywhere in the file (inside functions too): `import a.b`
    gives a.b; `from a.b import c` gives a.b and a.b.c; relative imports are resolved against the package; and
    `importlib.import_module("x")` / `__import__("x")` with a constant name gives x."""
    parent = _module_name(path, package).split(".")
    if path.name != "__init__.py":
        parent = parent[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = parent[: len(parent) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__"):
                names.add(node.args[0].value)
    return names


def _forbidden(names, libraries=BACKENDS):
    """The imports among `names` that bring a backend library in: the libraries themselves (and their submodules)
    and the package's lazy TensorFlow proxy."""
    bad = set()
    for name in names:
        parts = name.split(".")
        prefixes = {".".join(parts[: i + 1]) for i in range(len(parts))}
        if parts[0] in libraries or prefixes & TF_MODULES:
            bad.add(name)
    return bad


def test_the_import_scan_sees_every_form(tmp_path):
    """The guard below must catch TensorFlow however it is imported (a guard that only read top-level module names
    let `from tf_faceedit.backend.lazy_tf import tf` through)."""
    layers = tmp_path / "tf_faceedit" / "layers"
    layers.mkdir(parents=True)
    cases = {
        "import tensorflow as tf": "tensorflow",
        "import tensorflow.keras": "tensorflow.keras",
        "from tensorflow import nn": "tensorflow",
        "from tf_faceedit.backend.lazy_tf import tf": "tf_faceedit.backend.lazy_tf",
        "from ..backend.lazy_tf import tf": "tf_faceedit.backend.lazy_tf",
        "from ..backend import lazy_tf": "tf_faceedit.backend.lazy_tf",
        "def f():\n    import jax.numpy as jnp\n    return jnp": "jax.numpy",
        "import importlib\ntf = importlib.import_module('tensorflow')": "tensorflow",
        "np = __import__('numpy')": "numpy",
    }
    for source, culprit in cases.items():
        path = layers / "case.py"
        path.write_text(source + "\n")
        assert culprit in _forbidden(_imports(path, tmp_path / "tf_faceedit")), source
    clean = layers / "clean.py"
    clean.write_text(
        "import keras\nfrom keras import ops\nfrom tf_faceedit.errors import ConfigError\n"
        "from .blocks import ConvNormAct\nfrom tf_faceedit.backend import native, tensor_types\n"
    )
    assert not _forbidden(_imports(clean, tmp_path / "tf_faceedit"))


# Import circles left on purpose, each a set of modules that import one another (through imports inside functions).
# The test below fails on any other circle, and on an entry here that no longer is one (then delete it).
KNOWN_CIRCLES = []


def _import_circles(package=PACKAGE):
    """The import circles among the modules of `package`: the strongly connected components (of two modules or more)
    of the graph "module -> the package modules it imports", imports inside functions included (`_imports`). An
    import of a module's own parent package is left out: Python runs the parent first in any case."""
    modules = {_module_name(path, package): path for path in sorted(package.rglob("*.py"))}
    graph = {
        module: sorted(
            n for n in _imports(path, package) if n in modules and n != module and not module.startswith(n + ".")
        )
        for module, path in modules.items()
    }
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(module):  # Tarjan's algorithm
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in graph[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = set()
            while not component or module not in component:
                component.add(stack.pop())
            on_stack.difference_update(component)
            if len(component) > 1:
                circles.append(component)

    for module in graph:
        if module not in index:
            visit(module)
    return circles


def test_the_circle_finder_sees_imports_inside_functions(tmp_path):
    package = tmp_path / "tf_faceedit"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from tf_faceedit import a\n")
    (package / "a.py").write_text("def f():\n    from tf_faceedit.sub import b\n    return b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("from ..sub import c\nfrom tf_faceedit import errors\n")
    (package / "sub" / "c.py").write_text(
        "import importlib\n\ndef g():\n    return importlib.import_module('tf_faceedit.a')\n"
    )
    (package / "errors.py").write_text("from tf_faceedit import sub\n")
    assert _import_circles(package) == [{"tf_faceedit.a", "tf_faceedit.sub.b", "tf_faceedit.sub.c"}]
    (package / "sub" / "c.py").write_text("from tf_faceedit import errors\n")
    assert _import_circles(package) == []  # a child importing its parent package (the errors -> sub edge) is no circle


def test_no_import_circles():
    """No two modules import each other, directly or through others, even inside a function (where a circle hides
    until the call): a circle means the layering is wrong (e.g. the library calling back into cli/)."""
    circles = _import_circles()
    unknown = [sorted(circle) for circle in circles if circle not in KNOWN_CIRCLES]
    assert not unknown, f"import circles (move the shared code into a module both can import): {unknown}"
    stale = [sorted(circle) for circle in KNOWN_CIRCLES if circle not in circles]
    assert not stale, f"KNOWN_CIRCLES entries that are no circle any more (delete them): {stale}"


@pytest.mark.parametrize("subpackage", ["layers", "losses"])
def test_layers_and_losses_do_not_import_backends(subpackage):
    """STYLE rule 0: keras.ops only. No import of TensorFlow, JAX, torch or numpy in layers/ and losses/, and no
    TensorFlow, JAX or torch in the tf_faceedit modules they import, transitively (backend/native.py imports its
    backends inside the function, by design, and is the one exception)."""
    direct = sorted((PACKAGE / subpackage).rglob("*.py"))
    seen, todo = set(), list(direct)
    assert todo
    while todo:
        path = todo.pop()
        if path in seen or path == PACKAGE / "backend" / "native.py":
            continue
        seen.add(path)
        names = _imports(path)
        forbidden = _forbidden(names, BACKENDS if path in direct else FRAMEWORKS)
        assert not forbidden, f"{path.relative_to(PACKAGE)} imports {sorted(forbidden)} (STYLE rule 0: keras.ops only)"
        for name in names:
            if name.startswith("tf_faceedit."):
                parts = name.split(".")[1:]
                for candidate in (PACKAGE.joinpath(*parts).with_suffix(".py"), PACKAGE.joinpath(*parts, "__init__.py")):
                    if candidate.is_file():
                        todo.append(candidate)
    assert len(seen) >= len(list((PACKAGE / subpackage).glob("*.py")))


def test_backend_is_the_one_place_for_input_gradients():
    """backend/native.py's promise (its module docstring): automatic differentiation lives there, and in the trainers'
    steps, nowhere else in the package; and it imports no backend at module level."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.as_posix() in AUTODIFF_HOMES or rel.parts[0] in AUTODIFF_DIRS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in AUTODIFF
                and isinstance(node.value, ast.Name)
                and node.value.id in ("tf", "jax", "torch")
            ):
                offenders.append(f"{rel}:{node.lineno} {node.value.id}.{node.attr}")
    assert not offenders, f"autodiff outside backend/native.py and training/: {offenders}"
    tree = ast.parse((PACKAGE / "backend" / "native.py").read_text())
    top_level = _forbidden(_imports_of_nodes(tree.body))
    assert not top_level, f"backend/native.py imports {top_level} at module level (they must be imported lazily)"


def _imports_of_nodes(nodes):
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


PORTABILITY_SCRIPT = """
import math, numpy as np, keras
from tf_faceedit import losses, layers
from tf_faceedit.backend import native
x = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype("float32")
np.testing.assert_allclose(np.asarray(native.input_gradient(lambda t: t ** 2, x)), 2 * x, rtol=1e-5)
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
    result = subprocess.run(
        [sys.executable, "-c", PORTABILITY_SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
