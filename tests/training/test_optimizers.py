"""The trainers' Adam (tf_faceedit.training.optimizers): Keras' Adam with one fused TensorFlow kernel per variable."""

import keras
import numpy as np
import pytest

from tf_faceedit.training import optimizers


def _run(optimizer_class, steps=6, **kwargs):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    shapes = [(3, 3, 4, 8), (8,), (5, 2)]
    variables = [keras.Variable(rng.normal(size=s).astype("float32")) for s in shapes]
    grads = [[rng.normal(size=s).astype("float32") * 3 for s in shapes] for _ in range(steps)]
    optimizer = optimizer_class(1e-2, beta_1=0.5, beta_2=0.99, **kwargs)

    @tf.function
    def step(gs):
        optimizer.apply(gs, variables)

    for g in grads:
        step([tf.constant(t) for t in g])
    graph = step.get_concrete_function([tf.TensorSpec(s, "float32") for s in shapes]).graph
    op_types = {op.type for op in graph.get_operations()}
    for function in graph._functions.values():
        op_types |= {op.type for op in function.graph.get_operations()}
    state = [np.asarray(v) for v in optimizer.variables]
    return [np.asarray(v) for v in variables], state, op_types


@pytest.mark.parametrize("kwargs", [{}, {"global_clipnorm": 1.0}, {"weight_decay": 0.01}, {"clipnorm": 0.5}])
def test_fused_adam_equals_keras_adam(kwargs):
    ours, our_state, op_types = _run(optimizers.Adam, **kwargs)
    theirs, their_state, _ = _run(keras.optimizers.Adam, **kwargs)
    assert "ResourceApplyAdam" in op_types  # the fused kernel ran (not Keras' element-wise update)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert len(our_state) == len(their_state)  # the same optimizer variables: checkpoints restore across the two
    for a, b in zip(our_state, their_state):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_unfused_and_amsgrad_take_keras_update():
    ours, _, op_types = _run(optimizers.Adam, fused=False)
    theirs, _, _ = _run(keras.optimizers.Adam)
    assert "ResourceApplyAdam" not in op_types
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-6)
    amsgrad, _, op_types = _run(optimizers.Adam, amsgrad=True)
    assert "ResourceApplyAdam" not in op_types
    np.testing.assert_allclose(amsgrad[0], _run(keras.optimizers.Adam, amsgrad=True)[0][0], rtol=1e-6)


def test_config_round_trip():
    optimizer = optimizers.Adam(3e-4, beta_1=0.5, fused=False, name="g_optimizer")
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(clone) is optimizers.Adam and clone.fused is False and clone.beta_1 == pytest.approx(0.5)


def test_global_clipnorm_matches_keras_and_uses_one_l2loss_per_gradient():
    import tensorflow as tf
    from keras.src.optimizers.base_optimizer import clip_by_global_norm

    rng = np.random.default_rng(1)
    grads = [tf.constant(rng.normal(size=s).astype("float32") * 4) for s in [(3, 3, 4, 8), (8,), (5, 2)]]
    optimizer = optimizers.Adam(1e-3, global_clipnorm=2.0)
    ours = optimizer._clip_gradients(grads)
    theirs = clip_by_global_norm(grads, 2.0)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    assert np.sqrt(sum(float(np.sum(np.square(np.asarray(g)))) for g in ours)) == pytest.approx(2.0, rel=1e-5)
    small = [g * 1e-3 for g in grads]  # under the norm: unchanged
    for a, b in zip(optimizer._clip_gradients(small), small):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    bad = [grads[0], tf.constant([np.nan] * 8, tf.float32), grads[2]]  # a NaN norm makes every gradient NaN
    assert all(np.isnan(np.asarray(g)).all() for g in optimizer._clip_gradients(bad))
    graph = tf.function(optimizer._clip_gradients).get_concrete_function(grads).graph
    types = [op.type for op in graph.get_operations()]
    assert types.count("L2Loss") == 3 and "Square" not in types
