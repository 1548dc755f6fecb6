"""Training throughput of every method's paper preset on the Keras JAX backend, without TensorFlow (issue 36).

    KERAS_BACKEND=jax python benchmarks/gpu_run.py --data_dir .gpu_data/celeba-100-178x218 --out OUT
    benchmarks/gpu_run.sh                                   # the same, on the lent GPU machine (docs/jax.md)

For each registered method with a paper preset (`configs/<method>_celeba*.yaml`; the 128 one where there are several),
one child
process (so that each method's peak memory is its own) trains the preset at `--size` (128) on the folder's images
for `--warmup` untimed steps (the compilation) and then `--steps` timed ones, through `trainer.fit` on the numpy input
pipeline (decoding included, as in a real run), and reports:
  * images/s: training images per second over the timed steps (a step reads batch_size x batch_multiple images,
    e.g. SaGAN's 3 critic batches); the median step time;
  * peak memory: the accelerator's `peak_bytes_in_use` (JAX's allocator statistics), or the process's peak RSS
    where the device reports none (CPU);
  * a sample grid (`samples.png`: every method's `sample_rows` on a fixed batch, one block per method).
`gpu_run.json` holds every number, the device, the versions and the settings: the file to commit (docs/RESULTS.md
quotes it). `import tensorflow` is blocked in the children: the run proves the JAX path needs no TensorFlow.

Settings kept from the presets: widths, losses, batch size, optimizers, precision (`--set` adds overrides to every
method, e.g. `--set train.mixed_precision=mixed_bfloat16`). Changed for a short timed run, by config field (no
method is named here): `data.image_size` = --size; every trainer trains its last phase (a progressive model,
`model.start_resolution` = size / 2: the fade-in stage to the final resolution, the full network; a single stage at
the final size leaves its fade-in layers unbuilt, which Keras' JAX fit refuses); a VGG feature loss uses random
weights (`loss.vgg_weights=random`: the same FLOPs, no download); a phased trainer (`train.phase`) times its first
phase ("cgan"); samples come from the train split (the folder's partition marks every image train).

`--budget_s` (default 540) stops starting methods once that much wall time is spent (the lent machine gives one
command 10 minutes); a method cut off or failing is recorded as such in the JSON, and the others still run.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def presets():
    """{method: preset name} of the registered methods that have a `configs/<method>_celeba*.yaml` (one whose name
    says 128 where there are several, else the first by name)."""
    from tf_faceedit import registry

    out = {}
    for method in sorted(registry.names()):
        found = sorted((ROOT / "configs").glob(f"{method}_celeba*.yaml"), key=lambda p: ("128" not in p.stem, p.stem))
        if found:
            out[method] = found[0].stem
    return out


def make_config(method, preset, data_dir, size, steps, extra=()):
    from tf_faceedit import registry

    cfg = registry.get(method).config_class().merge_yaml(preset)
    overrides = [
        f"data.data_dir={data_dir}",
        f"data.image_size={size}",
        "data.cache=false",
        f"train.steps={steps}",
        "train.verbose=0",
        "train.sample_split=train",
    ]
    if hasattr(cfg.model, "start_resolution"):  # two stages; the child trains the last (`trainer.phases()[-1]`)
        overrides.append(f"model.start_resolution={size // 2}")
    if hasattr(cfg.loss, "vgg_weights"):
        overrides.append("loss.vgg_weights=random")
    if hasattr(cfg.train, "phase"):
        overrides.append("train.phase=cgan")
    for assignment in [*overrides, *extra]:
        cfg = cfg.override(assignment)
    return cfg.validate()


class _NoTensorFlow:
    """A meta-path finder under which `import tensorflow` fails as on a machine without it. (Not
    `sys.modules["tensorflow"] = None`: Keras reads `"tensorflow" in sys.modules` as "TensorFlow is loaded" and then
    imports it, e.g. in its preprocessing layers, which a machine without TensorFlow never does.)"""

    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError(f"No module named {name!r} (blocked: benchmarks/gpu_run.py runs without TensorFlow)")
        return None


def _block_tensorflow():
    if any(name == "tensorflow" or name.startswith("tensorflow.") for name in sys.modules):
        raise RuntimeError("tensorflow was imported before the block")
    sys.meta_path.insert(0, _NoTensorFlow())


def peak_memory():
    """(bytes, what): the first device's peak allocation, else this process's peak RSS."""
    import jax

    stats = jax.local_devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return int(stats["peak_bytes_in_use"]), "device peak_bytes_in_use"
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024, "process peak RSS"


def child(method, preset, opts):
    """Trains one method, prints one RESULT line; writes its grid to opts.out/grid_<method>.png."""
    _block_tensorflow()
    import cv2
    import jax
    import keras
    import numpy as np

    from tf_faceedit import registry
    from tf_faceedit.data import celeba
    from tf_faceedit.training import callbacks as cb
    from tf_faceedit.training import driver, precision

    if keras.backend.backend() != "jax":
        raise SystemExit("run with KERAS_BACKEND=jax (benchmarks/gpu_run.sh sets it)")
    start = time.perf_counter()
    cfg = make_config(method, preset, opts.data_dir, opts.size, opts.warmup + opts.steps, opts.set)
    trainer_class = registry.get(method).trainer_class
    records = trainer_class.load_records(cfg.data, "train")
    keras.utils.set_random_seed(cfg.train.seed)
    with precision.policy_scope(cfg.train.mixed_precision):
        trainer = trainer_class(cfg)
    trainer.compile(optimizers=trainer.make_optimizers())
    trainer.set_phase(trainer.phases()[-1])  # a progressive model's last stage: the full network at --size
    n_sample = min(cfg.train.num_samples, len(records))
    sample = celeba.first_batch(
        driver.make_dataset(
            trainer_class, cfg.data, "train", batch_size=n_sample, training=False, seed=0, repeat=False, records=records
        ),
        records,
    )
    sample = {key: keras.ops.convert_to_tensor(value) for key, value in sample.items()}
    trainer.build_trackers(sample)
    images_per_step = cfg.train.batch_size * trainer.batch_multiple
    dataset = driver.make_dataset(
        trainer_class,
        cfg.data,
        "train",
        batch_size=images_per_step,
        training=True,
        seed=cfg.train.seed,
        records=records,
        for_fit=True,
    )

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times, self.seen, self.logs = [], 0, {}

        def on_train_batch_begin(self, batch, logs=None):
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.logs = {key: float(np.asarray(value)) for key, value in (logs or {}).items()}  # waits for the step
            self.seen += 1
            if self.seen > opts.warmup:
                self.times.append(time.perf_counter() - self.t0)

    timer = StepTimer()
    setup_s = time.perf_counter() - start
    trainer.fit(dataset, steps_per_epoch=opts.warmup + opts.steps, epochs=1, callbacks=[timer], verbose=0)
    grid = cb.make_grid(trainer.sample_rows(sample))
    out = Path(opts.out)
    cv2.imwrite(str(out / f"grid_{method}.png"), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    seconds = sum(timer.times)
    memory, memory_kind = peak_memory()
    device = jax.local_devices()[0]
    result = {
        "method": method,
        "preset": preset,
        "image_size": opts.size,
        "batch_size": cfg.train.batch_size,
        "images_per_step": images_per_step,
        "mixed_precision": cfg.train.mixed_precision,
        "warmup_steps": opts.warmup,
        "timed_steps": len(timer.times),
        "images_per_s": images_per_step * len(timer.times) / seconds if seconds else None,
        "step_s_median": statistics.median(timer.times) if timer.times else None,
        "step_s_min": min(timer.times) if timer.times else None,
        "setup_s": setup_s,
        "wall_s": time.perf_counter() - start,
        "peak_memory_bytes": memory,
        "peak_memory_kind": memory_kind,
        "final_logs": timer.logs,
        "finite": all(np.isfinite(v) for v in timer.logs.values()),
        "device": f"{device.platform}: {getattr(device, 'device_kind', device)}",
        "tensorflow_imported": "tensorflow" in sys.modules,
        "jax": jax.__version__,
        "keras": keras.__version__,
        "overrides": list(opts.set),
    }
    print("RESULT " + json.dumps(result), flush=True)


def stack_grids(paths, out_path):
    """One PNG of the methods' grids one above the other (padded to the widest), or None without any."""
    import cv2
    import numpy as np

    grids = []
    for path in paths:
        grid = cv2.imread(str(path)) if Path(path).is_file() else None
        if grid is not None:  # a banner with the method's name above its block
            banner = np.full((24, grid.shape[1], 3), 255, np.uint8)
            cv2.putText(banner, Path(path).stem[len("grid_") :], (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1)
            grids.append(np.concatenate([banner, grid], axis=0))
    if not grids:
        return None
    width = max(g.shape[1] for g in grids)
    padded = [np.pad(g, ((0, 8), (0, width - g.shape[1]), (0, 0)), constant_values=255) for g in grids]
    cv2.imwrite(str(out_path), np.concatenate(padded, axis=0))
    return out_path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=str(ROOT / ".gpu_data" / "celeba-100-178x218"))
    parser.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "gpu_run_out"))
    parser.add_argument("--size", type=int, default=128, help="image side (128: the issue's setting)")
    parser.add_argument("--steps", type=int, default=50, help="timed training steps per method")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation)")
    parser.add_argument("--methods", default="", help="comma list (default: every method with a paper preset)")
    parser.add_argument("--budget_s", type=float, default=540.0, help="start no method after this many seconds")
    parser.add_argument("--timeout_s", type=float, default=300.0, help="one method's limit")
    parser.add_argument("--set", action="append", default=[], help="config override for every method (repeatable)")
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "PRESET"), help=argparse.SUPPRESS)
    opts = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if opts.child:
        return child(*opts.child, opts)

    if not (Path(opts.data_dir) / "list_attr_celeba.txt").is_file():
        parser.error(f"--data_dir {opts.data_dir} is no CelebA-format folder (list_attr_celeba.txt missing)")
    Path(opts.out).mkdir(parents=True, exist_ok=True)
    table = presets()
    wanted = [m for m in opts.methods.split(",") if m] or list(table)
    unknown = [m for m in wanted if m not in table]
    if unknown:
        parser.error(f"--methods {unknown[0]!r} has no paper preset; methods: {', '.join(table)}")
    env = dict(
        os.environ, KERAS_BACKEND="jax", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    started, results = time.perf_counter(), []
    print(f"# gpu_run: {len(wanted)} methods at {opts.size}², {opts.warmup} + {opts.steps} steps, {opts.data_dir}")
    for method in wanted:
        if time.perf_counter() - started > opts.budget_s:
            results.append(
                {"method": method, "preset": table[method], "skipped": f"budget of {opts.budget_s:g} s spent"}
            )
            print(f"{method}: skipped (budget spent)", flush=True)
            continue
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", method, table[method]]
        cmd += ["--data_dir", opts.data_dir, "--out", opts.out, "--size", str(opts.size)]
        cmd += ["--steps", str(opts.steps), "--warmup", str(opts.warmup)]
        cmd += [flag for assignment in opts.set for flag in ("--set", assignment)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=opts.timeout_s)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
            if proc.returncode or not lines:
                tail = (proc.stderr or proc.stdout)[-1500:]
                result = {"method": method, "preset": table[method], "failed": f"rc={proc.returncode}: {tail}"}
            else:
                result = json.loads(lines[-1][len("RESULT ") :])
        except subprocess.TimeoutExpired:
            result = {"method": method, "preset": table[method], "failed": f"timed out after {opts.timeout_s:g} s"}
        results.append(result)
        if "failed" in result:
            print(f"{method}: FAILED {result['failed'][-600:]}", flush=True)
        else:
            print(
                f"{method} ({result['preset']}): {result['images_per_s']:.1f} images/s, median step "
                f"{1000 * result['step_s_median']:.1f} ms, peak memory {result['peak_memory_bytes'] / 2**30:.2f} GiB "
                f"({result['peak_memory_kind']}), setup {result['setup_s']:.0f} s, {result['device']}",
                flush=True,
            )
    grids = [Path(opts.out) / f"grid_{r['method']}.png" for r in results if "images_per_s" in r]
    samples = stack_grids(grids, Path(opts.out) / "samples.png")
    for path in grids:
        path.unlink(missing_ok=True)  # the stacked PNG holds them (the lent machine returns at most 8 files)
    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{platform.node()} {platform.machine()}",
        "settings": {"size": opts.size, "steps": opts.steps, "warmup": opts.warmup, "set": opts.set},
        "data_dir": str(opts.data_dir),
        "wall_s": time.perf_counter() - started,
        "samples": None if samples is None else str(samples),
        "results": results,
    }
    path = Path(opts.out) / "gpu_run.json"
    path.write_text(json.dumps(summary, indent=1))
    print(f"\nwrote {path}" + (f" and {samples}" if samples else ""))
    print("\n| method | preset | images/s | median step | peak memory |")
    print("|---|---|---|---|---|")
    for r in results:
        if "images_per_s" in r:
            print(
                f"| {r['method']} | {r['preset']} | {r['images_per_s']:.1f} | {1000 * r['step_s_median']:.1f} ms | "
                f"{r['peak_memory_bytes'] / 2**30:.2f} GiB |"
            )
        else:
            print(f"| {r['method']} | {r['preset']} | {r.get('failed', r.get('skipped'))[:60]} | - | - |")
    return 0 if all("images_per_s" in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
