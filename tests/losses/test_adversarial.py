"""Golden-value tests of the adversarial losses (expected values computed by hand with `math`)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tf_faceedit.losses import (
    ADVERSARIAL_LOSSES,
    gan_discriminator_loss,
    gan_generator_loss,
    get_adversarial_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    wgan_discriminator_loss,
    wgan_generator_loss,
)

# Two examples, four logits each (a 2x2 patch map); reshaped to [N], [N,1] or [N,2,2,1] below.
REAL = [[1.0, -2.0, 0.5, 3.0], [0.0, 4.0, -1.0, 2.0]]
FAKE = [[0.5, 3.0, -1.5, 0.0], [-3.0, 1.0, 2.5, -0.5]]


def softplus(v):
    return math.log(1.0 + math.exp(v))


def mean(values):
    return sum(values) / len(values)


# Per-element terms of each loss, written from the papers' formulas.
EXPECTED = {
    "gan": (lambda f: softplus(-f), lambda r: softplus(-r), lambda f: softplus(f)),
    "lsgan": (lambda f: 0.5 * (f - 1) ** 2, lambda r: 0.5 * (r - 1) ** 2, lambda f: 0.5 * f**2),
    "hinge": (lambda f: -f, lambda r: max(0.0, 1 - r), lambda f: max(0.0, 1 + f)),
    "wgan": (lambda f: -f, lambda r: -r, lambda f: f),
}
FUNCTIONS = {
    "gan": (gan_generator_loss, gan_discriminator_loss),
    "lsgan": (lsgan_generator_loss, lsgan_discriminator_loss),
    "hinge": (hinge_generator_loss, hinge_discriminator_loss),
    "wgan": (wgan_generator_loss, wgan_discriminator_loss),
}


def _shaped(rows, kind):
    array = np.array(rows, "float32")
    if kind == "vector":
        return array[:, :1].reshape(2)
    if kind == "column":
        return array[:, :1]
    return array.reshape(2, 2, 2, 1)


def _used(rows, kind):
    return [row[:1] if kind in ("vector", "column") else row for row in rows]


@pytest.mark.parametrize("kind", ["vector", "column", "patch"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_values(name, kind):
    g_term, d_real_term, d_fake_term = EXPECTED[name]
    g_fn, d_fn = FUNCTIONS[name]
    real, fake = _used(REAL, kind), _used(FAKE, kind)
    expected_g = [mean([g_term(f) for f in row]) for row in fake]
    expected_d = [
        mean([d_real_term(r) for r in real_row]) + mean([d_fake_term(f) for f in fake_row])
        for real_row, fake_row in zip(real, fake)
    ]
    g = np.asarray(g_fn(_shaped(FAKE, kind)))
    d = np.asarray(d_fn(_shaped(REAL, kind), _shaped(FAKE, kind)))
    assert g.shape == (2,) and d.shape == (2,)
    np.testing.assert_allclose(g, expected_g, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d, expected_d, rtol=1e-5, atol=1e-6)


def test_get_adversarial_loss():
    for name, pair in FUNCTIONS.items():
        assert get_adversarial_loss(name) == pair
    assert set(ADVERSARIAL_LOSSES) == {"gan", "lsgan", "hinge", "wgan"}
    with pytest.raises(ValueError, match="gan, lsgan, hinge, wgan"):
        get_adversarial_loss("wgan-gp")


def test_gan_losses_stable_for_extreme_logits():
    big = np.array([[1000.0], [-1000.0]], "float32")
    np.testing.assert_allclose(np.asarray(gan_generator_loss(big)), [0.0, 1000.0])
    np.testing.assert_allclose(np.asarray(gan_discriminator_loss(big, big)), [1000.0, 1000.0])


def test_gan_generator_gradient_is_exact_at_zero():
    logits = tf.Variable([[0.0], [0.0]])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(gan_generator_loss(logits))
    # d softplus(-f) / df = -sigmoid(-f) = -0.5 at f = 0.
    np.testing.assert_allclose(tape.gradient(loss, logits).numpy(), [[-0.5], [-0.5]], rtol=1e-6)


def test_half_precision_logits_are_computed_in_float32():
    loss = gan_discriminator_loss(np.ones((2, 1), "float16"), np.zeros((2, 1), "float16"))
    assert loss.dtype == tf.float32
