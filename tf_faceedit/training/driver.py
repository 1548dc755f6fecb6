"""Training driver: prepare the model dir, build data + method, fit with checkpoints.

    cfg = resolution.resolve_config(method="sagan", model_dir="/tmp/run", config_file="sagan_quick",
                                    overrides=["train.steps=50"], data_dir="/data/celeba")  # tf_faceedit.configs
    result = run(cfg, "/tmp/run")   # {"step", "checkpoint", "sample_grid", "logs"}

The loop runs the method's phases, one `fit` per segment between checkpoints; what a signal or a non-finite loss
does is `training/recovery.py` (actions beside the loop). `model_dir` holds `config.yaml` (the resolved config),
`checkpoints/ckpt-XXXXXXXX/`, `logs/` (TensorBoard) and `samples/step_XXXXXXXX.png`. Running again with the same
model_dir resumes from the latest checkpoint.
"""

import contextlib
import itertools
import logging
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np

from tf_faceedit import config as config_lib
from tf_faceedit import io_util, registry
from tf_faceedit.backend import onednn
from tf_faceedit.backend.lazy_tf import tf  # TensorFlow is imported on first use (the JAX path runs without it)
from tf_faceedit.data import celeba
from tf_faceedit.errors import DataError, TrainingError
from tf_faceedit.training import callbacks as cb
from tf_faceedit.training import loss_balance, precision, run_dir, validation
from tf_faceedit.training.checkpoint import CheckpointManager
from tf_faceedit.training.lock import ModelDirLock
from tf_faceedit.training.recovery import NaNRecovery, StopOnSignal

log = logging.getLogger("tf_faceedit")


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


def _validation_batch(cfg, trainer_class):
    """The fixed batch of `train.validation`: the first `num_images` images of its split, unflipped, masks (if any)
    drawn with the training seed; numpy arrays. DataError when the split has no images."""
    v = cfg.train.validation
    records = trainer_class.load_records(cfg.data, v.split)
    if not len(records):
        raise DataError(f"train.validation.split={v.split} has no images in {cfg.data.data_dir}")
    n = min(v.num_images, len(records))
    dataset = make_dataset(
        trainer_class,
        cfg.data,
        v.split,
        batch_size=n,
        training=False,
        seed=cfg.train.seed,
        repeat=False,
        drop_remainder=True,
        records=records,
    )
    batch = celeba.first_batch(dataset, records)
    return {key: np.asarray(keras.ops.convert_to_numpy(value)) for key, value in batch.items()}


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

    SIGTERM / SIGINT (from the main thread) stop training after the current step: a checkpoint is written, the
    lock released, and `recovery.TrainingInterrupted` raised (the CLI exits 143 / 130); a second signal, or no stop
    within `recovery.INTERRUPT_GRACE_S`, exits at once (see `recovery.StopOnSignal`). A full disk is a one-line
    TrainingError.
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
            if io_util.is_no_space(err):  # a log line, a sample grid, the config: checkpoints say so themselves
                raise TrainingError(
                    f"no space left on the disk of --model_dir {model_dir} "
                    f"({getattr(err, 'filename', None) or err}); earlier checkpoints are kept; free "
                    "some space and run the same command again to resume"
                ) from None
            raise


def _run(cfg, model_dir, overwrite, strategy, scratch=None, stopper=None):
    """`run` on this process; `scratch` (non-chief workers): the folder for its logs/samples, deleted after;
    `stopper`: the `recovery.StopOnSignal` that asks training to stop (none: only a stopper that never fires)."""
    stopper = StopOnSignal() if stopper is None else stopper  # not entered: installs no handler
    spec = registry.get(cfg.method)
    chief = scratch is None
    model_dir = run_dir.prepare(cfg, model_dir, overwrite) if chief else Path(model_dir)
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
        # the phase decides the shapes of phase-dependent state: set it before restoring
        trainer.set_phase(trainer.phase_of_checkpoint(saved["step"] if saved else 0))
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
    validator = None
    if cfg.train.validation.every:
        if trainer.task not in validation.TASKS:
            raise config_lib.ConfigError(
                f"train.validation scores editing, completion and classifier methods; {cfg.method} is a "
                f"{trainer.task!r} model (set train.validation.every=0)"
            )
        validator = validation.PeriodicValidation(
            cfg.train.validation,
            _validation_batch(cfg, spec.trainer_class),
            writer,
            out_dir / "logs" / "scalars.jsonl",
            judge=validation.load_judge(cfg.train.validation.judge),
        )
    if start >= cfg.train.steps:
        log.info(
            "already at step %d >= train.steps=%d: nothing to train (raise --set train.steps=N to go on)",
            start,
            cfg.train.steps,
        )
        return {"step": start, "checkpoint": manager.latest(), "sample_grid": grid.write(), "logs": {}}

    logs, nan_recovery = {}, NaNRecovery(cfg.train)  # one per run: it counts the rollbacks
    for phase in trainer.phases():
        step = int(keras.ops.convert_to_numpy(trainer.step))
        if phase.end_step <= step:
            continue
        stopper.check(trainer, manager)
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
                nan_recovery=nan_recovery,
                stopper=stopper,
                segment=segment,
                extra_callbacks=[validator] if validator else (),
            )
            or logs
        )
        if validator is not None and validator.stop_requested:
            log.info("stopping: train.validation.stop_at_target (%s)", cfg.train.validation.target_metric)
            break
    step = int(keras.ops.convert_to_numpy(trainer.step))
    log.info("done: step %d, checkpoint %s, samples %s", step, manager.latest(), grid.last_path)
    result = {"step": step, "checkpoint": manager.latest(), "sample_grid": grid.last_path, "logs": logs}
    if validator is not None:
        result["validation"] = validator.summary()
    return result


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
    nan_recovery=None,
    stopper=None,
    segment=None,
    extra_callbacks=(),
):
    """Runs `fit` from global step `start` to `end` with the checkpoint/summary/sample/NaN callbacks, one `fit` per
    segment between checkpoints (`dataset_at(step, skip)` gives a segment's data; `segment` is a one-item list:
    the step the current segment began at, which may precede `start` after a resume from a signal's checkpoint).

    `extra_callbacks` go after the run's own (before the signal stopper). A non-finite loss goes to `nan_recovery`
    (`recovery.NaNRecovery`: raise, or roll back to the last good checkpoint); a signal to `stopper`
    (`recovery.StopOnSignal`: end `fit`, raise TrainingInterrupted).
    """
    t = cfg.train
    nan_recovery = NaNRecovery(t) if nan_recovery is None else nan_recovery
    stopper = StopOnSignal() if stopper is None else stopper
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
    callbacks += list(extra_callbacks)  # e.g. `validation.PeriodicValidation`, which may end fit at its target
    callbacks.append(stopper.callback())
    chunk = min(t.log_every, end)
    logs, step = {}, start
    while step < end:
        stopper.check(trainer, manager)
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
            step = nan_recovery(trainer, manager, nan_guard.failure)  # the step rolled back to, or raises
            nan_guard.failure = None
            segment[0] = _segment_start(manager.peek())
            continue
        reached = int(keras.ops.convert_to_numpy(trainer.step))
        if any(getattr(callback, "stop_requested", False) for callback in extra_callbacks):
            break  # a callback ended the run (validation's stop_at_target)
        if reached < end:  # a signal once the phase is done: the next phase (or the end of the run) decides
            stopper.check(trainer, manager)
        if reached < stop.steps:
            break  # fit ended before the segment's end without a NaN (e.g. a finite dataset ran out)
        step = segment[0] = reached
    return logs
