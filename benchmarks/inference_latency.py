"""Latency of `tf_faceedit.load(model_dir).edit(one_image)` against the compiled forward of the same network.

    python benchmarks/inference_latency.py                                  # a quick-size SaGAN, built in a temp dir
    python benchmarks/inference_latency.py --model_dir runs/sagan_quick     # a training run of yours
    python benchmarks/inference_latency.py --preset sagan_cpu64 --input_sizes 64 218x178 --repeats 50

Without --model_dir, a run of --preset (default sagan_quick: 64², G 16 filters, 3 residual blocks) is written to a
temp folder with one checkpoint of the freshly built networks (no training: the time does not depend on the
weights). One image, batch 1, for each input size (S = the model's size, or HxW), three paths interleaved (one call
of each per round, so a change of machine load hits all alike), after --warmup calls each; the median wall time is
reported, and the median CPU time of this process (steadier than wall time on a machine that other jobs load):
  * forward: the trainer's `infer` in a `tf.function`, on [-1, 1] float inputs at S prepared beforehand (the
    floor: the network alone);
  * load().edit: `tf_faceedit.load(model_dir).edit(image, attributes)`, uint8 [H, W, 3] in, uint8 out, through
    `processing.CompiledInference` (resize, scaling, the forward, resize back; numpy in and out);
  * eager: `processing.run_inference` around `infer` run eagerly (what load() did before it compiled).
The aim (issue 17): load().edit <= 1.2x the forward, after the first call; the edit function is traced once (the
table says how many traces all the calls made).
"""

import argparse
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

AIM = 1.2


def median_seconds(fns, repeats, warmup):
    """{name: fn} -> {name: (median wall seconds, median CPU seconds of this process)}, the paths interleaved."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: ([], []) for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start, cpu = time.perf_counter(), time.process_time()
            fn()
            times[name][0].append(time.perf_counter() - start)
            times[name][1].append(time.process_time() - cpu)
    return {name: (statistics.median(wall), statistics.median(cpu)) for name, (wall, cpu) in times.items()}


def make_run(preset, root):
    """A model_dir of `preset` with one checkpoint of the freshly built (seeded) networks."""
    import keras

    from tf_faceedit import registry
    from tf_faceedit.config import load_yaml
    from tf_faceedit.configs import resolve
    from tf_faceedit.data.synthetic import make_synthetic_celeba
    from tf_faceedit.training import run_dir
    from tf_faceedit.training.checkpoint import CheckpointManager

    values = load_yaml(resolve(preset))
    spec = registry.get(values["method"])
    data_dir = make_synthetic_celeba(root / "faces", num_images=12)
    cfg = spec.config_class().merge_dict(values).override(f"data.data_dir={data_dir}").validate()
    model_dir = run_dir.prepare(cfg, root / "run")
    keras.utils.set_random_seed(cfg.train.seed)
    trainer = spec.trainer_class(cfg)
    trainer.compile(optimizers=trainer.make_optimizers())
    step = 1
    trainer.step.assign(step)
    trainer.set_phase(trainer.phase_of_checkpoint(step))
    CheckpointManager(model_dir / "checkpoints", trainer).save(step, extra_state=trainer.phase_state())
    return model_dir


def parse_size(text, model_size):
    if text.upper() == "S":
        return model_size, model_size
    height, _, width = text.lower().partition("x")
    return int(height), int(width or height)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", help="a training run (default: a --preset run built in a temp folder)")
    parser.add_argument("--preset", default="sagan_quick", help="preset of the built run (an edit method)")
    parser.add_argument(
        "--input_sizes", nargs="+", default=["S", "218x178"], help="input image sizes: S (the model's), N (NxN) or HxW"
    )
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per path (the median is reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per path (the first one traces)")
    parser.add_argument(
        "--engine",
        choices=["auto", "tensorflow", "tflite"],
        default="auto",
        help="load()'s engine (auto: TensorFlow or TFLite, whichever is faster here at batch 1)",
    )
    parser.add_argument("--no_eager", action="store_true", help="leave out the eager row")
    args = parser.parse_args()

    from tf_faceedit.serving import processing

    tmp = None
    model_dir = args.model_dir
    if model_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="inference_latency_")
        print(f"building a {args.preset} run in {tmp.name} ...", file=sys.stderr, flush=True)
        model_dir = make_run(args.preset, Path(tmp.name))
    model = tf_faceedit.load(model_dir, engine=args.engine)
    if model.task != "edit":
        parser.error(f"{model_dir} holds a {model.task!r} model; this benchmark times edit()")
    trainer, size, k = model.trainer, model.image_size, len(model.attribute_names)
    forward = tf.function(trainer.infer)
    rng = np.random.RandomState(0)
    rows = []
    for text in args.input_sizes:
        height, width = parse_size(text, size)
        image = rng.randint(0, 256, (height, width, 3)).astype(np.uint8)
        attributes = rng.randint(0, 2, (k,)).astype(np.float32)
        prepared = {
            "image": processing.preprocess_images(image[None], size),
            "attributes": tf.constant(attributes[None]),
        }
        # the compiled path gives the eager numbers before anything is timed
        out = model.edit(image, attributes)
        eager = processing.run_inference(trainer.infer, "edit", image[None], attributes[None], size, k)
        diff = np.abs(out["image"].astype(int) - eager["image"].numpy()[0].astype(int)).max()
        if diff > 1:
            raise SystemExit(f"compiled and eager edits differ by {diff} levels at {height}x{width}")
        paths = {
            "forward (tf.function infer, float at S)": lambda x=prepared: [v.numpy() for v in forward(x).values()],
            "load().edit (compiled)": lambda im=image, a=attributes: model.edit(im, a),
        }
        if not args.no_eager:
            paths["eager run_inference (before)"] = lambda im=image[None], a=attributes[None]: [
                v.numpy() for v in processing.run_inference(trainer.infer, "edit", im, a, size, k).values()
            ]
        for path, (seconds, cpu) in median_seconds(paths, args.repeats, args.warmup).items():
            rows.append((path, f"{height}x{width}", seconds, cpu))
            print(
                f"  {path} {height}x{width}: {seconds * 1000:.2f} ms (CPU {cpu * 1000:.2f} ms)",
                file=sys.stderr,
                flush=True,
            )
    traces = model._backend.compiled.tracing_count()
    if tmp is not None:
        tmp.cleanup()

    print(
        f"\n{model.method} {size}x{size} (K={k}{', built from ' + args.preset if args.model_dir is None else ''}) on "
        f"{os.cpu_count()} CPU cores, TF {tf.__version__}; batch 1, median of {args.repeats} after {args.warmup} "
        f"warm-up calls; load average {os.getloadavg()[0]:.1f}"
    )
    print("| path | input | wall ms | vs forward | CPU ms | vs forward |")
    print("|---|---|---|---|---|---|")
    base = {}
    for path, shape, seconds, cpu in rows:
        if path.startswith("forward"):
            base[shape] = (seconds, cpu)
        print(
            f"| {path} | {shape} | {seconds * 1000:.2f} | {seconds / base[shape][0]:.2f}x | {cpu * 1000:.2f} | "
            f"{cpu / base[shape][1]:.2f}x |"
        )
    for path, shape, seconds, cpu in rows:
        if path.startswith("load()"):
            ratio = seconds / base[shape][0]
            print(
                f"{shape}: load().edit = {ratio:.2f}x the forward in wall time (aim <= {AIM}x: "
                f"{'met' if ratio <= AIM else 'MISSED'}), {cpu / base[shape][1]:.2f}x in CPU time"
            )
    print(f"traces of the compiled edit function over every call at {len(args.input_sizes)} input size(s): {traces}")


if __name__ == "__main__":
    main()
