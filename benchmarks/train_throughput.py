"""Train-step and input-pipeline throughput, printed as one table.

    python benchmarks/train_throughput.py --data_dir=../shared/data/celeba-9k-89x109 --sizes 64 128
    python benchmarks/train_throughput.py                      # synthetic faces, generated into a temp folder

For each image size it measures
  * pipeline: images/s of `build_dataset` alone (decode, crop, resize, flip, normalise, batch), cache off, so
    every image is decoded: the rate a first epoch or a dataset too large to cache gets;
  * train step: images/s consumed by `trainer.fit` (one step = n_critic critic updates + one generator update,
    each on `batch_size` images), after warm-up steps that include tracing;
and the ratio pipeline / train step (the pipeline must not be the bottleneck: aim for >= 3).
Widths: `--preset quick` (configs/sagan_quick.yaml widths) or `--preset paper` (configs/sagan_celeba128.yaml).
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

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_faceedit.config import load_yaml  # noqa: E402
from tf_faceedit.data import celeba  # noqa: E402
from tf_faceedit.data.synthetic import make_synthetic_celeba  # noqa: E402
from tf_faceedit.methods.sagan import SaGAN, SaGANConfig  # noqa: E402

PRESETS = {"quick": ROOT / "configs" / "sagan_quick.yaml", "paper": ROOT / "configs" / "sagan_celeba128.yaml"}


def make_config(args, size):
    cfg = SaGANConfig().merge_dict(load_yaml(PRESETS[args.preset]))
    for assignment in [f"data.data_dir={args.data_dir}", f"data.image_size={size}", "data.cache=false",
                       f"train.batch_size={args.batch_size}", "train.verbose=0", *args.overrides]:
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", help="CelebA-format folder (default: synthetic faces in a temp folder)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5, help="timed train steps per size")
    parser.add_argument("--warmup", type=int, default=2, help="untimed train steps (tracing) per size")
    parser.add_argument("--pipeline_batches", type=int, default=60)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    if not args.data_dir:
        args.data_dir = str(make_synthetic_celeba(Path(tempfile.mkdtemp()) / "faces", num_images=600))

    rows = []
    for size in args.sizes:
        cfg = make_config(args, size)
        pipe = pipeline_rate(cfg, args.pipeline_batches)
        train, seconds = train_rate(cfg, args.steps, args.warmup)
        rows.append((size, args.preset, cfg.train.batch_size, cfg.train.n_critic, seconds, train, pipe, pipe / train))
    print(f"\nSaGAN throughput on {os.cpu_count()} CPU cores, Keras {keras.__version__} "
          f"({keras.backend.backend()}), data {args.data_dir}")
    print("| size | preset | batch | n_critic | s/step | train images/s | pipeline images/s | pipeline / train |")
    print("|---|---|---|---|---|---|---|---|")
    for size, preset, batch, n_critic, seconds, train, pipe, ratio in rows:
        print(f"| {size} | {preset} | {batch} | {n_critic} | {seconds:.3f} | {train:.1f} | {pipe:.0f} | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
