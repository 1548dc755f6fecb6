"""Completion forward time of the pggan_completion generator, printed as one markdown table.

    python benchmarks/completion_speed.py                           # 64, 128, 256 at the paper widths
    python benchmarks/completion_speed.py --sizes 1024 --batch_sizes 1 8 --xla   # on a GPU

For each size the generator is built at its final stage with the paper preset's widths
(preset pggan_completion_celeba128: fmap_base 8192, fmap_max 512, i.e. 512 filters up to 32x32, then 256,
128, 64, ...), K = 2 attributes, and random weights (speed does not depend on them). One forward pass = encoder,
attribute bottleneck, decoder and compositing: what `complete()` runs at inference. It is compiled once with
`tf.function` (XLA with --xla), warmed up, then timed over --repeats calls on a fixed batch of random images and
random noise masks; the table reports the median time per batch and per image. The paper reports 0.007 s per
1024x1024 image on a Titan Xp.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tf_faceedit  # noqa: E402, F401  (first: it chooses TensorFlow's CPU kernels, see tf_faceedit/backend/onednn.py)

# isort: split
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_faceedit import configs as presets  # noqa: E402
from tf_faceedit.config import load_yaml  # noqa: E402
from tf_faceedit.methods.pggan_completion import PGGANCompletionGenerator  # noqa: E402

PRESET = presets.path("pggan_completion_celeba128")


def time_forward(generator, size, batch, repeats, warmup, xla):
    rng = np.random.RandomState(0)
    mask = (rng.rand(batch, size, size, 1) > 0.7).astype("float32")
    inputs = {
        "image": tf.constant(rng.uniform(-1, 1, (batch, size, size, 3)).astype("float32") * (1 - mask)),
        "mask": tf.constant(mask),
        "attributes": tf.constant(rng.randint(0, 2, (batch, generator.num_attributes)).astype("float32")),
    }
    forward = tf.function(lambda x: generator(x, training=False)["composited"], jit_compile=xla)
    for _ in range(warmup):
        forward(inputs).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward(inputs).numpy()  # .numpy() waits for the result (also on a GPU)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per row (the median is reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per row (the first one traces)")
    parser.add_argument("--xla", action="store_true", help="compile with XLA (jit_compile=True)")
    args = parser.parse_args()

    model = load_yaml(PRESET)["model"]
    device = tf.config.list_logical_devices("GPU")
    device = device[0].name if device else f"CPU ({os.cpu_count()} cores)"
    rows = []
    for size in args.sizes:
        generator = PGGANCompletionGenerator(
            size,
            model["start_resolution"],
            2,
            model["fmap_base"],
            model["fmap_max"],
            model["norm"],
            model["skip_residual_blocks"],
            model["use_attributes"],
        )
        params = sum(int(np.prod(v.shape)) for v in generator.active_trainable_variables)  # of the final stage
        for batch in args.batch_sizes:
            seconds = time_forward(generator, size, batch, args.repeats, args.warmup, args.xla)
            rows.append((size, params, batch, seconds))
            print(f"  {size}x{size} batch {batch}: {seconds * 1000:.1f} ms", file=sys.stderr, flush=True)
        del generator
        keras.backend.clear_session()

    print(
        f"\npggan_completion generator forward on {device}, Keras {keras.__version__} ({keras.backend.backend()}), "
        f"tf.function{' + XLA' if args.xla else ''}, paper widths, median of {args.repeats}"
    )
    print("| size | G params | batch | ms / batch | ms / image | images / s |")
    print("|---|---|---|---|---|---|")
    for size, params, batch, seconds in rows:
        print(
            f"| {size} | {params / 1e6:.1f} M | {batch} | {seconds * 1000:.1f} | {seconds * 1000 / batch:.1f} | "
            f"{batch / seconds:.1f} |"
        )


if __name__ == "__main__":
    main()
