"""Training driver: resolve the config, prepare the model dir, build data + method, fit with checkpoints.

    cfg = resolve_config(method="sagan", model_dir="/tmp/run", config_file="sagan_quick",
                         overrides=["train.steps=50"], data_dir="/data/celeba")
    result = run(cfg, "/tmp/run")   # {"step", "checkpoint", "sample_grid", "logs"}

`model_dir` holds `config.yaml` (the resolved config), `checkpoints/ckpt-XXXXXXXX/`, `logs/` (TensorBoard) and
`samples/step_XXXXXXXX.png`. Running again with the same model_dir resumes from the latest checkpoint.
"""

import contextlib
import itertools
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

import keras
import numpy as np

from tf_faceedit import config as config_lib
from tf_faceedit import configs as presets
from tf_faceedit import io_util, onednn, registry
from tf_faceedit.data import celeba
from tf_faceedit.errors import DataError, TrainingError
from tf_faceedit.lazy_tf import tf  # TensorFlow is imported on first use (the JAX path runs without it)
from tf_faceedit.training import callbacks as cb
from tf_faceedit.training import loss_balance, precision, run_dir
from tf_faceedit.training.checkpoint import CheckpointManager
from tf_faceedit.training.lock import ModelDirLock

log = logging.getLogger("tf_faceedit")

# The run folder (config.yaml, checkpoints/, resumable fields) belongs to `training/run_dir.py`; these names stay
# here for the callers of the training driver.
RESUMABLE_FIELDS = run_dir.RESUMABLE_FIELDS
saved_config_dict = run_dir.saved_config_dict
prepare_model_dir = run_dir.prepare


def resolve_config(method=None, model_dir=None, config_file=None, overrides=(), data_dir=None, use_saved=True):
    """Builds the typed, validated config: class defaults (paper) <- preset YAML <- --data_dir <- --set overrides.

    Without `config_file`, an existing `model_dir/config.yaml` is the base (unless `use_saved=False`, as with
    --overwrite), so `--model_dir=RUN` alone resumes.
    """
    if model_dir:
        io_util.check_output_dir(model_dir, "--model_dir")  # a file, or a folder we cannot write: one line, first
    saved = saved_config_dict(model_dir) if model_dir and use_saved else None
    preset = config_lib.load_yaml(presets.resolve(config_file)) if config_file else None  # a path or a name
    if not method:
        if preset is not None and preset.get("method"):
            method = preset["method"]  # a preset names its method: --config=sagan_quick alone is enough
        elif saved is None:
            raise config_lib.ConfigError(
                "--method is required (no config.yaml found in --model_dir to resume "
                "from, and no --config preset naming one)"
            )
        else:
            method = saved.get("method")
    spec = registry.get(method)
    cfg = spec.config_class()
    if preset is not None:
        if preset.get("method", method) != method:
            raise config_lib.ConfigError(
                f"--config {config_file} is a preset for method {preset['method']!r}, not {method!r}"
            )
        cfg = cfg.merge_dict(preset, source=str(config_file))
    elif saved is not None and saved.get("method") == method:
        cfg = cfg.merge_dict(saved, source=str(Path(model_dir) / "config.yaml"))
    if data_dir:
        cfg = cfg.override(f"data.data_dir={data_dir}")
    cfg = cfg.apply_overrides(overrides)
    if not cfg.data.data_dir and model_dir:
        cfg = cfg.override(f"data.data_dir={ensure_synthetic_data(Path(model_dir) / 'synthetic_data')}")
    return cfg.validate()


def ensure_synthetic_data(path, num_images=512):
    """The fallback when no --data_dir is given: a small synthetic face-like CelebA-format set (made once)."""
    from tf_faceedit.data.synthetic import make_synthetic_celeba

    path = Path(path)
    if not (path / "list_attr_celeba.txt").is_file():
        log.warning(
            "no --data_dir given: generating %d synthetic face-like images in %s (for trying the library; "
            "pass --data_dir=DIR to train on real faces)",
            num_images,
            path,
        )
        make_synthetic_celeba(path, num_images=num_images, seed=0)
    return path


class SingleDeviceStrategy:
    """The strategy of the non-TensorFlow backends (JAX): one device, no replicas; `scope()` does nothing."""

    num_replicas_in_sync = 1

    def scope(self):
        return contextlib.nullcontext()


def make_dataset(trainer_class, data_config, split, for_fit=False, **kwargs):
    """A split's batches for the backend: the trainer's tf.data pipeline under TensorFlow, the numpy pipeline
    (`data/numpy_pipeline.py`, no TensorFlow) under JAX. `for_fit`: batches as `fit` takes them from a Python
    generator (1-tuples of the batch dict)."""
    if keras.backend.backend() == "tensorflow":
        return trainer_class.make_dataset(data_config, split, **kwargs)
    from tf_faceedit.data import numpy_pipeline

    batches = numpy_pipeline.make_dataset(trainer_class, data_config, split, **kwargs)
    return ((batch,) for batch in batches) if for_fit else batches


def make_strategy(name):
    """auto: MirroredStrategy when more than one GPU is visible, else the default strategy."""
    if keras.backend.backend() != "tensorflow":
        if name in ("mirrored", "multiworker"):
            raise config_lib.ConfigError(
                f"train.strategy={name} needs the TensorFlow backend; under "
                f"{keras.backend.backend()} use train.strategy=auto or default"
            )
        return SingleDeviceStrategy()
    if name == "auto":
        name = "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MultiWorkerMirroredStrategy()


def _sample_batch(cfg, trainer_class, train_records):
    """A fixed batch for the PNG grids, from train.sample_split (falls back to train when that split is empty)."""
    split, records = cfg.train.sample_split, None
    if split != "train":
        try:
            records = trainer_class.load_records(cfg.data, split)
        except DataError as err:
            log.info("sample grids use the train split (%s)", err)
    if records is None:
        split, records = "train", train_records
    n = min(cfg.train.num_samples, len(records))
    dataset = make_dataset(
        trainer_class,
        cfg.data,
        split,
        batch_size=n,
        training=False,
        seed=cfg.train.seed,
        repeat=False,
        drop_remainder=True,
        records=records,
    )
    # backend tensors (the numpy pipeline yields numpy arrays, which JAX models do not mix with their outputs)
    batch = celeba.first_batch(dataset, records)  # DataError, not StopIteration, when no image decodes
    return {key: keras.ops.convert_to_tensor(value) for key, value in batch.items()}


def is_chief(strategy):
    """Whether this process writes the run's files: always, except on the non-chief workers of a multi-worker
    strategy (`TF_CONFIG` task other than chief, or worker 0 when there is no chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


# ---------------------------------------------------------------------------------------------------------------
# Signals: SIGTERM (schedulers, `docker stop`, preemption) and SIGINT (Ctrl-C) stop like Keras' BackupAndRestore

INTERRUPT_GRACE_S = 120.0  # after the first signal: the longest wait for the step and the checkpoint, then exit


class TrainingInterrupted(TrainingError):
    """Training stopped on a signal after checkpointing. `exit_code`: 128 + the signal number (SIGTERM 143, SIGINT
    130), which the CLIs exit with."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.signum = int(signum)
        self.exit_code = 128 + self.signum


def _say(text):
    """One line on stderr, safe inside a signal handler or another thread (no logging locks)."""
    try:
        os.write(sys.stderr.fileno(), f"{text}\n".encode())
    except (OSError, ValueError, AttributeError):
        pass


class StopOnSignal:
    """While active (a context manager), SIGTERM and SIGINT ask training to stop after the current step.

    First signal: `signum` is set (`StopOnSignalCallback` ends `fit` after the running step; the checkpoint
    callback writes the step at the end of `fit`; `_raise_if_interrupted` raises `TrainingInterrupted`), and a
    watchdog starts: no stop within `grace_s` seconds (a hung step or input pipeline) exits the process with
    128 + signum after releasing `lock`. A second signal does the same at once. Signal handlers can only be
    installed from the main thread: elsewhere this does nothing. The previous handlers come back on exit.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, grace_s=None):
        self.grace_s = INTERRUPT_GRACE_S if grace_s is None else float(grace_s)
        self.signum = None
        self.lock = None  # the ModelDirLock to release on a hard exit
        self._previous = {}
        self._timer = None

    @property
    def name(self):
        return signal.Signals(self.signum).name if self.signum else None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        if self._timer is not None:
            self._timer.cancel()
        return False

    def _handle(self, signum, frame):
        if self.signum is not None:
            self._hard_exit(signum, f"second {signal.Signals(signum).name}: exiting now without a final checkpoint")
            return
        self.signum = signum
        _say(
            f"{signal.Signals(signum).name} received: stopping after the current step and writing a checkpoint "
            f"(at most {self.grace_s:g} s; send it again to exit at once)"
        )
        self._timer = threading.Timer(
            self.grace_s,
            self._hard_exit,
            (
                signum,
                f"training did not stop within "
                f"{self.grace_s:g} s of "
                f"{signal.Signals(signum).name}: exiting "
                "without a final checkpoint",
            ),
        )
        self._timer.daemon = True
        self._timer.start()

    def _hard_exit(self, signum, message):
        if self.lock is not None:
            try:
                self.lock.release()
            except Exception:  # noqa: BLE001 - exiting anyway; a left lock is taken over as stale
                pass
        released = ", the lock released" if self.lock is not None else ""
        _say(f"interrupted: {message}; the last complete checkpoint is kept{released}")
        os._exit(128 + int(signum))


class StopOnSignalCallback(keras.callbacks.Callback):
    """Ends `fit` after the running step once `stopper` has seen a signal."""

    def __init__(self, stopper):
        super().__init__()
        self.stopper = stopper

    def on_train_batch_end(self, batch, logs=None):
        if self.stopper.signum is not None:
            self.model.stop_training = True


def _raise_if_interrupted(stopper, trainer, manager):
    """Raises TrainingInterrupted (naming the step and the checkpoint) once a signal asked training to stop."""
    if stopper is None or stopper.signum is None:
        return
    step = int(keras.ops.convert_to_numpy(trainer.step))
    latest = manager.latest() if manager.writable else None
    if latest is not None and latest.name == f"ckpt-{step:08d}":
        saved = f"checkpoint {latest} written"
    elif latest is not None:
        saved = f"no checkpoint at this step, the last one is {latest}"
    else:
        saved = "no checkpoint written" if manager.writable else "this worker writes no checkpoint"
    raise TrainingInterrupted(
        f"training interrupted by {stopper.name} at step {step}: {saved}; run the same command again to resume",
        stopper.signum,
    )


def run(cfg, model_dir, overwrite=False):
    """Trains `cfg` in `model_dir` (resuming when it holds checkpoints). Returns a summary dict.

    The process holds `model_dir/.lock` while it trains (a second trainer on the same folder is refused; see
    `training/lock.py`). Under `train.strategy=multiworker` only the chief locks and writes; the other workers
    restore from `model_dir` (shared storage) and write nothing there.

    SIGTERM / SIGINT (from the main thread) stop training after the current step: a checkpoint is written, the
    lock released, and `TrainingInterrupted` raised (the CLI exits 143 / 130); a second signal, or no stop within
    `INTERRUPT_GRACE_S`, exits at once (see `StopOnSignal`). A full disk is a one-line TrainingError.
    """
    io_util.check_output_dir(model_dir, "--model_dir")
    strategy = make_strategy(cfg.train.strategy)  # first: a multi-worker strategy must precede other TF work
    with StopOnSignal() as stopper:
        try:
            if not is_chief(strategy):
                scratch = Path(tempfile.mkdtemp(prefix="tf_faceedit_worker_"))
                try:
                    return _run(cfg, model_dir, overwrite, strategy, scratch, stopper=stopper)
                finally:
                    shutil.rmtree(scratch, ignore_errors=True)
            existed, had_config = Path(model_dir).exists(), (Path(model_dir) / "config.yaml").exists()
            try:
                with ModelDirLock(model_dir) as lock:
                    stopper.lock = lock
                    return _run(cfg, model_dir, overwrite, strategy, stopper=stopper)
            except DataError:
                run_dir.undo_failed_start(model_dir, existed, had_config)
                raise
        except OSError as err:
            from tf_faceedit.training.checkpoint import is_no_space

            if is_no_space(err):  # a log line, a sample grid, the config: checkpoints say so themselves
                raise TrainingError(
                    f"no space left on the disk of --model_dir {model_dir} "
                    f"({getattr(err, 'filename', None) or err}); earlier checkpoints are kept; free "
                    "some space and run the same command again to resume"
                ) from None
            raise


def _run(cfg, model_dir, overwrite, strategy, scratch=None, stopper=None):
    """`run` on this process; `scratch` (non-chief workers): the folder for its logs/samples, deleted after;
    `stopper`: the `StopOnSignal` that asks training to stop."""
    spec = registry.get(cfg.method)
    chief = scratch is None
    model_dir = prepare_model_dir(cfg, model_dir, overwrite) if chief else Path(model_dir)
    out_dir = model_dir if chief else Path(scratch)
    keras.utils.set_random_seed(cfg.train.seed)
    if strategy.num_replicas_in_sync > 1 and cfg.train.batch_size % strategy.num_replicas_in_sync:
        raise config_lib.ConfigError(
            f"train.batch_size ({cfg.train.batch_size}) must be divisible by the "
            f"{strategy.num_replicas_in_sync} replicas"
        )

    records = spec.trainer_class.load_records(cfg.data, "train")
    described = records.describe() if hasattr(records, "describe") else f"{len(records)} training images"
    log.info(
        "%s: %s, attributes %s, %dx%d",
        cfg.method,
        described,
        ", ".join(cfg.data.attributes),
        cfg.data.image_size,
        cfg.data.image_size,
    )
    sample_batch = _sample_batch(cfg, spec.trainer_class, records)
    if cfg.train.mixed_precision == "auto":
        log.info("train.mixed_precision auto: %s on this machine", precision.resolve("auto"))
    log.info("TensorFlow oneDNN CPU kernels: %s", onednn.describe())
    if onednn.advice():
        log.warning("%s", onednn.advice())
    with strategy.scope():
        with precision.policy_scope(cfg.train.mixed_precision):  # build-time only: never leaks into the next run
            trainer = spec.trainer_class(cfg)
        trainer.compile(optimizers=trainer.make_optimizers())
        manager = CheckpointManager(model_dir / "checkpoints", trainer, cfg.train.keep_checkpoints, writable=chief)
        saved = manager.peek()
        # the phase decides the shapes of phase-dependent state: set it before restoring. A checkpoint at step s
        # holds the state of the phase of step s - 1 (the last step it ran; s may be the first step of the next).
        trainer.set_phase(trainer.phase_at(saved["step"] - 1 if saved else 0))
        trainer.build_trackers(sample_batch)
        state = manager.restore()
    start = state["step"] if state else 0
    if state:
        log.info("resumed from %s at step %d (%s)", manager.latest(), start, _describe(state))
    segment = [_segment_start(state)]  # where the data segment of the next step began (an interrupt's checkpoint)

    def dataset_at(step, skip=0):
        """The data of the segment starting at `step` (segments end at checkpoints): seeded by (seed, step), so a
        resume or a NaN rollback from a checkpoint sees the batches an uninterrupted run saw. `skip`: batches
        already trained on (a resume from a checkpoint written mid-segment, on a signal)."""
        dataset = make_dataset(
            type(trainer),
            cfg.data,
            "train",
            batch_size=cfg.train.batch_size * trainer.batch_multiple,
            training=True,
            seed=segment_seed(cfg.train.seed, step),
            records=records,
            for_fit=True,
        )
        if not skip:
            return dataset
        return dataset.skip(skip) if hasattr(dataset, "skip") else itertools.islice(dataset, skip, None)

    writer = cb.make_summary_writer(out_dir / "logs")  # None without TensorFlow (scalars.jsonl is still written)
    grid = cb.SampleGrid(sample_batch, out_dir / "samples", cfg.train.sample_every, writer)
    grid.set_model(trainer)
    if start >= cfg.train.steps:
        log.info(
            "already at step %d >= train.steps=%d: nothing to train (raise --set train.steps=N to go on)",
            start,
            cfg.train.steps,
        )
        return {"step": start, "checkpoint": manager.latest(), "sample_grid": grid.write(), "logs": {}}

    logs, rollbacks = {}, [0]
    for phase in trainer.phases():
        step = int(keras.ops.convert_to_numpy(trainer.step))
        if phase.end_step <= step:
            continue
        _raise_if_interrupted(stopper, trainer, manager)
        if phase != trainer.phase:
            with strategy.scope():
                trainer.set_phase(phase)
                trainer.start_phase(phase)
            trainer.train_function = None  # retrace: shapes and schedule constants change with the phase
        if len(trainer.phases()) > 1:
            log.info("phase %s: steps %d-%d", phase.name, max(step, phase.start_step), phase.end_step)
        logs = (
            _fit_phase(
                trainer,
                cfg,
                dataset_at,
                manager,
                writer,
                grid,
                step,
                phase.end_step,
                jsonl_path=out_dir / "logs" / "scalars.jsonl",
                rollbacks=rollbacks,
                stopper=stopper,
                segment=segment,
            )
            or logs
        )
    step = int(keras.ops.convert_to_numpy(trainer.step))
    log.info("done: step %d, checkpoint %s, samples %s", step, manager.latest(), grid.last_path)
    return {"step": step, "checkpoint": manager.latest(), "sample_grid": grid.last_path, "logs": logs}


def _describe(state):
    return ", ".join(f"{k} {v}" for k, v in state.items() if k not in ("step", "format")) or "single phase"


def segment_seed(seed, step):
    """Seed of the input pipeline for the segment that starts at `step` (`seed` itself at step 0)."""
    return (int(seed) + 1_000_003 * int(step)) % (2**31 - 1)


def _segment_start(state):
    """The step at which the data segment of a checkpoint's next step began: the checkpoint's own step, except for a
    checkpoint written mid-segment (on a signal), which records it as `segment_start`."""
    if not state:
        return 0
    return int(state.get("segment_start", state["step"]))


def _fit_phase(
    trainer,
    cfg,
    dataset_at,
    manager,
    writer,
    grid,
    start,
    end,
    jsonl_path=None,
    rollbacks=None,
    stopper=None,
    segment=None,
):
    """Runs `fit` from global step `start` to `end` with the checkpoint/summary/sample/NaN callbacks, one `fit` per
    segment between checkpoints (`dataset_at(step, skip)` gives a segment's data; `segment` is a one-item list:
    the step the current segment began at, which may precede `start` after a resume from a signal's checkpoint).

    A non-finite loss raises TrainingError naming the loss and step (`train.nan_policy=stop`), or, with
    `rollback`, restores the last good checkpoint, multiplies the learning rates by `train.nan_lr_factor` and goes
    on (at most `train.nan_max_rollbacks` times per run; `rollbacks` is a one-item list counting them).
    """
    t = cfg.train
    rollbacks = [0] if rollbacks is None else rollbacks
    segment = [start] if segment is None else segment
    if segment[0] > start or start - segment[0] >= t.checkpoint_every:
        segment[0] = start  # not a mid-segment resume of this phase
    nan_guard = cb.NaNGuard() if t.nan_guard else None
    stop = cb.StopAtStep(end)

    def extra_state():
        """state.json extras: the method's phase, and the segment start of a checkpoint written mid-segment."""
        mid_segment = int(keras.ops.convert_to_numpy(trainer.step)) < stop.steps
        return {**trainer.phase_state(), **({"segment_start": segment[0]} if mid_segment else {})}

    callbacks = [stop]
    callbacks += [nan_guard] if nan_guard else []
    callbacks += [
        cb.CheckpointCallback(manager, t.checkpoint_every, nan_guard, extra_state=extra_state),
        cb.ScalarSummaries(writer, t.log_every, jsonl_path),
        grid,
    ]
    if keras.backend.backend() == "tensorflow" and loss_balance.supports_balance(trainer):
        # the loss-balance readout of G's terms on the sample batch, at every sample grid
        callbacks.append(loss_balance.LossBalance(grid.batch, t.sample_every, writer, jsonl_path))
    callbacks += [StopOnSignalCallback(stopper)] if stopper is not None else []
    chunk = min(t.log_every, end)
    logs, step = {}, start
    while step < end:
        _raise_if_interrupted(stopper, trainer, manager)
        stop.steps = min(end, (step // t.checkpoint_every + 1) * t.checkpoint_every)
        initial_epoch, epochs = cb.epochs_for(step, stop.steps, chunk)
        history = trainer.fit(
            dataset_at(segment[0], skip=step - segment[0]),
            epochs=epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=chunk,
            callbacks=callbacks,
            verbose=t.verbose,
            shuffle=False,
        )
        if history.history:
            logs = {k: float(np.asarray(v[-1])) for k, v in history.history.items()}
        if nan_guard and nan_guard.failure:
            key, at, value = nan_guard.failure
            restored = _nan_rollback(trainer, cfg, manager, rollbacks) if t.nan_policy == "rollback" else None
            if restored is None:
                raise TrainingError(
                    f"non-finite loss {key}={value} at step {at}; training stopped and the last good checkpoint "
                    f"({manager.latest()}) is kept. Lower train.g_lr/train.d_lr, set train.nan_policy=rollback, or "
                    "check the data."
                )
            log.warning(
                "non-finite loss %s=%s at step %d: rolled back to step %d (rollback %d of %d), learning rates x%g",
                key,
                value,
                at,
                restored,
                rollbacks[0],
                t.nan_max_rollbacks,
                t.nan_lr_factor,
            )
            nan_guard.failure = None
            step = restored
            segment[0] = _segment_start(manager.peek())
            continue
        reached = int(keras.ops.convert_to_numpy(trainer.step))
        if reached < end:  # a signal once the phase is done: the next phase (or the end of the run) decides
            _raise_if_interrupted(stopper, trainer, manager)
        if reached < stop.steps:
            break  # fit ended before the segment's end without a NaN (e.g. a finite dataset ran out)
        step = segment[0] = reached
    return logs


def _nan_rollback(trainer, cfg, manager, rollbacks):
    """Restores the last good checkpoint of the current phase and lowers every learning rate; returns its step, or
    None when no rollback is possible (none left, no checkpoint, or the checkpoint is of an earlier phase)."""
    saved = manager.peek()
    phase = getattr(trainer, "phase", None)
    if rollbacks[0] >= cfg.train.nan_max_rollbacks or saved is None:
        return None
    if phase is not None and phase.start_step > 0 and saved["step"] <= phase.start_step:
        return None  # that checkpoint holds the previous phase's shapes
    manager.restore()
    rollbacks[0] += 1
    for name in trainer.optimizer_names:
        _scale_learning_rate(getattr(trainer, name), cfg.train.nan_lr_factor)
    trainer.train_function = None  # a scaled schedule is a new Python object: retrace
    return saved["step"]


class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`factor * schedule(step)`: a learning-rate schedule lowered by a NaN rollback."""

    def __init__(self, schedule, factor):
        self.schedule, self.factor = schedule, float(factor)

    def __call__(self, step):
        return self.schedule(step) * self.factor

    def get_config(self):
        return {"schedule": keras.optimizers.schedules.serialize(self.schedule), "factor": self.factor}


def _scale_learning_rate(optimizer, factor):
    """Multiplies an optimizer's learning rate by `factor`. A plain rate is a variable saved with the optimizer, so
    the lowered rate persists in later checkpoints; a schedule is wrapped (for the rest of this process only)."""
    rate = optimizer._learning_rate
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        optimizer._learning_rate = ScaledSchedule(rate, factor)
        log.warning(
            "%s: learning-rate schedule scaled by %g until the end of this run (not saved in checkpoints)",
            optimizer.name,
            factor,
        )
    else:
        rate.assign(keras.ops.convert_to_numpy(rate) * factor)
