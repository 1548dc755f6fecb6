"""Training driver: resolve the config, prepare the model dir, build data + method, fit with checkpoints.

    cfg = resolve_config(method="sagan", model_dir="/tmp/run", config_file="configs/sagan_quick.yaml",
                         overrides=["train.steps=50"], data_dir="/data/celeba")
    result = run(cfg, "/tmp/run")   # {"step", "checkpoint", "sample_grid", "logs"}

`model_dir` holds `config.yaml` (the resolved config), `checkpoints/ckpt-XXXXXXXX/`, `logs/` (TensorBoard) and
`samples/step_XXXXXXXX.png`. Running again with the same model_dir resumes from the latest checkpoint.
"""

import logging
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tf_faceedit import config as config_lib
from tf_faceedit import registry
from tf_faceedit.errors import DataError, TrainingError
from tf_faceedit.training import callbacks as cb
from tf_faceedit.training.checkpoint import CheckpointManager

log = logging.getLogger("tf_faceedit")

# Fields that may change between runs on one model_dir (they do not change what is learned).
RESUMABLE_FIELDS = {
    "train.steps", "train.log_every", "train.sample_every", "train.checkpoint_every", "train.keep_checkpoints",
    "train.verbose", "train.strategy", "train.nan_guard", "train.num_samples", "train.sample_split",
    "data.data_dir", "data.image_dir", "data.attr_file", "data.partition_file", "data.cache",
    "data.num_parallel_calls", "train.phase",
}
_OWN_ENTRIES = ("config.yaml", "checkpoints", "logs", "samples")  # synthetic_data/ is kept


def saved_config_dict(model_dir):
    path = Path(model_dir) / "config.yaml"
    if not path.is_file():
        return None
    return config_lib.load_yaml(path)


def resolve_config(method=None, model_dir=None, config_file=None, overrides=(), data_dir=None, use_saved=True):
    """Builds the typed, validated config: class defaults (paper) <- preset YAML <- --data_dir <- --set overrides.

    Without `config_file`, an existing `model_dir/config.yaml` is the base (unless `use_saved=False`, as with
    --overwrite), so `--model_dir=RUN` alone resumes.
    """
    saved = saved_config_dict(model_dir) if model_dir and use_saved else None
    if not method:
        if saved is None:
            raise config_lib.ConfigError("--method is required (no config.yaml found in --model_dir to resume from)")
        method = saved.get("method")
    spec = registry.get(method)
    cfg = spec.config_class()
    if config_file:
        preset = config_lib.load_yaml(config_file)
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


def make_strategy(name):
    """auto: MirroredStrategy when more than one GPU is visible, else the default strategy."""
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
    dataset = trainer_class.make_dataset(cfg.data, split, batch_size=n, training=False, seed=cfg.train.seed,
                                         repeat=False, drop_remainder=True, records=records)
    return dict(next(iter(dataset)))


def run(cfg, model_dir, overwrite=False):
    """Trains `cfg` in `model_dir` (resuming when it holds checkpoints). Returns a summary dict."""
    spec = registry.get(cfg.method)
    model_dir = prepare_model_dir(cfg, model_dir, overwrite)
    keras.utils.set_random_seed(cfg.train.seed)
    strategy = make_strategy(cfg.train.strategy)
    if strategy.num_replicas_in_sync > 1 and cfg.train.batch_size % strategy.num_replicas_in_sync:
        raise config_lib.ConfigError(f"train.batch_size ({cfg.train.batch_size}) must be divisible by the "
                                     f"{strategy.num_replicas_in_sync} replicas")

    records = spec.trainer_class.load_records(cfg.data, "train")
    described = records.describe() if hasattr(records, "describe") else f"{len(records)} training images"
    log.info("%s: %s, attributes %s, %dx%d", cfg.method, described, ", ".join(cfg.data.attributes),
             cfg.data.image_size, cfg.data.image_size)
    sample_batch = _sample_batch(cfg, spec.trainer_class, records)
    with strategy.scope():
        trainer = spec.trainer_class(cfg)
        trainer.compile(optimizers=trainer.make_optimizers())
        manager = CheckpointManager(model_dir / "checkpoints", trainer, cfg.train.keep_checkpoints)
        saved = manager.peek()
        # the phase decides the shapes of phase-dependent state: set it before restoring. A checkpoint at step s
        # holds the state of the phase of step s - 1 (the last step it ran; s may be the first step of the next).
        trainer.set_phase(trainer.phase_at(saved["step"] - 1 if saved else 0))
        trainer.build_trackers(sample_batch)
        state = manager.restore()
    start = state["step"] if state else 0
    if state:
        log.info("resumed from %s at step %d (%s)", manager.latest(), start, _describe(state))
    dataset = trainer.make_dataset(cfg.data, "train", batch_size=cfg.train.batch_size * trainer.batch_multiple,
                                   training=True, seed=cfg.train.seed, records=records)

    writer = tf.summary.create_file_writer(str(model_dir / "logs"))
    grid = cb.SampleGrid(sample_batch, model_dir / "samples", cfg.train.sample_every, writer)
    grid.set_model(trainer)
    if start >= cfg.train.steps:
        log.info("already at step %d >= train.steps=%d: nothing to train (raise --set train.steps=N to go on)",
                 start, cfg.train.steps)
        return {"step": start, "checkpoint": manager.latest(), "sample_grid": grid.write(), "logs": {}}

    logs = {}
    for phase in trainer.phases():
        step = int(keras.ops.convert_to_numpy(trainer.step))
        if phase.end_step <= step:
            continue
        if phase != trainer.phase:
            with strategy.scope():
                trainer.set_phase(phase)
            trainer.train_function = None  # retrace: shapes and schedule constants change with the phase
        if len(trainer.phases()) > 1:
            log.info("phase %s: steps %d-%d", phase.name, max(step, phase.start_step), phase.end_step)
        logs = _fit_phase(trainer, cfg, dataset, manager, writer, grid, step, phase.end_step) or logs
    step = int(keras.ops.convert_to_numpy(trainer.step))
    log.info("done: step %d, checkpoint %s, samples %s", step, manager.latest(), grid.last_path)
    return {"step": step, "checkpoint": manager.latest(), "sample_grid": grid.last_path, "logs": logs}


def _describe(state):
    return ", ".join(f"{k} {v}" for k, v in state.items() if k not in ("step", "format")) or "single phase"


def _fit_phase(trainer, cfg, dataset, manager, writer, grid, start, end):
    """Runs `fit` from global step `start` to `end` with the checkpoint/summary/sample/NaN callbacks."""
    nan_guard = cb.NaNGuard() if cfg.train.nan_guard else None
    callbacks = [cb.StopAtStep(end)]
    callbacks += [nan_guard] if nan_guard else []
    callbacks += [
        cb.CheckpointCallback(manager, cfg.train.checkpoint_every, nan_guard, extra_state=trainer.phase_state),
        cb.ScalarSummaries(writer, cfg.train.log_every),
        grid,
    ]
    chunk = min(cfg.train.log_every, end)
    initial_epoch, epochs = cb.epochs_for(start, end, chunk)
    history = trainer.fit(dataset, epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=chunk,
                          callbacks=callbacks, verbose=cfg.train.verbose, shuffle=False)
    if nan_guard and nan_guard.failure:
        key, at, value = nan_guard.failure
        raise TrainingError(f"non-finite loss {key}={value} at step {at}; training stopped and the last good "
                            f"checkpoint ({manager.latest()}) is kept. Lower train.g_lr/train.d_lr or check the data.")
    return {k: float(np.asarray(v[-1])) for k, v in history.history.items()} if history.history else {}
