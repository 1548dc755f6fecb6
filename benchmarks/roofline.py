"""The roofline column: a measured matrix-multiply peak of this machine and each case's share of it.

    peaks = measure_peaks(threads=2)                   # {"float32": FLOP/s, "bfloat16": FLOP/s}, TensorFlow
    peaks = measure_peaks(engine="jax")                # the same with jax.numpy (a GPU run: benchmarks/gpu_run.py)
    fraction_of_peak(flops_per_iter, seconds_per_iter, peaks["float32"])   # 0.42 = 42 % of the float32 peak

The peak is the best rate of an n x n x n product (2 n^3 FLOPs, n = 2048 by default) repeated for at least
`min_time` seconds, in the same process settings (threads) as the cases, measured in the same run as they are
(`benchmarks/compare_peers.py` runs it first, in its own child process). It is what these cores reach on the
friendliest work there is, not the vendor's figure: a case near it has little left to gain from faster kernels.
A case's rate is its model FLOPs (`benchmarks/flops.py`) per median iteration time.
"""

import time


def matmul_flops(m, k, n):
    """FLOPs of an [m, k] x [k, n] product (a multiply and an add per term)."""
    return 2 * m * k * n


def rate(flops, seconds):
    """FLOP/s, or None without a positive time."""
    if not seconds or seconds <= 0:
        return None
    return flops / seconds


def fraction_of_peak(flops, seconds, peak):
    """The share of `peak` (FLOP/s) that `flops` done in `seconds` reach, or None when either is missing."""
    achieved = rate(flops, seconds)
    if achieved is None or not peak:
        return None
    return achieved / peak


def best_rate(flops_per_call, times):
    """The rate of the fastest of `times` (seconds per call): the peak is what the machine can do, so the best."""
    times = [t for t in times if t > 0]
    return flops_per_call / min(times) if times else None


def timed_calls(fn, warmup=2, min_calls=5, min_time=1.0, max_calls=1000, clock=time.perf_counter):
    """Times of calls of `fn` after `warmup` untimed ones: at least `min_calls` and `min_time` seconds."""
    for _ in range(warmup):
        fn()
    times, start = [], clock()
    while True:
        t0 = clock()
        fn()
        times.append(clock() - t0)
        if len(times) >= max_calls or (len(times) >= min_calls and clock() - start >= min_time):
            return times


def _tensorflow_matmul(dtype, n):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = tf.constant(rng.standard_normal((n, n)), dtype)
    b = tf.constant(rng.standard_normal((n, n)), dtype)
    fn = tf.function(lambda: tf.linalg.matmul(a, b))
    return lambda: fn().numpy()


def _jax_matmul(dtype, n):
    import jax
    import jax.numpy as jnp

    key_a, key_b = jax.random.split(jax.random.PRNGKey(0))
    a = jax.random.normal(key_a, (n, n), jnp.dtype(dtype))
    b = jax.random.normal(key_b, (n, n), jnp.dtype(dtype))
    fn = jax.jit(jnp.matmul)
    return lambda: fn(a, b).block_until_ready()


def measure_peaks(dtypes=("float32", "bfloat16"), n=2048, min_time=2.0, engine="tensorflow"):
    """{dtype: best FLOP/s of an n x n x n product} on this process's device and threads (`engine`: "tensorflow"
    or "jax"); a dtype that fails to run gives None."""
    make = _tensorflow_matmul if engine == "tensorflow" else _jax_matmul
    peaks = {}
    for dtype in dtypes:
        try:
            fn = make(dtype, n)
            peaks[dtype] = best_rate(matmul_flops(n, n, n), timed_calls(fn, min_time=min_time))
        except Exception as err:  # noqa: BLE001 - a dtype the device lacks: reported, the other still measured
            print(f"matmul peak {dtype}: {type(err).__name__}: {str(err)[:200]}", flush=True)
            peaks[dtype] = None
    return peaks


def fmt_rate(flops_per_s):
    """'123.4 GFLOP/s' / '1.23 TFLOP/s', or '-'."""
    if flops_per_s is None:
        return "-"
    if flops_per_s >= 1e12:
        return f"{flops_per_s / 1e12:.2f} TFLOP/s"
    return f"{flops_per_s / 1e9:.1f} GFLOP/s"


def fmt_fraction(fraction):
    return "-" if fraction is None else f"{100 * fraction:.0f}%"
