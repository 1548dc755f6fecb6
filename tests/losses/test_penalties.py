"""Tests of the gradient penalty (WGAN-GP) and R1, with critics whose input gradients are known in closed form."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_faceedit.losses import gradient_penalty, r1_penalty

SHAPE = (3, 4, 4, 3)
N_ELEMENTS = 4 * 4 * 3


@pytest.fixture
def real_fake():
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, SHAPE).astype("float32"), rng.uniform(-1, 1, SHAPE).astype("float32")


def linear_critic(scale):
    return lambda x: scale * keras.ops.sum(x, axis=(1, 2, 3))


@pytest.mark.parametrize("seed", [0, 1, 7, 1234])
def test_linear_critic_has_known_penalty_for_every_alpha(real_fake, seed):
    real, fake = real_fake
    penalty = np.asarray(gradient_penalty(linear_critic(2.0), real, fake, seed=seed))
    assert penalty.shape == (3,)
    np.testing.assert_allclose(penalty, (2 * math.sqrt(N_ELEMENTS) - 1) ** 2, rtol=1e-5)


def test_patch_map_critic_outputs_are_summed(real_fake):
    real, fake = real_fake
    # D(x) = 2x elementwise, a [N, 4, 4, 3] "patch map": its sum has gradient 2 everywhere, like 2 * sum(x).
    penalty = np.asarray(gradient_penalty(lambda x: 2.0 * x, real, fake, seed=3))
    np.testing.assert_allclose(penalty, (2 * math.sqrt(N_ELEMENTS) - 1) ** 2, rtol=1e-5)


def test_unit_gradient_norm_gives_zero_penalty(real_fake):
    real, fake = real_fake
    penalty = np.asarray(gradient_penalty(linear_critic(1 / math.sqrt(N_ELEMENTS)), real, fake, seed=5))
    np.testing.assert_allclose(penalty, 0.0, atol=1e-6)


def _alphas(seed, n=5):
    """alpha per sample, recovered from the penalty of D(x) = 0.5 x^2 with real = 0, fake = 1, one element:
    grad = x_hat = alpha, penalty = (alpha - 1)^2, so alpha = 1 - sqrt(penalty) (alpha in [0, 1))."""
    real, fake = np.zeros((n, 1), "float32"), np.ones((n, 1), "float32")
    penalty = np.asarray(gradient_penalty(lambda x: 0.5 * keras.ops.square(x), real, fake, seed=seed, epsilon=0.0))
    return 1.0 - np.sqrt(penalty)


def test_alpha_is_uniform_per_sample_and_seeded():
    alphas = _alphas(seed=11, n=4000)
    assert alphas.min() >= -1e-6 and alphas.max() < 1.0
    assert alphas.mean() == pytest.approx(0.5, abs=0.03)
    assert alphas.std() == pytest.approx(1 / math.sqrt(12), abs=0.02)  # U(0,1), not N(0,1) or a constant
    assert len(np.unique(np.round(alphas[:5], 6))) == 5  # one alpha per sample
    np.testing.assert_array_equal(_alphas(seed=3), _alphas(seed=3))
    assert not np.allclose(_alphas(seed=3), _alphas(seed=4))


def test_seed_generator_gives_fresh_reproducible_draws():
    def draws(generator):
        return [_alphas(seed=generator) for _ in range(2)]

    first, second = draws(keras.random.SeedGenerator(42)), draws(keras.random.SeedGenerator(42))
    assert not np.allclose(first[0], first[1])
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_epsilon_inside_sqrt_keeps_gradient_finite_for_flat_critic(real_fake):
    real, fake = real_fake
    w = tf.Variable(0.0)
    with tf.GradientTape() as tape:
        penalty = gradient_penalty(lambda x: w * keras.ops.sum(x, axis=(1, 2, 3)), real, fake, seed=0)
        loss = tf.reduce_mean(penalty)
    np.testing.assert_allclose(penalty.numpy(), (math.sqrt(1e-10) - 1) ** 2, rtol=1e-6)
    grad = tape.gradient(loss, w)
    assert grad is not None and np.isfinite(grad.numpy())


def test_second_order_gradient_matches_analytic(real_fake):
    """D(x) = sum(x * w): grad_x = w, penalty = (||w|| - 1)^2, d penalty / dw = 2 (||w|| - 1) w / ||w||."""
    real, fake = real_fake
    w0 = np.random.default_rng(1).normal(size=SHAPE[1:]).astype("float32") * 0.3
    w = tf.Variable(w0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(gradient_penalty(lambda x: keras.ops.sum(x * w, axis=(1, 2, 3)), real, fake, seed=2))
    norm = np.linalg.norm(w0)
    np.testing.assert_allclose(loss.numpy(), (norm - 1) ** 2, rtol=1e-5)
    np.testing.assert_allclose(tape.gradient(loss, w).numpy(), 2 * (norm - 1) * w0 / norm, rtol=1e-4, atol=1e-6)


def test_differentiable_wrt_dense_critic_weights(real_fake):
    real, fake = real_fake
    critic = keras.Sequential(
        [
            keras.Input(SHAPE[1:]),
            keras.layers.Flatten(),
            keras.layers.Dense(4, activation="tanh"),
            keras.layers.Dense(1, use_bias=False),
        ]
    )
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(gradient_penalty(lambda x: critic(x, training=True), real, fake, seed=0))
    grads = tape.gradient(loss, critic.trainable_variables)
    assert len(grads) == 3
    for grad in grads:
        assert grad is not None
        assert np.all(np.isfinite(grad.numpy()))
    assert any(np.abs(grad.numpy()).max() > 0 for grad in grads)


def test_inside_tf_function_with_unknown_batch(real_fake):
    real, fake = real_fake
    seed = keras.random.SeedGenerator(0)

    @tf.function(input_signature=[tf.TensorSpec((None,) + SHAPE[1:], tf.float32)] * 2)
    def penalty_fn(r, f):
        return gradient_penalty(linear_critic(2.0), r, f, seed=seed)

    penalty = penalty_fn(real, fake).numpy()
    assert penalty.shape == (3,)
    np.testing.assert_allclose(penalty, (2 * math.sqrt(N_ELEMENTS) - 1) ** 2, rtol=1e-5)


def test_rank_one_input_is_rejected():
    with pytest.raises(ValueError, match="rank"):
        gradient_penalty(lambda x: x, np.zeros(3, "float32"), np.zeros(3, "float32"))


def test_r1_penalty(real_fake):
    real, _ = real_fake
    # D(x) = 0.5 sum(x^2): grad = x, so R1 = sum(x^2) per example (no 1/2 factor).
    got = np.asarray(r1_penalty(lambda x: 0.5 * keras.ops.sum(keras.ops.square(x), axis=(1, 2, 3)), real))
    np.testing.assert_allclose(got, (real**2).reshape(3, -1).sum(1), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(r1_penalty(linear_critic(2.0), real)), 4.0 * N_ELEMENTS, rtol=1e-6)
