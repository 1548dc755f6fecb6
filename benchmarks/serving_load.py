"""Load test: concurrent clients of the gRPC test server (and of the demo's handlers), mixed request sizes.

    python benchmarks/serving_load.py --export_dir EXPORT/sagan/1                      # gRPC: 8 clients x 200
    python benchmarks/serving_load.py --export_dir EXPORT/sagan/1 --model_dir RUN --demo   # + the demo handlers
    python benchmarks/serving_load.py --model_dir RUN --clients 8 --requests 200          # exports to a temp dir

gRPC: the in-process test server (`tf_faceedit.serving.grpc_server`, NOT TF Serving; 4 worker threads by default)
on a loopback port; `--clients` threads, each with its own `GrpcClient`, send `--requests` Predict calls each:
`edit` (or `complete`, with a random hole) of a batch of random uint8 images whose batch size and height x width
are drawn (seeded) from `SIZES` (1x64x64 ... 8x64x64, 1x512x384), and check every answer (uint8, the input's
shape; for completion, unchanged outside the hole). Demo: the same number of threads call
`DemoHandlers.edit` directly (no browser, no Gradio) on photos of mixed sizes (the example photos, scaled);
the handlers serialise inference with their own lock.

Reported per part: requests, errors, wall time, requests/s, latency p50 / p99 / max (per request, as the client
sees it: queueing included), and the process's resident memory (VmRSS) after a warm-up with every size and after
the load (growth would mean a retrace or a cache per request shape). Client and server share this process.
"""

import argparse
import concurrent.futures
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

# (batch, height, width) of the gRPC requests: square and not, smaller and larger than the model's side
SIZES = [(1, 64, 64), (1, 100, 80), (2, 128, 128), (4, 37, 53), (1, 256, 256), (8, 64, 64), (1, 512, 384)]
DEMO_SCALES = [0.5, 0.75, 1.0, 1.5, 2.0]  # the example photos (300x320, 300x440) scaled: 150 px .. 880 px wide


def rss_bytes():
    """This process's resident set size (Linux /proc; 0 where unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def percentiles(seconds):
    values = np.sort(np.asarray(seconds, np.float64)) * 1000.0
    if not len(values):
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
    return {
        "p50_ms": float(np.percentile(values, 50)),
        "p99_ms": float(np.percentile(values, 99)),
        "max_ms": float(values[-1]),
    }


def request_inputs(task, k, rng, size):
    batch, height, width = size
    inputs = {
        "image": rng.integers(0, 256, (batch, height, width, 3), dtype=np.uint8),
        "attributes": rng.integers(0, 2, (batch, k)).astype(np.float32),
    }
    if task == "complete":
        mask = np.zeros((batch, height, width, 1), np.uint8)
        mask[:, height // 4 : height // 2, width // 4 : width // 2] = 255
        inputs["mask"] = mask
    return inputs


def check_answer(task, inputs, out):
    """None when `out` is a well-formed answer to `inputs`, else what is wrong."""
    key = "image" if task == "edit" else "completed"
    image = out.get(key)
    if image is None:
        return f"no {key!r} output (got {sorted(out)})"
    if image.dtype != np.uint8 or image.shape != inputs["image"].shape:
        return f"{key} is {image.dtype}{list(image.shape)}, expected uint8{list(inputs['image'].shape)}"
    if task == "complete":
        outside = inputs["mask"][..., 0] == 0
        if not np.array_equal(image[outside], inputs["image"][outside]):
            return "completion changed pixels outside the hole"
    return None


def _run_clients(call, clients, requests):
    """Runs `call(client_index, request_index)` from `clients` threads, `requests` each. Returns (latencies,
    errors as strings, wall seconds)."""
    latencies, errors, lock = [], [], threading.Lock()
    barrier = threading.Barrier(clients)

    def worker(index):
        barrier.wait()
        for r in range(requests):
            start = time.perf_counter()
            try:
                problem = call(index, r)
            except Exception as err:  # noqa: BLE001 - every failure is counted and reported
                problem = f"{type(err).__name__}: {err}"
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                if problem:
                    errors.append(problem)

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(worker, i) for i in range(clients)]:
            future.result()
    return latencies, errors, time.perf_counter() - start


def _summary(name, latencies, errors, wall, rss_before, rss_after, clients, requests):
    return {
        "part": name,
        "clients": clients,
        "requests": clients * requests,
        "errors": len(errors),
        "first_errors": errors[:3],
        "wall_s": wall,
        "rps": len(latencies) / wall if wall else float("nan"),
        **percentiles(latencies),
        "rss_before_mb": rss_before / 2**20,
        "rss_after_mb": rss_after / 2**20,
    }


def grpc_load(export_dir, clients=8, requests=200, seed=0, server_workers=4, sizes=SIZES, timeout=120.0):
    """The gRPC part: starts the test server on `export_dir` (a version or base dir), loads it, returns the
    summary dict (see the module docstring)."""
    from tf_faceedit.serving.client import GrpcClient
    from tf_faceedit.serving.grpc_server import start_server

    server, port = start_server({"model": export_dir}, port=0, max_workers=server_workers)
    address = f"127.0.0.1:{port}"
    try:
        with GrpcClient(address, "model", timeout=timeout) as probe:
            meta = probe.metadata()
            task, k = meta["task"], len(meta["attribute_names"])
            warm_rng = np.random.default_rng(seed)
            for size in sizes:  # warm-up: every size once
                inputs = request_inputs(task, k, warm_rng, size)
                problem = check_answer(task, inputs, probe.predict(inputs))
                if problem:
                    raise AssertionError(f"warm-up request {size}: {problem}")
        rss_before = rss_bytes()
        channels = [GrpcClient(address, "model", timeout=timeout) for _ in range(clients)]
        rngs = [np.random.default_rng(seed + 1 + i) for i in range(clients)]

        def call(index, _):
            rng = rngs[index]
            inputs = request_inputs(task, k, rng, sizes[rng.integers(len(sizes))])
            return check_answer(task, inputs, channels[index].predict(inputs))

        try:
            latencies, errors, wall = _run_clients(call, clients, requests)
        finally:
            for channel in channels:
                channel.close()
        rss_after = rss_bytes()
    finally:
        server.stop(0)
    out = _summary("gRPC test server", latencies, errors, wall, rss_before, rss_after, clients, requests)
    out["task"] = task
    return out


def demo_photos(out_dir, scales=DEMO_SCALES):
    """RGB uint8 photos of mixed sizes with faces the demo's detector finds: the example photos, scaled."""
    import cv2

    from tf_faceedit.apps.demo import handlers as demo_handlers
    from tf_faceedit.images import read_image

    photos = []
    for path in demo_handlers.make_example_photos(out_dir):
        photo = read_image(path)
        for scale in scales:
            size = (int(photo.shape[1] * scale), int(photo.shape[0] * scale))
            photos.append(cv2.resize(photo, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR))
    return photos


def demo_load(model_dir, clients=8, requests=200, seed=0, work_dir=None):
    """The demo part: `DemoHandlers.edit` called from `clients` threads on photos of mixed sizes."""
    from tf_faceedit.apps.demo import handlers as demo_handlers

    models = demo_handlers.load_models([model_dir])
    label, model = next(iter(models.items()))
    if model.task != "edit":
        raise SystemExit(f"--demo: {model_dir} is a {model.task!r} model; the demo load edits (give an edit model)")
    handlers = demo_handlers.DemoHandlers(models)
    with tempfile.TemporaryDirectory() as tmp:
        photos = demo_photos(work_dir or tmp)
    k = len(model.attribute_names)
    for photo in photos:  # warm-up: every size once (the detector finds a face in each)
        out = handlers.edit(label, photo, 0, [1.0] * k)
        if "error" in out:
            raise AssertionError(f"warm-up {photo.shape}: {out['error']}")
    rss_before = rss_bytes()
    rngs = [np.random.default_rng(seed + 100 + i) for i in range(clients)]

    def call(index, _):
        rng = rngs[index]
        photo = photos[rng.integers(len(photos))]
        out = handlers.edit(label, photo, 0, [float(v) for v in rng.integers(0, 2, k)])
        if "error" in out:
            return out["error"]
        if out["result"].shape != photo.shape or out["result"].dtype != np.uint8:
            return f"result {out['result'].shape} for a photo {photo.shape}"
        return None

    latencies, errors, wall = _run_clients(call, clients, requests)
    return _summary("demo handlers", latencies, errors, wall, rss_before, rss_bytes(), clients, requests)


def table(rows):
    lines = [
        "| part | clients x requests | errors | wall s | req/s | p50 ms | p99 ms | max ms | RSS before -> after MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['part']} | {r['clients']} x {r['requests'] // r['clients']} | {r['errors']} | "
            f"{r['wall_s']:.1f} | {r['rps']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['max_ms']:.1f} | {r['rss_before_mb']:.0f} -> {r['rss_after_mb']:.0f} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export_dir", help="export version (or base) folder; default: export --model_dir")
    parser.add_argument("--model_dir", help="training run (exported to a temp dir when no --export_dir)")
    parser.add_argument("--demo", action="store_true", help="also load the demo handlers (needs --model_dir)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200, help="requests per client")
    parser.add_argument("--server_workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.export_dir and not args.model_dir:
        parser.error("give --export_dir or --model_dir")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        export_dir = args.export_dir
        if not export_dir:
            from tf_faceedit.serving import export_lib

            export_dir = export_lib.export(args.model_dir, Path(tmp) / "export" / "1")["export_dir"]
        rows.append(grpc_load(export_dir, args.clients, args.requests, args.seed, args.server_workers))
        if args.demo:
            if not args.model_dir:
                parser.error("--demo needs --model_dir")
            rows.append(demo_load(args.model_dir, args.clients, args.requests, args.seed))
    print(table(rows))
    for row in rows:
        for error in row["first_errors"]:
            print(f"{row['part']} error: {error}")
    return 1 if any(row["errors"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
