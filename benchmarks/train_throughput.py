"""Train-step and input-pipeline throughput, printed as one table.

    python benchmarks/train_throughput.py --data_dir=../shared/data/celeba-9k-89x109 --sizes 64 128
    python benchmarks/train_throughput.py                      # synthetic faces, generated into a temp folder

For each image size it measures
  * pipeline: images/s of `build_dataset` alone (decode, crop, resize, flip, normalise, batch), cache off, so
    every image is decoded: the rate a first epoch or a dataset too large to cache gets;
  * train step: images/s consumed by `trainer.fit` (one step = n_critic critic updates + one generator update,
    each on `batch_size` images), after warm-up steps that include tracing;
and the ratio pipeline / train step (the pipeline must not be the bottleneck: aim for >= 3).
Widths: `--preset quick` (the sagan_quick preset's widths) or `--preset paper` (sagan_celeba128).

Precision / XLA options (`train.mixed_precision`, `train.jit_compile`), per method:

    python benchmarks/train_throughput.py --options float32 mixed_float16 mixed_bfloat16 xla_off xla_on \
        --methods sagan attentiongan pggan_completion fader icgan classifier --preset tiny

prints s/step, images/s and the speed-up of each option over `float32` (jit_compile=auto) for each method, on the
method's `<method>_quick` preset (`--preset quick`), its CPU recipe `<method>_cpu64` (`--preset cpu64`: the
recipe's size and batch; the time-to-quality table multiplies these by the steps to the target) or the tests' tiny
configs (`--preset tiny`), one batch held in memory, in the method's first phase. A CPU without fast float16
runs mixed_float16 slower; bfloat16 depends on AVX512_BF16/AMX.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tf_faceedit  # noqa: E402, F401  (first: it chooses TensorFlow's CPU kernels, see tf_faceedit/backend/onednn.py)

# isort: split
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_faceedit import configs as presets  # noqa: E402
from tf_faceedit.config import load_yaml  # noqa: E402
from tf_faceedit.data import celeba  # noqa: E402
from tf_faceedit.data.synthetic import make_synthetic_celeba  # noqa: E402
from tf_faceedit.methods.sagan import SaGAN, SaGANConfig  # noqa: E402

PRESETS = {"quick": presets.path("sagan_quick"), "paper": presets.path("sagan_celeba128")}


def make_config(args, size):
    cfg = SaGANConfig().merge_dict(load_yaml(PRESETS[args.preset]))
    for assignment in [
        f"data.data_dir={args.data_dir}",
        f"data.image_size={size}",
        "data.cache=false",
        f"train.batch_size={args.batch_size}",
        "train.verbose=0",
        *args.overrides,
    ]:
        cfg = cfg.override(assignment)
    return cfg.validate()


def pipeline_rate(cfg, batches):
    dataset = celeba.build_dataset(cfg.data, "train", batch_size=cfg.train.batch_size, training=True, seed=0)
    iterator = iter(dataset)
    for _ in range(3):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * cfg.train.batch_size / (time.perf_counter() - start)


class _Timer(keras.callbacks.Callback):
    def __init__(self, warmup):
        super().__init__()
        self.warmup, self.start, self.end, self.count = warmup, None, None, 0

    def on_train_batch_end(self, batch, logs=None):
        self.count += 1
        if self.count == self.warmup:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


def train_rate(cfg, steps, warmup):
    trainer = SaGAN(cfg)
    trainer.compile(optimizers=trainer.make_optimizers())
    images_per_step = cfg.train.batch_size * trainer.batch_multiple
    batch = next(iter(celeba.build_dataset(cfg.data, "train", batch_size=images_per_step, training=True, seed=0)))
    dataset = tf.data.Dataset.from_tensors(batch).repeat()  # one batch in memory: time the step, not the pipeline
    trainer.build_trackers(batch)
    timer = _Timer(warmup)
    trainer.fit(dataset, steps_per_epoch=warmup + steps, epochs=1, callbacks=[timer], verbose=0, shuffle=False)
    seconds = (timer.end - timer.start) / steps
    return images_per_step / seconds, seconds


OPTIONS = {
    "float32": {"train.mixed_precision": "none"},  # explicit: the CPU recipes say `auto`
    "mixed_float16": {"train.mixed_precision": "mixed_float16"},
    "mixed_bfloat16": {"train.mixed_precision": "mixed_bfloat16"},
    "xla_on": {"train.jit_compile": "true"},
    "xla_off": {"train.jit_compile": "false"},
}


def method_config(method, preset, data_dir, size, batch_size, option):
    from tf_faceedit import registry

    if preset == "tiny":
        from tests.model_runs import tiny_config_builder

        cfg = tiny_config_builder(method)(data_dir)
    else:
        spec = registry.get(method)
        cfg = spec.config_class().merge_dict(load_yaml(presets.path(f"{method}_{preset}")))
        cfg = cfg.override(f"data.data_dir={data_dir}")
    assignments = (
        ["data.cache=false", "train.verbose=0"]
        + ([f"data.image_size={size}"] if size else [])
        + ([f"train.batch_size={batch_size}"] if batch_size else [])
    )
    for assignment in assignments + [f"{k}={v}" for k, v in OPTIONS[option].items()]:
        cfg = cfg.override(assignment)
    return cfg.validate()


def method_rate(cfg, steps, warmup):
    """Images/s of `trainer.fit` for any registered method (the first phase; one batch held in memory)."""
    from tf_faceedit import registry
    from tf_faceedit.training import precision

    spec = registry.get(cfg.method)
    keras.utils.set_random_seed(cfg.train.seed)
    with precision.policy_scope(cfg.train.mixed_precision):
        trainer = spec.trainer_class(cfg)
    trainer.compile(optimizers=trainer.make_optimizers())
    trainer.set_phase(trainer.phase_at(0))
    images_per_step = cfg.train.batch_size * trainer.batch_multiple
    records = spec.trainer_class.load_records(cfg.data, "train")
    data = spec.trainer_class.make_dataset(
        cfg.data, "train", batch_size=images_per_step, training=True, seed=0, records=records
    )
    batch = next(iter(data))
    trainer.build_trackers(batch)
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    timer = _Timer(warmup)
    steps = min(steps, max(1, trainer.phases()[0].end_step - warmup))  # stay inside the first phase
    trainer.fit(dataset, steps_per_epoch=warmup + steps, epochs=1, callbacks=[timer], verbose=0, shuffle=False)
    seconds = (timer.end - timer.start) / steps
    return images_per_step / seconds, seconds, bool(trainer.jit_compile)


def compare_options(args):
    rows = []
    for method in args.methods:
        base = None
        for option in args.options:
            cfg = method_config(method, args.preset, args.data_dir, args.option_size, args.option_batch_size, option)
            rate, seconds, jit = method_rate(cfg, args.steps, args.warmup)
            base = rate if base is None else base
            rows.append((method, cfg.data.image_size, cfg.train.batch_size, option, jit, seconds, rate, rate / base))
            print(f"  {method} {option}: {seconds:.3f} s/step", flush=True)
    print(
        f"\nTrain-step throughput by option on {os.cpu_count()} CPU cores, Keras {keras.__version__} "
        f"({keras.backend.backend()}), preset {args.preset}; speed-up vs the first option ({args.options[0]})"
    )
    print("| method | size | batch | option | XLA | s/step | images/s | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for method, size, batch, option, jit, seconds, rate, ratio in rows:
        print(
            f"| {method} | {size} | {batch} | {option} | {'yes' if jit else 'no'} | {seconds:.3f} | {rate:.1f} | "
            f"{ratio:.2f}x |"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", help="CelebA-format folder (default: synthetic faces in a temp folder)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS) + ["tiny", "cpu64"],
        default="quick",
        help="widths; the --options table also takes cpu64 (each method's CPU recipe, its batch and size)",
    )
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5, help="timed train steps per size")
    parser.add_argument("--warmup", type=int, default=2, help="untimed train steps (tracing) per size")
    parser.add_argument("--pipeline_batches", type=int, default=60)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--options",
        nargs="+",
        choices=sorted(OPTIONS),
        help="compare these precision/XLA options instead (the first is the baseline)",
    )
    parser.add_argument("--methods", nargs="+", default=["sagan"], help="methods of the --options table")
    parser.add_argument("--option_size", type=int, help="image size of the --options table (default: preset's)")
    parser.add_argument("--option_batch_size", type=int, help="batch size of the --options table (default: preset's)")
    args = parser.parse_args()
    if not args.data_dir:
        args.data_dir = str(make_synthetic_celeba(Path(tempfile.mkdtemp()) / "faces", num_images=600))
    if args.options:
        if args.preset == "paper":
            parser.error("--options uses --preset quick, cpu64 or tiny")
        return compare_options(args)
    if args.preset in ("tiny", "cpu64"):
        parser.error(f"--preset {args.preset} is for the --options table")

    rows = []
    for size in args.sizes:
        cfg = make_config(args, size)
        pipe = pipeline_rate(cfg, args.pipeline_batches)
        train, seconds = train_rate(cfg, args.steps, args.warmup)
        rows.append((size, args.preset, cfg.train.batch_size, cfg.train.n_critic, seconds, train, pipe, pipe / train))
    print(
        f"\nSaGAN throughput on {os.cpu_count()} CPU cores, Keras {keras.__version__} "
        f"({keras.backend.backend()}), data {args.data_dir}"
    )
    print("| size | preset | batch | n_critic | s/step | train images/s | pipeline images/s | pipeline / train |")
    print("|---|---|---|---|---|---|---|---|")
    for size, preset, batch, n_critic, seconds, train, pipe, ratio in rows:
        print(f"| {size} | {preset} | {batch} | {n_critic} | {seconds:.3f} | {train:.1f} | {pipe:.0f} | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
