"""Serving latency: bare generator vs the exported SavedModel signature vs a gRPC round trip, as one markdown table.

    python benchmarks/serving_latency.py --model_dir runs/sagan_quick                 # exports to a temp dir first
    python benchmarks/serving_latency.py --export_dir exports/sagan/1 [--model_dir runs/sagan_quick]
    python benchmarks/serving_latency.py --model_dir RUN --batch_sizes 1 16 --repeats 30
    python benchmarks/serving_latency.py --model_dir sagan-eyeglasses-64                # a zoo model

For each batch size, the same random uint8 faces at the model resolution S (and random target attributes, and
random rectangular holes for a completion model) go through these paths:
  (a) bare:      the trainer's `infer` (the generator forward at S, [-1, 1] float inputs prepared beforehand),
                 compiled once with `tf.function`: the floor;
  (b) signature: the exported SavedModel's `serving_default` (uint8 in, uint8 out: resize, scaling, the forward
                 pass and the compositing), loaded with `tf.saved_model.load`: what TF Serving runs;
  (c) gRPC:      `GrpcClient.edit/complete` -> loopback socket -> `tf_faceedit.serving.grpc_server` (the in-process
                 test server, NOT TF Serving) -> the same signature -> back to numpy: TensorProto encoding, HTTP/2,
                 decoding. Client and server share this process and its cores.
  (d) TFLite:    the run's generator converted by `tf_faceedit.serving.tflite_export` (float32 and float16 weights),
                 run by the TFLite interpreter (XNNPACK, one thread per core) through its "serving_default"
                 signature at S x S: what an app runs on-device (needs the run; --no_tflite leaves it out).
Each path is warmed up, then timed --repeats times, the three interleaved (each call waits for its result as
numpy); the table gives the median. The issue's aims: the signature adds <= 20 % over the bare forward, and gRPC
adds <= 5 ms at batch 1 (over the signature). The bare path needs the run (--model_dir, or the checkpoint recorded
in the export's assets.extra/export.json); without it that row is left out.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tf_faceedit  # noqa: E402, F401  (first: it chooses TensorFlow's CPU kernels, see tf_faceedit/backend/onednn.py)

# isort: split
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_faceedit.serving.client import GrpcClient, decode_metadata  # noqa: E402
from tf_faceedit.serving.grpc_server import resolve_version_dir, start_server  # noqa: E402


def median_seconds(fns, repeats, warmup):
    """{name: fn} -> {name: median seconds}. The paths are interleaved (one call of each per round), so a change
    in machine load during the run hits them all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def make_inputs(task, batch, size, k, seed=0):
    rng = np.random.RandomState(seed)
    inputs = {
        "image": rng.randint(0, 256, (batch, size, size, 3)).astype(np.uint8),
        "attributes": rng.randint(0, 2, (batch, k)).astype(np.float32),
    }
    if task == "complete":
        mask = np.zeros((batch, size, size, 1), np.uint8)
        for i in range(batch):
            y, x = rng.randint(0, size // 2, 2)
            mask[i, y : y + size // 3, x : x + size // 3] = 255
        inputs["mask"] = mask
    return inputs


def model_dir_of_export(export_dir):
    """The training run an export came from (assets.extra/export.json), or None."""
    info = Path(export_dir) / "assets.extra" / "export.json"
    if not info.is_file():
        return None
    checkpoint = Path(json.loads(info.read_text()).get("checkpoint", ""))
    model_dir = checkpoint.parent.parent
    return model_dir if (model_dir / "config.yaml").is_file() else None


def restore(model_dir):
    """The trainer of a run folder or of a zoo model name (e.g. sagan-eyeglasses-64)."""
    from tf_faceedit import model_source

    return model_source.restore(model_dir).trainer


def bare_forward(model_dir, task, image_size):
    """(trainer.infer compiled with tf.function, fn(uint8 inputs) -> its float inputs at S)."""
    from tf_faceedit.serving import processing

    trainer = restore(model_dir)
    forward = tf.function(lambda x: trainer.infer(x))

    def prepare(inputs):
        out = {
            "image": processing.preprocess_images(tf.constant(inputs["image"]), image_size),
            "attributes": tf.constant(inputs["attributes"]),
        }
        if task == "complete":
            out["mask"] = processing.preprocess_masks(tf.constant(inputs["mask"]), image_size)
        return out

    return forward, prepare


def tflite_runners(model_dir, task, image_size, num_attributes):
    """{"TFLite float32 (interpreter)": runner, "TFLite float16 (interpreter)": runner} of the run's generator."""
    from tf_faceedit.serving import tflite_export, tflite_runtime

    trainer = restore(model_dir)
    flatbuffers = tflite_export.convert(trainer, task, image_size, num_attributes)
    return {
        f"TFLite {precision} (interpreter)": tflite_runtime.make_interpreter(
            data, num_threads=os.cpu_count()
        ).get_signature_runner("serving_default")
        for precision, data in flatbuffers.items()
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model_dir",
        help="training run (config.yaml, checkpoints/): the bare path, and the export when --export_dir is not given",
    )
    parser.add_argument("--export_dir", help="an export version dir EXPORT/NAME/VERSION (or its base dir)")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per row (the median is reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per row (the first one traces)")
    parser.add_argument("--no_tflite", action="store_true", help="leave out the TFLite rows")
    args = parser.parse_args()
    if not args.model_dir and not args.export_dir:
        parser.error("give --model_dir and/or --export_dir")

    tmp = None
    if args.export_dir:
        _, export_dir = resolve_version_dir(args.export_dir)
    else:
        from tf_faceedit.serving.export_lib import export

        tmp = tempfile.TemporaryDirectory(prefix="serving_latency_")
        export_dir = Path(tmp.name) / "model" / "1"
        print(f"exporting {args.model_dir} to {export_dir} ...", file=sys.stderr, flush=True)
        export(args.model_dir, export_dir)

    loaded = tf.saved_model.load(str(export_dir))
    meta = decode_metadata({k: v.numpy() for k, v in loaded.signatures["metadata"]().items()})
    signature = loaded.signatures["serving_default"]
    size, k, task = meta["image_size"], len(meta["attribute_names"]), meta["task"]
    model_dir = args.model_dir or model_dir_of_export(export_dir)
    bare = bare_forward(model_dir, task, size) if model_dir else None
    if bare is None:
        print("no training run found: the bare row is left out (give --model_dir)", file=sys.stderr)
    tflite = tflite_runners(model_dir, task, size, k) if model_dir and not args.no_tflite else {}

    server, port = start_server({"model": export_dir}, port=0)
    client = GrpcClient(f"127.0.0.1:{port}", "model")
    rows = []
    try:
        for batch in args.batch_sizes:
            inputs = make_inputs(task, batch, size, k)
            tensors = {name: tf.constant(value) for name, value in inputs.items()}
            if task == "complete":

                def grpc_call(inputs=inputs):
                    return client.complete(inputs["image"], inputs["mask"], inputs["attributes"])
            else:

                def grpc_call(inputs=inputs):
                    return client.edit(inputs["image"], inputs["attributes"])

            # the three paths must agree before they are timed
            direct = {name: value.numpy() for name, value in signature(**tensors).items()}
            remote = grpc_call()
            for name in direct:
                np.testing.assert_array_equal(remote[name], direct[name], err_msg=f"gRPC output {name}")

            paths = {}
            if bare is not None:
                forward, prepare = bare
                prepared = prepare(inputs)
                paths["bare (tf.function infer)"] = lambda f=forward, p=prepared: [v.numpy() for v in f(p).values()]
            paths["SavedModel signature"] = lambda t=tensors: [v.numpy() for v in signature(**t).values()]
            paths["gRPC round trip (loopback)"] = grpc_call
            for name, runner in tflite.items():
                got = runner(**inputs)  # at S x S the signature and the TFLite model agree (float16: 2 levels)
                for key, value in direct.items():
                    if value.dtype == np.uint8:
                        assert np.abs(got[key].astype(int) - value.astype(int)).max() <= 2, f"{name} output {key}"
                paths[name] = lambda runner=runner, inputs=inputs: runner(**inputs)
            timings = median_seconds(paths, args.repeats, args.warmup)
            for path, seconds in timings.items():
                rows.append((path, batch, seconds))
                print(f"  {path} batch {batch}: {seconds * 1000:.2f} ms", file=sys.stderr, flush=True)
    finally:
        client.close()
        server.stop(0)
        if tmp is not None:
            tmp.cleanup()

    device = tf.config.list_logical_devices("GPU")
    device = device[0].name if device else f"CPU ({os.cpu_count()} cores)"
    print(
        f"\n{meta['method']} ({task}, {size}x{size}, K={k}) from {export_dir} on {device}, TF {tf.__version__}, "
        f"median of {args.repeats}"
    )
    print("| path | batch | ms / batch | ms / image | images / s | vs bare | vs signature |")
    print("|---|---|---|---|---|---|---|")
    by_key = {(path, batch): seconds for path, batch, seconds in rows}
    for path, batch, seconds in rows:
        base = by_key.get(("bare (tf.function infer)", batch))
        sig = by_key.get(("SavedModel signature", batch))
        vs_bare = f"{(seconds / base - 1) * 100:+.0f} %" if base and not path.startswith("bare") else ""
        vs_sig = f"{(seconds - sig) * 1000:+.2f} ms" if path.startswith("gRPC") and sig else ""
        print(
            f"| {path} | {batch} | {seconds * 1000:.2f} | {seconds * 1000 / batch:.2f} | {batch / seconds:.1f} "
            f"| {vs_bare} | {vs_sig} |"
        )
    for batch in args.batch_sizes:
        base, sig = by_key.get(("bare (tf.function infer)", batch)), by_key[("SavedModel signature", batch)]
        grpc_extra = (by_key[("gRPC round trip (loopback)", batch)] - sig) * 1000
        checks = [
            f"gRPC adds {grpc_extra:.2f} ms"
            + (" (aim <= 5 ms: " + ("met" if grpc_extra <= 5 else "MISSED") + ")" if batch == 1 else "")
        ]
        if base:
            overhead = (sig / base - 1) * 100
            checks.insert(0, f"signature adds {overhead:.0f} % (aim <= 20 %: {'met' if overhead <= 20 else 'MISSED'})")
        print(f"batch {batch}: " + "; ".join(checks))


if __name__ == "__main__":
    main()
