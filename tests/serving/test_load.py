"""Under load (slow tier): 8 concurrent clients x 200 requests of mixed sizes on loopback, against the gRPC test
server and against the demo's handlers called directly: no errors, bounded latency, resident memory stable (no
growth from a retrace or a cache per request shape). `benchmarks/serving_load.py` does the work and prints the
table that docs/RESULTS.md quotes."""

import importlib.util
from pathlib import Path

import pytest

from tests import model_runs

ROOT = Path(__file__).resolve().parents[2]
CLIENTS, REQUESTS = 8, 200
RSS_GROWTH_MB = 150  # allowed growth over the load, after a warm-up with every size


def _load_module():
    spec = importlib.util.spec_from_file_location("serving_load", ROOT / "benchmarks" / "serving_load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check(out):
    print(_load_module().table([out]))
    assert out["requests"] == CLIENTS * REQUESTS
    assert out["errors"] == 0, out["first_errors"]
    assert out["p99_ms"] < 10_000 and out["wall_s"] < 900, out
    assert out["rss_after_mb"] - out["rss_before_mb"] < RSS_GROWTH_MB, out


@pytest.mark.slow
@pytest.mark.parametrize("method", ["sagan", "pggan_completion"])
def test_grpc_test_server_under_load(method, tmp_path_factory, synthetic_celeba):
    run = model_runs.exported_run(method, tmp_path_factory, synthetic_celeba)
    out = _load_module().grpc_load(run.export_dir, clients=CLIENTS, requests=REQUESTS)
    assert out["task"] == ("edit" if method == "sagan" else "complete")
    _check(out)


@pytest.mark.slow
def test_demo_handlers_under_load(tmp_path_factory, synthetic_celeba, tmp_path):
    run = model_runs.exported_run("sagan", tmp_path_factory, synthetic_celeba)
    _check(_load_module().demo_load(run.model_dir, clients=CLIENTS, requests=REQUESTS, work_dir=tmp_path))
