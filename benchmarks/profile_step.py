"""Profiles training steps (or a batch-1 forward) of a method with the TensorFlow profiler and prints where the
time goes, by op type and by op: the tool behind issue 17's hot-spot fixes.

    python benchmarks/profile_step.py --method fader --size 64                 # paper-width train iteration
    python benchmarks/profile_step.py --method sagan --size 128 --forward      # the generator, batch 1
    python benchmarks/profile_step.py --method fader --size 64 --set train.mixed_precision=mixed_bfloat16

The networks, widths and data are those of `benchmarks/compare_peers.py` (synthetic batches held in memory). The
trace is written to --logdir (open it with TensorBoard's profile plugin); with the `xprof` package installed
(`pip install xprof`: a profiling aid, not a dependency of the library) the framework op statistics are also
summarised here: self time per op type, and the top ops.
"""

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def op_stats(logdir):
    """[(op type, op name, self time us, occurrences)] of the host ops in the profile, or None without xprof."""
    try:
        from xprof.convert import raw_to_tool_data
    except ImportError:
        return None
    paths = sorted(Path(logdir).rglob("*.xplane.pb"))
    if not paths:
        return []
    data, _ = raw_to_tool_data.xspace_to_tool_data([str(paths[-1])], "framework_op_stats", {})
    tables = json.loads(data) if isinstance(data, (str, bytes)) else data
    table = tables[0] if isinstance(tables, list) else tables
    columns = [c["id"] for c in table["cols"]]
    rows = []
    for row in table["rows"]:
        values = dict(zip(columns, [cell.get("v") for cell in row["c"]]))
        if values.get("host_or_device", "Host") != "Host":
            continue
        rows.append((values["type"], values["operation"], float(values["total_self_time"]), int(values["occurrences"])))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", choices=("sagan", "fader"), default="fader")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--forward", action="store_true", help="profile the batch-1 compiled forward instead")
    parser.add_argument(
        "--frozen", action="store_true", help="with --forward: the weights folded into constants, as tf_faceedit.load"
    )
    parser.add_argument("--steps", type=int, default=3, help="profiled steps (after 2 warm-up steps)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], help="config override, e.g. train.jit_compile=true")
    parser.add_argument("--logdir", default=None, help="where the trace goes (default: a temporary folder)")
    parser.add_argument("--top", type=int, default=20)
    opts = parser.parse_args()

    import tf_faceedit  # noqa: F401  (before TensorFlow: it chooses TensorFlow's CPU kernels, tf_faceedit/backend/onednn.py)

    # isort: split
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(opts.threads)
    tf.config.threading.set_inter_op_parallelism_threads(opts.threads)
    import compare_peers

    from tf_faceedit import registry

    cfg = compare_peers.make_config(opts.method, opts.size, 1 if opts.forward else 16)
    for assignment in opts.set:
        cfg = cfg.override(assignment)
    cfg = cfg.validate()
    trainer = registry.get(opts.method).trainer_class(cfg)
    if opts.forward:
        fn = compare_peers.forward_case(trainer, opts.method, opts.size, compiled=True, freeze=opts.frozen)
    else:
        trainer.compile(optimizers=trainer.make_optimizers())
        trainer.set_phase(trainer.phase_at(0))
        n = cfg.train.batch_size * trainer.batch_multiple
        rng = np.random.RandomState(0)
        batch = {
            "image": tf.constant(rng.uniform(-1, 1, (n, opts.size, opts.size, 3)), tf.float32),
            "attributes": tf.constant(rng.randint(0, 2, (n, len(cfg.data.attributes))), tf.float32),
        }
        trainer.build_trackers(batch)
        trainer.make_train_function()
        train_function = trainer.train_function
        iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())

        def fn():
            return [np.asarray(v) for v in train_function(iterator).values()]

    for _ in range(2):
        fn()
    logdir = opts.logdir or tempfile.mkdtemp(prefix="profile_")
    tf.profiler.experimental.start(logdir)
    start = time.perf_counter()
    for _ in range(opts.steps):
        fn()
    seconds = (time.perf_counter() - start) / opts.steps
    tf.profiler.experimental.stop()
    what = ("frozen " if opts.frozen else "") + "forward, batch 1" if opts.forward else "train iteration, batch 16"
    print(f"{opts.method} {opts.size}² {what}: {seconds * 1000:.1f} ms per call under the profiler; trace in {logdir}")
    rows = op_stats(logdir)
    if rows is None:
        print("(pip install xprof for the op table; or open the trace in TensorBoard)")
        return
    total = sum(r[2] for r in rows) or 1.0
    by_type = defaultdict(float)
    for op_type, _, us, _ in rows:
        by_type[op_type] += us
    print(f"\nself time by op type (host ops, {total / 1000 / opts.steps:.1f} ms per call in all)")
    for op_type, us in sorted(by_type.items(), key=lambda kv: -kv[1])[: opts.top]:
        print(f"  {us / total:6.1%}  {us / 1000 / opts.steps:8.2f} ms  {op_type}")
    print("\ntop ops")
    for op_type, name, us, _ in sorted(rows, key=lambda r: -r[2])[: opts.top]:
        print(f"  {us / total:6.1%}  {us / 1000 / opts.steps:8.2f} ms  {op_type:28s} {name[:90]}")


if __name__ == "__main__":
    main()
