"""The arithmetic of the roofline column (benchmarks/roofline.py); the peak itself is measured only by the benchmark."""

import pytest

from benchmarks import roofline


def test_rates_and_fractions():
    assert roofline.matmul_flops(2, 3, 4) == 48
    assert roofline.rate(1e9, 0.5) == 2e9
    assert roofline.rate(1e9, 0) is None
    assert roofline.fraction_of_peak(1e9, 0.5, 4e9) == pytest.approx(0.5)
    assert roofline.fraction_of_peak(1e9, 0.5, None) is None
    assert roofline.fraction_of_peak(1e9, None, 4e9) is None
    assert roofline.best_rate(100, [2.0, 0.5, 1.0]) == 200  # the fastest call: what the machine can do
    assert roofline.best_rate(100, []) is None


def test_timed_calls_counts_and_warms_up():
    ticks = iter(range(1000))
    calls = []
    times = roofline.timed_calls(
        lambda: calls.append(1), warmup=2, min_calls=3, min_time=4.0, clock=lambda: float(next(ticks))
    )
    # each call takes one tick; at least 3 calls and 4 ticks since the start
    assert len(calls) == 2 + len(times) and all(t == 1.0 for t in times) and len(times) >= 3


def test_formatting():
    assert roofline.fmt_rate(1.5e12) == "1.50 TFLOP/s"
    assert roofline.fmt_rate(2.5e10) == "25.0 GFLOP/s"
    assert roofline.fmt_rate(None) == "-"
    assert roofline.fmt_fraction(0.426) == "43%"
    assert roofline.fmt_fraction(None) == "-"


def test_measure_peaks_reports_a_failing_dtype(monkeypatch):
    def make(dtype, n):
        if dtype == "bfloat16":
            raise RuntimeError("no bfloat16 here")
        return lambda: None

    monkeypatch.setattr(roofline, "_tensorflow_matmul", make)
    monkeypatch.setattr(roofline, "timed_calls", lambda fn, min_time: [0.5, 0.25])
    peaks = roofline.measure_peaks(n=10)
    assert peaks == {"float32": 2 * 10**3 / 0.25, "bfloat16": None}
