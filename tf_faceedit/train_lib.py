"""Training driver: resolve the config, prepare the model dir, build data + method, fit with checkpoints.

    cfg = resolve_config(method="sagan", model_dir="/tmp/run", config_file="sagan_quick",
                         overrides=["train.steps=50"], data_dir="/data/celeba")
    result = run(cfg, "/tmp/run")   # {"step", "checkpoint", "sample_grid", "logs"}

`model_dir` holds `config.yaml` (the resolved config), `checkpoints/ckpt-XXXXXXXX/`, `logs/` (TensorBoard) and
`samples/step_XXXXXXXX.png`. Running again with the same model_dir resumes from the latest checkpoint.
"""

import contextlib
import logging
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
from tf_faceedit.lazy_tf import tf  # TensorFlow is imported on first use (the JAX path runs without it)

from tf_faceedit import config as config_lib
from tf_faceedit import configs as presets
from tf_faceedit import io_util, registry
from tf_faceedit.data import celeba
from tf_faceedit.errors import DataError, TrainingError
from tf_faceedit.training import callbacks as cb
from tf_faceedit.training import precision
from tf_faceedit.training.checkpoint import CheckpointManager
from tf_faceedit.training.lock import ModelDirLock

log = logging.getLogger("tf_faceedit")

# Fields that may change between runs on one model_dir (they do not change what is learned).
RESUMABLE_FIELDS = {
    "train.steps", "train.log_every", "train.sample_every", "train.checkpoint_every", "train.keep_checkpoints",
    "train.verbose", "train.strategy", "train.nan_guard", "train.num_samples", "train.sample_split",
    "data.data_dir", "data.image_dir", "data.attr_file", "data.partition_file", "data.cache",
    "data.num_parallel_calls", "train.phase",
    "train.mixed_precision", "train.jit_compile",  # weights are float32 in every precision
    "train.nan_policy", "train.nan_lr_factor", "train.nan_max_rollbacks", "train.replica_seeds",
}
_OWN_ENTRIES = ("config.yaml", "checkpoints", "logs", "samples")  # synthetic_data/ is kept


def saved_config_dict(model_dir):
    path = Path(model_dir) / "config.yaml"
    if not path.is_file():
        return None
    return config_lib.load_run_config(path)  # ConfigError naming the file: unreadable, not YAML, another tool's


def resolve_config(method=None, model_dir=None, config_file=None, overrides=(), data_dir=None, use_saved=True):
    """Builds the typed, validated config: class defaults (paper) <- preset YAML <- --data_dir <- --set overrides.

    Without `config_file`, an existing `model_dir/config.yaml` is the base (unless `use_saved=False`, as with
    --overwrite), so `--model_dir=RUN` alone resumes.
    """
    if model_dir:
        io_util.check_output_dir(model_dir, "--model_dir")  # a file, or a folder we cannot write: one line, first
    saved = saved_config_dict(model_dir) if model_dir and use_saved else None
    if not method:
        if saved is None:
            raise config_lib.ConfigError("--method is required (no config.yaml found in --model_dir to resume from)")
        method = saved.get("method")
    spec = registry.get(method)
    cfg = spec.config_class()
    if config_file:
        preset = config_lib.load_yaml(presets.resolve(config_file))  # a path, or a packaged preset's name
        if preset.get("method", method) != method:
            raise config_lib.ConfigError(f"--config {config_file} is a preset for method {preset['method']!r}, "
                                         f"not {method!r}")
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
        log.warning("no --data_dir given: generating %d synthetic face-like images in %s (for trying the library; "
                    "pass --data_dir=DIR to train on real faces)", num_images, path)
        make_synthetic_celeba(path, num_images=num_images, seed=0)
    return path


def prepare_model_dir(cfg, model_dir, overwrite=False):
    """Creates model_dir and writes config.yaml; refuses a model_dir trained with a different config."""
    model_dir = Path(model_dir)
    if overwrite and model_dir.exists():
        for entry in _OWN_ENTRIES:
            target = model_dir / entry
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        log.info("--overwrite: removed the previous run in %s", model_dir)
    saved = saved_config_dict(model_dir)
    if saved is not None:
        changed = config_lib.diff(saved, cfg.to_dict())
        blocking = [f for f in changed if f not in RESUMABLE_FIELDS]
        if blocking:
            raise TrainingError(
                f"--model_dir {model_dir} holds a run with a different config (changed: {', '.join(blocking)}); "
                "use another --model_dir, or --overwrite to start over")
        if changed:
            log.info("resuming with changed fields: %s", ", ".join(changed))
    elif model_dir.is_dir() and (model_dir / "checkpoints").exists():
        raise TrainingError(f"--model_dir {model_dir} has checkpoints but no config.yaml; use --overwrite")
    model_dir.mkdir(parents=True, exist_ok=True)
    cfg.to_yaml(model_dir / "config.yaml")
    return model_dir


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
            raise config_lib.ConfigError(f"train.strategy={name} needs the TensorFlow backend; under "
                                         f"{keras.backend.backend()} use train.strategy=auto or default")
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
    dataset = make_dataset(trainer_class, cfg.data, split, batch_size=n, training=False, seed=cfg.train.seed,
                           repeat=False, drop_remainder=True, records=records)
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


def run(cfg, model_dir, overwrite=False):
    """Trains `cfg` in `model_dir` (resuming when it holds checkpoints). Returns a summary dict.

    The process holds `model_dir/.lock` while it trains (a second trainer on the same folder is refused; see
    `training/lock.py`). Under `train.strategy=multiworker` only the chief locks and writes; the other workers
    restore from `model_dir` (shared storage) and write nothing there.
    """
    io_util.check_output_dir(model_dir, "--model_dir")
    strategy = make_strategy(cfg.train.strategy)  # first: a multi-worker strategy must precede other TF work
    if not is_chief(strategy):
        scratch = Path(tempfile.mkdtemp(prefix="tf_faceedit_worker_"))
        try:
            return _run(cfg, model_dir, overwrite, strategy, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    existed, had_config = Path(model_dir).exists(), (Path(model_dir) / "config.yaml").exists()
    try:
        with ModelDirLock(model_dir):
            return _run(cfg, model_dir, overwrite, strategy)
    except DataError:
        _undo_failed_start(model_dir, existed, had_config)
        raise


def _undo_failed_start(model_dir, existed, had_config):
    """A first run that fails on its data (before any checkpoint) leaves nothing behind: the folder it created, or
    the config.yaml it wrote into an existing folder."""
    model_dir = Path(model_dir)
    if had_config or any((model_dir / "checkpoints").glob("ckpt-*")):
        return
    if not existed:
        shutil.rmtree(model_dir, ignore_errors=True)
        return
    (model_dir / "config.yaml").unlink(missing_ok=True)
    for entry in ("checkpoints", "logs", "samples"):
        if (model_dir / entry).is_dir() and not any((model_dir / entry).iterdir()):
            (model_dir / entry).rmdir()


def _run(cfg, model_dir, overwrite, strategy, scratch=None):
    """`run` on this process; `scratch` (non-chief workers): the folder for its logs/samples, deleted after."""
    spec = registry.get(cfg.method)
    chief = scratch is None
    model_dir = prepare_model_dir(cfg, model_dir, overwrite) if chief else Path(model_dir)
    out_dir = model_dir if chief else Path(scratch)
    keras.utils.set_random_seed(cfg.train.seed)
    if strategy.num_replicas_in_sync > 1 and cfg.train.batch_size % strategy.num_replicas_in_sync:
        raise config_lib.ConfigError(f"train.batch_size ({cfg.train.batch_size}) must be divisible by the "
                                     f"{strategy.num_replicas_in_sync} replicas")

    records = spec.trainer_class.load_records(cfg.data, "train")
    described = records.describe() if hasattr(records, "describe") else f"{len(records)} training images"
    log.info("%s: %s, attributes %s, %dx%d", cfg.method, described, ", ".join(cfg.data.attributes),
             cfg.data.image_size, cfg.data.image_size)
    sample_batch = _sample_batch(cfg, spec.trainer_class, records)
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

    def dataset_at(step):
        """The data of the segment starting at `step` (segments end at checkpoints): seeded by (seed, step), so a
        resume or a NaN rollback from a checkpoint sees the batches an uninterrupted run saw."""
        return make_dataset(type(trainer), cfg.data, "train", batch_size=cfg.train.batch_size * trainer.batch_multiple,
                            training=True, seed=segment_seed(cfg.train.seed, step), records=records, for_fit=True)

    writer = cb.make_summary_writer(out_dir / "logs")  # None without TensorFlow (scalars.jsonl is still written)
    grid = cb.SampleGrid(sample_batch, out_dir / "samples", cfg.train.sample_every, writer)
    grid.set_model(trainer)
    if start >= cfg.train.steps:
        log.info("already at step %d >= train.steps=%d: nothing to train (raise --set train.steps=N to go on)",
                 start, cfg.train.steps)
        return {"step": start, "checkpoint": manager.latest(), "sample_grid": grid.write(), "logs": {}}

    logs, rollbacks = {}, [0]
    for phase in trainer.phases():
        step = int(keras.ops.convert_to_numpy(trainer.step))
        if phase.end_step <= step:
            continue
        if phase != trainer.phase:
            with strategy.scope():
                trainer.set_phase(phase)
                trainer.start_phase(phase)
            trainer.train_function = None  # retrace: shapes and schedule constants change with the phase
        if len(trainer.phases()) > 1:
            log.info("phase %s: steps %d-%d", phase.name, max(step, phase.start_step), phase.end_step)
        logs = _fit_phase(trainer, cfg, dataset_at, manager, writer, grid, step, phase.end_step,
                          jsonl_path=out_dir / "logs" / "scalars.jsonl", rollbacks=rollbacks) or logs
    step = int(keras.ops.convert_to_numpy(trainer.step))
    log.info("done: step %d, checkpoint %s, samples %s", step, manager.latest(), grid.last_path)
    return {"step": step, "checkpoint": manager.latest(), "sample_grid": grid.last_path, "logs": logs}


def _describe(state):
    return ", ".join(f"{k} {v}" for k, v in state.items() if k not in ("step", "format")) or "single phase"


def segment_seed(seed, step):
    """Seed of the input pipeline for the segment that starts at `step` (`seed` itself at step 0)."""
    return (int(seed) + 1_000_003 * int(step)) % (2**31 - 1)


def _fit_phase(trainer, cfg, dataset_at, manager, writer, grid, start, end, jsonl_path=None, rollbacks=None):
    """Runs `fit` from global step `start` to `end` with the checkpoint/summary/sample/NaN callbacks, one `fit` per
    segment between checkpoints (`dataset_at(step)` gives a segment's data).

    A non-finite loss raises TrainingError naming the loss and step (`train.nan_policy=stop`), or, with
    `rollback`, restores the last good checkpoint, multiplies the learning rates by `train.nan_lr_factor` and goes
    on (at most `train.nan_max_rollbacks` times per run; `rollbacks` is a one-item list counting them).
    """
    t = cfg.train
    rollbacks = [0] if rollbacks is None else rollbacks
    nan_guard = cb.NaNGuard() if t.nan_guard else None
    stop = cb.StopAtStep(end)
    callbacks = [stop]
    callbacks += [nan_guard] if nan_guard else []
    callbacks += [
        cb.CheckpointCallback(manager, t.checkpoint_every, nan_guard, extra_state=trainer.phase_state),
        cb.ScalarSummaries(writer, t.log_every, jsonl_path),
        grid,
    ]
    chunk = min(t.log_every, end)
    logs, step = {}, start
    while step < end:
        stop.steps = min(end, (step // t.checkpoint_every + 1) * t.checkpoint_every)
        initial_epoch, epochs = cb.epochs_for(step, stop.steps, chunk)
        history = trainer.fit(dataset_at(step), epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=chunk,
                              callbacks=callbacks, verbose=t.verbose, shuffle=False)
        if history.history:
            logs = {k: float(np.asarray(v[-1])) for k, v in history.history.items()}
        if nan_guard and nan_guard.failure:
            key, at, value = nan_guard.failure
            restored = _nan_rollback(trainer, cfg, manager, rollbacks) if t.nan_policy == "rollback" else None
            if restored is None:
                raise TrainingError(
                    f"non-finite loss {key}={value} at step {at}; training stopped and the last good checkpoint "
                    f"({manager.latest()}) is kept. Lower train.g_lr/train.d_lr, set train.nan_policy=rollback, or "
                    "check the data.")
            log.warning("non-finite loss %s=%s at step %d: rolled back to step %d (rollback %d of %d), learning "
                        "rates x%g", key, value, at, restored, rollbacks[0], t.nan_max_rollbacks, t.nan_lr_factor)
            nan_guard.failure = None
            step = restored
            continue
        reached = int(keras.ops.convert_to_numpy(trainer.step))
        if reached < stop.steps:
            break  # fit ended before the segment's end without a NaN (e.g. a finite dataset ran out)
        step = reached
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
        log.warning("%s: learning-rate schedule scaled by %g until the end of this run (not saved in checkpoints)",
                    optimizer.name, factor)
    else:
        rate.assign(keras.ops.convert_to_numpy(rate) * factor)
