"""Tests of compute_average_loss / per_example_mean (STYLE rule 8)."""

import numpy as np
import pytest
import tensorflow as tf

from tf_faceedit.losses import compute_average_loss, per_example_mean, per_example_sum


def test_divides_by_global_batch_not_local():
    per_example = np.array([1.0, 2.0, 3.0, 4.0], "float32")
    assert float(compute_average_loss(per_example, global_batch_size=8)) == pytest.approx(10 / 8)
    assert float(compute_average_loss(per_example, global_batch_size=tf.constant(8))) == pytest.approx(10 / 8)
    assert float(compute_average_loss(per_example)) == pytest.approx(10 / 4)


def test_replica_sum_equals_global_mean():
    full = np.array([0.5, 1.5, 2.0, 4.0, 3.0, 1.0], "float32")
    replicas = np.split(full, 3)
    total = sum(float(compute_average_loss(shard, global_batch_size=6)) for shard in replicas)
    assert total == pytest.approx(full.mean())
    # A plain local mean would overcount by the number of replicas.
    assert sum(float(compute_average_loss(shard)) for shard in replicas) == pytest.approx(3 * full.mean())


def test_inside_tf_function_with_unknown_batch():
    fn = tf.function(
        lambda loss, n: compute_average_loss(loss, n),
        input_signature=[tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int32)],
    )
    assert float(fn(tf.constant([2.0, 4.0]), tf.constant(4))) == pytest.approx(1.5)
    fn_local = tf.function(compute_average_loss, input_signature=[tf.TensorSpec([None], tf.float32)])
    assert float(fn_local(tf.constant([2.0, 4.0, 6.0]))) == pytest.approx(4.0)


def test_errors():
    with pytest.raises(ValueError, match="scalar"):
        compute_average_loss(np.float32(3.0), 4)
    with pytest.raises(ValueError, match="global_batch_size"):
        compute_average_loss(np.ones(2, "float32"), 0)
    with pytest.raises(ValueError, match="batch axis"):
        per_example_mean(np.float32(1.0))


def test_per_example_mean_and_sum():
    x = np.arange(2 * 2 * 3 * 1, dtype="float32").reshape(2, 2, 3, 1)
    np.testing.assert_allclose(np.asarray(per_example_mean(x)), [2.5, 8.5])
    np.testing.assert_allclose(np.asarray(per_example_sum(x)), [15.0, 51.0])
    np.testing.assert_allclose(np.asarray(per_example_mean(np.array([1.0, 2.0], "float32"))), [1.0, 2.0])
    assert np.asarray(per_example_mean(np.array([[1, 2]], "int32"))).dtype == np.float32
