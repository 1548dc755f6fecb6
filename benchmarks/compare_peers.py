"""Our SaGAN and Fader timed exactly as the PyTorch reference implementations are, and the ratio table.

    python benchmarks/compare_peers.py                                   # ours only
    python benchmarks/compare_peers.py --torch_python /tmp/torchenv/bin/python --peers_dir /tmp/peers
    python benchmarks/compare_peers.py --only sagan/train_iter/64 --min_time 1      # a quick subset
    python benchmarks/compare_peers.py --peers_json /tmp/peers.json      # reference times of an earlier driver run

The reference side is the driver `../shared/bench/peers/bench_peers.py` (see its README.md: the two checkouts at
pinned commits and the torch venv; `--peers_driver` to give another path). It is run, never copied: nothing of
the reference code is in this repository. With --torch_python and --peers_dir, each case runs ours and then the
driver's same case, one after the other, so a change in machine load hits both alike.

Cases (each in its own process, --threads intra- and inter-op threads, 1 warm-up then >= --min_iters iterations
and >= --min_time seconds, at most --max_iters; the median), as the driver defines them:
  * train_iter, batch 16, synthetic data held in memory (no input pipeline timed), through `trainer.fit`:
    SaGAN: 3 WGAN-GP critic updates, each on its own batch of 16, + 1 generator update (edit, cycle and identity
    passes), paper widths (G 32 first filters, 4 residual blocks; D 32..1024), Adam 2e-4 (0.5, 0.999).
    (Our generator update reuses the first critic batch: the same work, 48 images drawn where the reference
    draws 64; images/iter counts 64 like the driver.)
    Fader: 1 latent-discriminator update + 1 autoencoder update, encoder 32..512 filters, latent 2x2x512, latent
    discriminator FC 512, Adam 2e-4, global gradient-norm clip 5.
  * gen_forward / ae_forward, batch 1: the SaGAN generator / Fader autoencoder in a `tf.function`
    (training=False); the reference runs its network eagerly under torch.no_grad();
    `--inference frozen`: the function with its weights folded into constants, what `tf_faceedit.load` runs;
    `--inference frozen_bfloat16`: that, with the network built under Keras' mixed_bfloat16 policy, what
    `tf_faceedit.load(precision="bfloat16")` runs (the reference stays float32);
    `--inference tflite`: the network in the TFLite interpreter (`serving.tflite_runtime.TFLiteNetwork`, XNNPACK,
    float32, `--threads` threads), what `tf_faceedit.load` runs at batch sizes <= 4 where it is faster than frozen
    (its default engine="auto" times both);
  * *_forward_eager, batch 1: the same network called eagerly (a plain Keras call), compared with the same
    reference forward.
float32, the configs' default `train.jit_compile` (auto). Ratio = ours / reference time (< 1: ours is faster);
the targets of issue 17: train <= 0.77, compiled forward <= 0.7. `--json FILE` writes our results in the
driver's `--compare` schema.

Like for like (issue 36): our SaGAN runs with the reference's critic depth at every size (`model.d_layers=6`: at 64^2
the reference keeps its 512->1024 layer and a 1x1 last map). The table prints both sides' parameter counts and model
FLOPs per iteration (`benchmarks/flops.py` says how they are counted: ours from the built Keras models, the
reference's from its architecture); a case whose two differ by more than 1% is flagged, and
`tests/benchmarks/test_flops.py` fails on it. `--counts` prints only that comparison (no timing, no torch).

Roofline: before the cases, a child process measures this machine's float32 and bfloat16 matmul peak with the same
threads (`benchmarks/roofline.py`, `--peak_n`, `--no_peak` to skip); each case's model FLOPs per median iteration
are shown as a rate and as a share of the float32 peak (and of the bfloat16 peak, the ceiling of a bfloat16 run).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import flops, roofline  # noqa: E402 - after the checkout is on the path

DEFAULT_DRIVER = ROOT.parent / "shared" / "bench" / "peers" / "bench_peers.py"

# (method, case, image size, batch); the default run, in the driver's order, plus the eager call of issue 17
CASES = [
    ("sagan", "train_iter", 64, 16),
    ("sagan", "train_iter", 128, 16),
    ("sagan", "gen_forward", 64, 1),
    ("sagan", "gen_forward", 128, 1),
    ("sagan", "gen_forward_eager", 64, 1),
    ("fader", "train_iter", 64, 16),
    ("fader", "train_iter", 128, 16),
    ("fader", "ae_forward", 64, 1),
    ("fader", "ae_forward", 128, 1),
]
EXTRA_CASES = [  # selectable with --only
    ("sagan", "gen_forward_eager", 128, 1),
    ("fader", "ae_forward_eager", 64, 1),
    ("fader", "ae_forward_eager", 128, 1),
]
TARGETS = {"train_iter": 0.77, "gen_forward": 0.7, "ae_forward": 0.7}
LIKE_FOR_LIKE_TOLERANCE = 0.01  # parameters and FLOPs of ours vs the reference, per network and per case


def reference_case(case):
    """Our case name -> the driver's (the eager call is compared with the reference's forward)."""
    return case[: -len("_eager")] if case.endswith("_eager") else case


def case_key(method, case, size, batch):
    return f"{method}/{case}/{size}/b{batch}"


# ---------------------------------------------------------------------------------------------------------------
# One case (child process)


def time_it(fn, warmup, min_iters, min_time, max_iters):
    """The driver's rule: `warmup` untimed calls, then calls until >= min_iters and >= min_time s (or max_iters)."""
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= max_iters or (len(times) >= min_iters and time.perf_counter() - start >= min_time):
            return times


def make_config(method, size, batch, extra=()):
    from tf_faceedit import registry

    spec = registry.get(method)
    cfg = spec.config_class()
    if method == "sagan":
        cfg = cfg.merge_yaml("sagan_celeba128")  # paper widths: G 32 filters, 4 residual blocks, D 32..1024
        overrides = [
            "data.attributes=[Eyeglasses]",
            "train.n_critic=3",
            "model.g_filters=32",
            "model.num_residual_blocks=4",
            "model.d_filters=32",
            "model.d_max_filters=1024",
            "model.d_layers=6",  # the reference critic's 6 stride-2 convs at every size (64^2: its 512->1024 layer)
        ]
    else:
        overrides = [
            "data.attributes=[Smiling]",
            "model.encoder_filters=32",
            "model.max_filters=512",
            "model.lat_dis_fc=512",
            "loss.clip_grad_norm=5.0",
            "train.g_lr=2e-4",
            "train.d_lr=2e-4",
        ]
    overrides += [
        "data.data_dir=synthetic-in-memory",
        f"data.image_size={size}",
        "data.cache=false",
        f"train.batch_size={batch}",
        "train.mixed_precision=none",
        "train.verbose=0",
        *extra,
    ]
    for assignment in overrides:
        cfg = cfg.override(assignment)
    return cfg.validate()


def train_case(trainer, cfg, opts):
    """(times of one fit step each, images per iteration as the driver counts them)."""
    import keras
    import numpy as np
    import tensorflow as tf

    trainer.compile(optimizers=trainer.make_optimizers())
    trainer.set_phase(trainer.phase_at(0))
    n = cfg.train.batch_size * trainer.batch_multiple
    rng = np.random.RandomState(0)
    batch = {
        "image": tf.constant(rng.uniform(-1, 1, (n, cfg.data.image_size, cfg.data.image_size, 3)), tf.float32),
        "attributes": tf.constant(rng.randint(0, 2, (n, len(cfg.data.attributes))), tf.float32),
    }
    trainer.build_trackers(batch)
    dataset = tf.data.Dataset.from_tensors(batch).repeat()

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.warm, self.times, self.start = 0, [], None

        def on_train_batch_begin(self, batch, logs=None):
            self.begin, self.t0 = batch, time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            [np.asarray(value) for value in (logs or {}).values()]  # wait for the step's results
            seconds, steps = time.perf_counter() - self.t0, batch - self.begin + 1
            if self.warm < opts.warmup:
                self.warm += steps
                return
            self.start = self.start or self.t0
            self.times += [seconds / steps] * steps
            if len(self.times) >= opts.max_iters or (
                len(self.times) >= opts.min_iters and time.perf_counter() - self.start >= opts.min_time
            ):
                self.model.stop_training = True

    timer = StepTimer()
    trainer.fit(
        dataset, steps_per_epoch=opts.warmup + opts.max_iters, epochs=1, callbacks=[timer], verbose=0, shuffle=False
    )
    updates_per_iter = sum(update.repeat for update in trainer.updates())  # SaGAN 3 + 1, Fader 1 + 1
    return timer.times, cfg.train.batch_size * updates_per_iter


def forward_case(trainer, method, size, compiled, freeze=False):
    """A call of the batch-1 forward: eager, a `tf.function`, or (freeze) the `tf.function` with its variables
    folded into constants, as `tf_faceedit.load` runs it (`processing.CompiledInference(freeze=True)`)."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.RandomState(0)
    inputs = {
        "image": tf.constant(rng.uniform(-1, 1, (1, size, size, 3)), tf.float32),
        "attributes": tf.constant(rng.randint(0, 2, (1, 1)), tf.float32),
    }
    network = trainer.generator if method == "sagan" else trainer.autoencoder

    def call(x):
        return network(x, training=False)

    run = tf.function(call) if compiled else call
    if freeze == "tflite":
        from tf_faceedit.serving import tflite_runtime

        specs = {key: tf.TensorSpec([None, *value.shape[1:]], value.dtype) for key, value in inputs.items()}

        def named(x):
            out = call(x)
            return dict(out) if isinstance(out, dict) else {f"out{i}": v for i, v in enumerate(tf.nest.flatten(out))}

        network = tflite_runtime.TFLiteNetwork(named, specs)
        arrays = {key: value.numpy() for key, value in inputs.items()}

        def fn():
            return list(network(arrays).values())

        return fn
    if freeze:
        from tf_faceedit.serving import processing

        signature = [tf.TensorSpec(value.shape, value.dtype, name=key) for key, value in inputs.items()]
        graph = tf.function(lambda image, attributes: call({"image": image, "attributes": attributes}))
        frozen = processing._frozen(tf.function(graph, input_signature=signature))

        def run(x):
            return frozen(x["image"], x["attributes"])

    def fn():
        return [value.numpy() for value in tf.nest.flatten(run(inputs))]

    return fn


def child(spec, opts):
    import resource

    from tf_faceedit.backend import onednn  # before TensorFlow: it chooses TensorFlow's CPU kernels

    # isort: split
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(opts.threads)
    tf.config.threading.set_inter_op_parallelism_threads(opts.threads)
    import keras

    from tf_faceedit import registry

    method, case, size, batch = spec.split(":")
    size, batch = int(size), int(batch)
    keras.utils.set_random_seed(0)
    from tf_faceedit.training import precision

    cfg = make_config(method, size, batch, opts.set)
    forward_bfloat16 = case != "train_iter" and opts.inference == "frozen_bfloat16"
    # training: the config's train.mixed_precision (float32 unless --set changes it), as the driver builds it;
    # forwards: as load(precision=...) builds them
    policy = cfg.train.mixed_precision if case == "train_iter" else ("mixed_bfloat16" if forward_bfloat16 else "none")
    with precision.policy_scope(policy):
        trainer = registry.get(method).trainer_class(cfg)
    if case == "train_iter":
        times, images = train_case(trainer, cfg, opts)
    else:
        eager = case.endswith("_eager")
        freeze = "tflite" if opts.inference == "tflite" else opts.inference != "function"
        fn = forward_case(trainer, method, size, compiled=not eager, freeze=not eager and freeze)
        times, images = time_it(fn, opts.warmup, opts.min_iters, opts.min_time, opts.max_iters), batch
    networks = flops.our_networks(trainer, method, size)  # after the timing: an eager batch-1 call of each network
    median = statistics.median(times)
    result = {
        "method": method,
        "case": case,
        "img_size": size,
        "batch": batch,
        "iters": len(times),
        "warmup": opts.warmup,
        "sec_min": min(times),
        "sec_median": median,
        "sec_all": times,
        "images_per_iter": images,
        "img_per_s_median": images / median,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "threads": opts.threads,
        "params": flops.case_params(method, networks),
        "networks": networks,
        "model_flops_per_iter": flops.case_flops(method, case, networks, batch),
        "jit_compile": str(getattr(trainer, "jit_compile", cfg.train.jit_compile)),
        "inference": None if case == "train_iter" or case.endswith("_eager") else opts.inference,
        "overrides": list(opts.set),
        "dtype_policy": precision.policy_name(policy),
        "onednn": onednn.describe(),
    }
    print("RESULT " + json.dumps(result), flush=True)


def peak_child(opts):
    """The matmul peaks with the cases' thread settings, as one PEAK line (`roofline.measure_peaks`)."""
    from tf_faceedit.backend import onednn  # noqa: F401 - before TensorFlow: it chooses TensorFlow's CPU kernels

    # isort: split
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(opts.threads)
    tf.config.threading.set_inter_op_parallelism_threads(opts.threads)
    peaks = roofline.measure_peaks(n=opts.peak_n, min_time=min(opts.min_time, 5.0))
    print("PEAK " + json.dumps({"n": opts.peak_n, "threads": opts.threads, **peaks}), flush=True)


def network_counts(method, size, batch=16, extra=()):
    """(ours, reference): {network: {"params", "flops"}} of the compared networks of a case's method and size, ours
    from the trainer `make_config` builds (no timing, no torch), the reference's from `flops.reference_networks`."""
    import keras

    from tf_faceedit import registry

    keras.utils.set_random_seed(0)
    trainer = registry.get(method).trainer_class(make_config(method, size, batch, extra))
    return flops.our_networks(trainer, method, size), flops.reference_networks(method, size)


def like_for_like(case, ours, reference):
    """[(what, ours, reference, relative difference)] of a case: every network's parameters and forward FLOPs the
    two sides share, and the case's model FLOPs per iteration."""
    method, name, _, batch = case
    rows = []
    for network in sorted(set(ours) & set(reference)):
        for key in ("params", "flops"):
            a, b = ours[network][key], reference[network][key]
            rows.append((f"{network} {key}", a, b, flops.relative_difference(a, b)))
    a, b = flops.case_flops(method, name, ours, batch), flops.case_flops(method, name, reference, batch)
    rows.append(("FLOPs/iter", a, b, flops.relative_difference(a, b)))
    return rows


def print_counts(cases, extra=()):
    """The like-for-like table of `cases` (params and FLOPs, ours vs reference); returns the rows over tolerance."""
    print("| case | what | tf_faceedit | reference | difference |")
    print("|---|---|---|---|---|")
    built, bad = {}, []
    for case in cases:
        method, name, size, batch = case
        if (method, size) not in built:
            built[(method, size)] = network_counts(method, size, extra=extra)
        for what, a, b, diff in like_for_like(case, *built[(method, size)]):
            flag = "" if diff <= LIKE_FOR_LIKE_TOLERANCE else " **over 1%**"
            print(f"| {method} {name} {size}² b{batch} | {what} | {a:,} | {b:,} | {100 * diff:.2f}%{flag} |")
            if flag:
                bad.append((case, what, a, b))
    return bad


# ---------------------------------------------------------------------------------------------------------------
# Parent: run the cases, and the driver's


def busy_seconds():
    """Non-idle CPU seconds of the whole machine so far (/proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            values = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    return (sum(values[:8]) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def wait_idle(max_wait, need=3):
    """Waits (up to max_wait s) for `need` 2-s samples in a row with the machine < 10 % busy; returns the last."""
    start, calm = time.time(), 0
    while True:
        before = busy_seconds()
        time.sleep(2.0)
        after = busy_seconds()
        if before is None or after is None:
            return None
        busy = (after - before) / (2.0 * os.cpu_count())
        calm = calm + 1 if busy <= 0.10 else 0
        if calm >= need or time.time() - start >= max_wait:
            return busy
        time.sleep(3.0)


def run_measured(cmd, env=None):
    """(completed process, other processes' share of the machine while it ran or None)."""
    import resource

    before, usage = busy_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall, after = time.time() - start, busy_seconds()
    usage2 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (usage2.ru_utime - usage.ru_utime) + (usage2.ru_stime - usage.ru_stime)
    other = None
    if before is not None and after is not None and wall > 0:
        other = max(0.0, (after - before) - own) / (wall * os.cpu_count())
    return proc, other


def timing_flags(opts, style):
    names = {
        "threads": opts.threads,
        "warmup": opts.warmup,
        "min_iters": opts.min_iters,
        "min_time": opts.min_time,
        "max_iters": opts.max_iters,
    }
    flags = []
    for name, value in names.items():
        flags += [f"--{name}" if style == "ours" else f"--{name.replace('_', '-')}", str(value)]
    return flags


def run_ours(case, opts):
    if opts.wait_idle:
        wait_idle(opts.wait_idle)
    spec = ":".join(str(part) for part in case)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    proc, other = run_measured(
        [
            sys.executable,
            os.path.abspath(__file__),
            "--child",
            spec,
            "--inference",
            opts.inference,
            *[flag for assignment in opts.set for flag in ("--set", assignment)],
            *timing_flags(opts, "ours"),
        ],
        env,
    )
    results = [json.loads(line[len("RESULT ") :]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not results:
        print(
            f"\n## ours {spec} FAILED (rc={proc.returncode})\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}", flush=True
        )
        return None
    results[0]["other_load_frac"] = other
    return results[0]


def run_peak(opts):
    """{"float32": FLOP/s, "bfloat16": FLOP/s} from a child process, or {} when it fails."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    cmd = [sys.executable, os.path.abspath(__file__), "--peak_child", "--peak_n", str(opts.peak_n)]
    proc, other = run_measured(cmd + timing_flags(opts, "ours"), env)
    lines = [json.loads(line[len("PEAK ") :]) for line in proc.stdout.splitlines() if line.startswith("PEAK ")]
    if proc.returncode != 0 or not lines:
        print(f"\n## matmul peak FAILED (rc={proc.returncode})\n{proc.stderr[-2000:]}", flush=True)
        return {}
    peaks = {**lines[0], "other_load_frac": other}
    print(
        f"matmul peak ({peaks['n']}^3, {peaks['threads']} threads): float32 {roofline.fmt_rate(peaks.get('float32'))},"
        f" bfloat16 {roofline.fmt_rate(peaks.get('bfloat16'))}",
        flush=True,
    )
    return peaks


def run_reference(case, opts):
    method, name, size, _ = case
    with tempfile.TemporaryDirectory(prefix="peers_") as tmp:
        out = Path(tmp) / "peer.json"
        cmd = [
            opts.torch_python,
            str(opts.peers_driver),
            "--only",
            f"{method}/{reference_case(name)}/{size}",
            "--json",
            str(out),
            "--retries",
            str(opts.retries),
            "--wait-idle",
            str(opts.wait_idle),
            *timing_flags(opts, "driver"),
        ]
        proc, other = run_measured(cmd, dict(os.environ, PEERS_DIR=str(opts.peers_dir)))
        results = json.loads(out.read_text()) if out.is_file() else []
    if proc.returncode != 0 or not results:
        print(
            f"\n## reference {method}/{name}/{size} FAILED (rc={proc.returncode})\n{proc.stdout[-3000:]}\n"
            f"{proc.stderr[-3000:]}",
            flush=True,
        )
        return None
    result = results[0]
    result.setdefault("other_load_frac", other)
    return result


def describe(label, result):
    other = result.get("other_load_frac")
    load = "n/a" if other is None else f"{100 * other:.0f}%"
    print(
        f"  {label} {case_key(result['method'], result['case'], result['img_size'], result['batch'])}: "
        f"median {result['sec_median']:.4f} s over {result['iters']} iters (min {result['sec_min']:.4f} s), "
        f"params {json.dumps(result.get('params'))}, other load {load}",
        flush=True,
    )


def cpu_description():
    from tf_faceedit.training import precision

    model, flags = precision.cpu_info()
    model = model or platform.processor()
    wanted = ["avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"]
    return f"{model} x{os.cpu_count()} ({', '.join(f for f in wanted if f in flags) or 'no AVX2'})"


def fmt_ms(seconds):
    return f"{seconds:.3f} s" if seconds >= 1 else f"{seconds * 1000:.1f} ms"


def fmt_params(params):
    return " + ".join(f"{name} {value / 1e6:.2f} M" for name, value in (params or {}).items()) or "-"


def print_table(rows, peaks=None):
    """rows: (case, ours, reference) results (None where missing); peaks: `run_peak`'s dict."""
    peaks = peaks or {}
    print("| case | reference (PyTorch) | tf_faceedit | ours / reference | target | other load (ref / ours) |")
    print("|---|---|---|---|---|---|")
    for case, ours, ref in rows:
        method, name, size, batch = case
        label = f"{method} {name} {size}² b{batch}"
        target = TARGETS.get(name)
        ref_text = fmt_ms(ref["sec_median"]) if ref else "-"
        ours_text = fmt_ms(ours["sec_median"]) if ours else "FAILED"
        if ours and ref:
            ratio = ours["sec_median"] / ref["sec_median"]
            ratio_text = f"{ratio:.2f}"
            verdict = "" if target is None else f"<= {target}: {'met' if ratio <= target else 'MISSED'}"
        else:
            ratio_text, verdict = "-", "" if target is None else f"<= {target}"
        loads = " / ".join(
            "-" if r is None or r.get("other_load_frac") is None else f"{100 * r['other_load_frac']:.0f}%"
            for r in (ref, ours)
        )
        print(f"| {label} | {ref_text} | {ours_text} | {ratio_text} | {verdict} | {loads} |")
    print(
        "(other load: the share of the machine other processes used while a case ran; above ~5% the times are "
        "inflated, and PyTorch's more than ours: only a quiet machine gives ratios that count)"
    )
    f32, bf16 = peaks.get("float32"), peaks.get("bfloat16")
    print(
        f"\nLike for like and roofline (model FLOPs: benchmarks/flops.py; matmul peak of this run: float32 "
        f"{roofline.fmt_rate(f32)}, bfloat16 {roofline.fmt_rate(bf16)})\n"
    )
    print(
        "| case | params reference | params ours | GFLOP/iter reference / ours | reference rate (% f32 peak) "
        "| ours rate (% f32 peak, % bf16 peak) |"
    )
    print("|---|---|---|---|---|---|")
    for case, ours, ref in rows:
        method, name, size, batch = case
        reference_networks = flops.reference_networks(method, size)
        ref_flops = flops.case_flops(method, name, reference_networks, batch)
        ref_params = (ref or {}).get("params") or flops.case_params(method, reference_networks)
        shown = flops.case_params(method, reference_networks)
        ref_params = {key: ref_params[key] for key in shown if key in ref_params}
        our_flops = (ours or {}).get("model_flops_per_iter")
        cells = [f"{method} {name} {size}² b{batch}", fmt_params(ref_params), fmt_params((ours or {}).get("params"))]
        flops_text = f"{ref_flops / 1e9:.2f} / " + ("-" if our_flops is None else f"{our_flops / 1e9:.2f}")
        if our_flops is not None and flops.relative_difference(our_flops, ref_flops) > LIKE_FOR_LIKE_TOLERANCE:
            flops_text += " **not like for like**"
        cells.append(flops_text)
        if ref:
            seconds = ref["sec_median"]
            fraction = roofline.fraction_of_peak(ref_flops, seconds, f32)
            cells.append(f"{roofline.fmt_rate(roofline.rate(ref_flops, seconds))} ({roofline.fmt_fraction(fraction)})")
        else:
            cells.append("-")
        if ours and our_flops is not None:
            seconds = ours["sec_median"]
            fractions = [roofline.fraction_of_peak(our_flops, seconds, peak) for peak in (f32, bf16)]
            cells.append(
                f"{roofline.fmt_rate(roofline.rate(our_flops, seconds))} "
                f"({', '.join(roofline.fmt_fraction(f) for f in fractions)})"
            )
        else:
            cells.append("-")
        print("| " + " | ".join(cells) + " |")


def select(only):
    wanted = [s for s in only.split(",") if s]
    every = CASES + EXTRA_CASES
    if not wanted:
        return list(CASES)
    chosen = [c for c in every if c[0] in wanted or f"{c[0]}/{c[1]}" in wanted or f"{c[0]}/{c[1]}/{c[2]}" in wanted]
    unknown = [w for w in wanted if not any(w in (c[0], f"{c[0]}/{c[1]}", f"{c[0]}/{c[1]}/{c[2]}") for c in every)]
    if unknown:
        names = ", ".join(f"{c[0]}/{c[1]}/{c[2]}" for c in every)
        raise SystemExit(f"error: --only {unknown[0]!r} matches no case; cases: {names}")
    return chosen


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--only",
        default="",
        help="comma list of methods (sagan,fader), method/case or method/case/size (e.g. sagan/train_iter/64)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--inference",
        choices=["function", "frozen", "frozen_bfloat16", "tflite"],
        default="function",
        help="compiled forwards: the network's tf.function; frozen = with its weights folded into constants, what "
        "tf_faceedit.load runs; frozen_bfloat16 = that, built under mixed_bfloat16 (load(precision='bfloat16')); "
        "tflite = the TFLite interpreter (what load's engine='auto' runs where it is faster)",
    )
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--min_iters", type=int, default=3)
    parser.add_argument("--min_time", type=float, default=10.0, help="seconds each case is timed at least")
    parser.add_argument("--max_iters", type=int, default=50)
    parser.add_argument("--torch_python", help="python of the PyTorch venv (README of the driver: /tmp/torchenv)")
    parser.add_argument("--peers_dir", help="folder with SpatialAttentionGAN/ and FaderNetworks/ checkouts")
    parser.add_argument("--peers_driver", default=str(DEFAULT_DRIVER), help="the reference timing driver")
    parser.add_argument("--peers_json", help="reference results of an earlier driver run (its --json file)")
    parser.add_argument("--retries", type=int, default=0, help="driver: re-runs of a case under other load")
    parser.add_argument(
        "--wait_idle",
        type=float,
        default=0.0,
        help="before each case (ours and the driver's), wait up to this many seconds for a quiet machine (< 10%% busy)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        help="config override for our side (repeatable), e.g. train.jit_compile=true; recorded in the json",
    )
    parser.add_argument("--json", help="write our results here (the driver's --compare schema)")
    parser.add_argument("--peak_n", type=int, default=2048, help="side of the matmul that measures the peak")
    parser.add_argument("--no_peak", action="store_true", help="skip the matmul peak (no roofline column)")
    parser.add_argument(
        "--counts",
        action="store_true",
        help="print only the like-for-like table (parameters and FLOPs, ours vs the reference) and exit 1 when a "
        "case differs by more than 1%%",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--peak_child", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        return child(opts.child, opts)
    if opts.peak_child:
        return peak_child(opts)

    cases = select(opts.only)
    if opts.counts:
        return 1 if print_counts(cases, opts.set) else 0
    run_peers = bool(opts.torch_python or opts.peers_dir)
    if run_peers:
        if not (opts.torch_python and opts.peers_dir):
            parser.error("give both --torch_python and --peers_dir (or neither)")
        for flag, path in (
            ("--torch_python", opts.torch_python),
            ("--peers_dir", opts.peers_dir),
            ("--peers_driver", opts.peers_driver),
        ):
            if not Path(path).exists():
                parser.error(f"{flag} {path} does not exist")
        for sub in ("SpatialAttentionGAN", "FaderNetworks"):
            if not (Path(opts.peers_dir) / sub).is_dir():
                parser.error(f"--peers_dir {opts.peers_dir} has no {sub}/ checkout (see the driver's README.md)")
    known = {}
    if opts.peers_json:
        try:
            known = {
                case_key(r["method"], r["case"], r["img_size"], r["batch"]): r
                for r in json.loads(Path(opts.peers_json).read_text())
            }
        except (OSError, ValueError, KeyError, TypeError) as err:
            parser.error(
                f"--peers_json {opts.peers_json} is not a results file of the driver's --json ({type(err).__name__})"
            )

    print(
        f"# compare_peers: {cpu_description()}; threads {opts.threads}, warm-up {opts.warmup}, >= {opts.min_iters} "
        f"iters and >= {opts.min_time:g} s, median",
        flush=True,
    )
    if os.path.exists("/proc/loadavg"):
        print(f"load average at start: {open('/proc/loadavg').read().split()[0]}", flush=True)
    peaks = {} if opts.no_peak else run_peak(opts)
    rows, ours_all = [], []
    for case in cases:
        ours = run_ours(case, opts)
        if ours:
            describe("ours", ours)
            ours_all.append(ours)
        method, name, size, batch = case
        key = case_key(method, reference_case(name), size, batch)
        if key not in known and run_peers:
            ref = run_reference(case, opts)
            if ref:
                describe("reference", ref)
                known[key] = ref
        rows.append((case, ours, known.get(key)))

    print(f"\nours: TF {ours_all[0]['tensorflow']}, Keras {ours_all[0]['keras']}" if ours_all else "")
    refs = [r for _, _, r in rows if r]
    if refs:
        commits = {r["method"]: r.get("commit", "?") for r in refs}
        print(f"reference: torch {refs[0].get('torch')}, " + ", ".join(f"{m} commit {c}" for m, c in commits.items()))
    print()
    print_table(rows, peaks)
    if opts.json:
        for result in ours_all:
            result["matmul_peak"] = peaks or None
        Path(opts.json).write_text(json.dumps(ours_all, indent=1))
        print(f"\nours written to {opts.json}")


if __name__ == "__main__":
    sys.exit(main())
