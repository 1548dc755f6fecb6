"""The run folder's one owner: what a training run's folder holds, how it is read, and how a model comes back
from it. Training (`training/driver.py`), inference (`tf_faceedit.load`, export), evaluation (the attribute judge)
and the demo all go through this module; inference does not import the training driver.

A run folder (`--model_dir`) holds
  config.yaml                    the resolved config of the run (`write_config` / `saved_config_dict`)
  checkpoints/ckpt-XXXXXXXX/     the checkpoints (`training/checkpoint.py`: written atomically, validated on use)
  logs/, samples/                TensorBoard + scalars.jsonl, PNG sample grids
  synthetic_data/                the generated stand-in data when no --data_dir was given (kept by --overwrite)
  .lock                          held by the trainer running in it (`training/lock.py`)
An export version folder holds `saved_model.pb` instead (`serving/export_lib.py`); `kind(path)` tells them apart.

    cfg = run_dir.load_config("runs/sagan")                        # the typed config the run was trained with
    trainer, cfg, info = run_dir.restore_trainer("runs/sagan")     # networks of the newest intact checkpoint
    run_dir.latest_checkpoint("runs/sagan")                        # Path or None (damaged ones skipped, warned)
"""

import logging
import shutil
from pathlib import Path

from tf_faceedit import config as config_lib
from tf_faceedit import registry
from tf_faceedit.errors import ConfigError, TrainingError

log = logging.getLogger("tf_faceedit")

CONFIG_FILE = "config.yaml"
CHECKPOINTS = "checkpoints"
EXPORT_FILE = "saved_model.pb"
OWN_ENTRIES = (CONFIG_FILE, CHECKPOINTS, "logs", "samples")  # what --overwrite removes (synthetic_data/ is kept)

# Fields that may change between runs on one model_dir (they do not change what is learned).
RESUMABLE_FIELDS = {
    "train.steps",
    "train.log_every",
    "train.sample_every",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.verbose",
    "train.strategy",
    "train.nan_guard",
    "train.num_samples",
    "train.sample_split",
    "data.data_dir",
    "data.image_dir",
    "data.attr_file",
    "data.partition_file",
    "data.cache",
    "data.num_parallel_calls",
    "train.phase",
    "train.mixed_precision",
    "train.jit_compile",  # weights are float32 in every precision
    "train.nan_policy",
    "train.nan_lr_factor",
    "train.nan_max_rollbacks",
    "train.replica_seeds",
    "train.validation.every",  # validation only reads the networks
    "train.validation.num_images",
    "train.validation.split",
    "train.validation.judge",
    "train.validation.target_metric",
    "train.validation.target_value",
    "train.validation.stop_at_target",
}


# ---------------------------------------------------------------------------------------------------------------
# What a folder is


def config_path(model_dir):
    return Path(model_dir) / CONFIG_FILE


def checkpoints_dir(model_dir):
    return Path(model_dir) / CHECKPOINTS


def is_run(path):
    """Whether `path` is a training run's folder (it holds config.yaml)."""
    return config_path(path).is_file()


def is_export(path):
    """Whether `path` is an export version folder (it holds saved_model.pb)."""
    return (Path(path) / EXPORT_FILE).is_file()


def kind(path):
    """ "export" (saved_model.pb), "run" (config.yaml) or None. An export is recognised first (it also carries a
    config, under assets.extra/)."""
    if is_export(path):
        return "export"
    if is_run(path):
        return "run"
    return None


# ---------------------------------------------------------------------------------------------------------------
# config.yaml


def saved_config_dict(model_dir):
    """The run's config.yaml as a dict, or None when there is none. ConfigError naming the file when it cannot be
    read, is not YAML, or is not a tf_faceedit config."""
    path = config_path(model_dir)
    if not path.is_file():
        return None
    return config_lib.load_run_config(path)


def load_config(model_dir, flag="--model_dir"):
    """The typed, validated config a run was trained with (from its config.yaml)."""
    model_dir = Path(model_dir)
    saved = saved_config_dict(model_dir)
    if saved is None:
        raise ConfigError(f"{flag} {model_dir} has no {CONFIG_FILE} (is it a training run's folder?)")
    return config_lib.from_saved(saved, source=str(config_path(model_dir))).validate()


def write_config(cfg, model_dir):
    """Writes cfg to model_dir/config.yaml; a write error (full disk, permissions) is a TrainingError naming it."""
    path = config_path(model_dir)
    try:
        cfg.to_yaml(path)
    except OSError as err:
        raise TrainingError(f"cannot write {path}: {err.strerror or err}") from None
    return path


def with_defaults(saved):
    """A saved config dict completed with the defaults of fields added to the library after it was written (a run
    saved before `data.positive_fraction` existed resumes: the field is its default, not a change)."""
    try:
        return config_lib.from_saved(saved).to_dict()
    except ConfigError:  # not mergeable (e.g. a field since removed): compare as saved
        return saved


def blocking_changes(saved, cfg_dict):
    """Fields that differ between two config dicts and would change what is learned (not in RESUMABLE_FIELDS)."""
    return [
        field
        for field in config_lib.diff(with_defaults(saved), with_defaults(cfg_dict))
        if field not in RESUMABLE_FIELDS
    ]


def prepare(cfg, model_dir, overwrite=False):
    """Creates model_dir and writes config.yaml; refuses a model_dir trained with a different config."""
    model_dir = Path(model_dir)
    if overwrite and model_dir.exists():
        for entry in OWN_ENTRIES:
            target = model_dir / entry
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        log.info("--overwrite: removed the previous run in %s", model_dir)
    saved = saved_config_dict(model_dir)
    if saved is not None:
        changed = config_lib.diff(with_defaults(saved), cfg.to_dict())
        blocking = [f for f in changed if f not in RESUMABLE_FIELDS]
        if blocking:
            raise TrainingError(
                f"--model_dir {model_dir} holds a run with a different config (changed: {', '.join(blocking)}); "
                "use another --model_dir, or --overwrite to start over"
            )
        if changed:
            log.info("resuming with changed fields: %s", ", ".join(changed))
    elif model_dir.is_dir() and checkpoints_dir(model_dir).exists():
        raise TrainingError(f"--model_dir {model_dir} has checkpoints but no config.yaml; use --overwrite")
    model_dir.mkdir(parents=True, exist_ok=True)
    write_config(cfg, model_dir)
    return model_dir


def undo_failed_start(model_dir, existed, had_config):
    """A first run that fails on its data (before any checkpoint) leaves nothing behind: the folder it created, or
    the config.yaml it wrote into an existing folder."""
    model_dir = Path(model_dir)
    if had_config or any(checkpoints_dir(model_dir).glob("ckpt-*")):
        return
    if not existed:
        shutil.rmtree(model_dir, ignore_errors=True)
        return
    config_path(model_dir).unlink(missing_ok=True)
    for entry in (CHECKPOINTS, "logs", "samples"):
        if (model_dir / entry).is_dir() and not any((model_dir / entry).iterdir()):
            (model_dir / entry).rmdir()


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints


def checkpoint_manager(model_dir, trainer=None, max_to_keep=3, writable=True):
    """The `CheckpointManager` of model_dir/checkpoints (trainer None: listing and validation only)."""
    from tf_faceedit.training.checkpoint import CheckpointManager

    return CheckpointManager(checkpoints_dir(model_dir), trainer, max_to_keep, writable=writable)


def latest_checkpoint(model_dir):
    """The newest intact checkpoint folder of a run, or None when it has none. Newer damaged ones are skipped with
    a warning; TrainingError when there are checkpoints but none is intact."""
    return checkpoint_manager(Path(model_dir).expanduser()).latest()


# ---------------------------------------------------------------------------------------------------------------
# Restoring a trainer for inference


def _has_field(cfg, dotted):
    obj = cfg
    for part in dotted.split("."):
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True


INFERENCE_PRECISIONS = {"float32": "none", "bfloat16": "mixed_bfloat16"}  # precision -> train.mixed_precision


def check_inference_precision(value):
    """ConfigError (one line) unless `value` is an inference precision ("float32" or "bfloat16")."""
    if value not in INFERENCE_PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(INFERENCE_PRECISIONS)}, got {value!r}")


def build_inference_trainer(cfg, precision="float32"):
    """The method's trainer for `cfg`, built for inference: the method's declared inference overrides applied
    (`Capabilities.inference_overrides`: nothing training-only, such as VGG16, is built) and float32 variables
    whatever the training precision was (a run of any precision, and a float16 zoo entry once loaded, hold float32
    weights). `precision`: the networks' compute dtype, "float32" or "bfloat16" (Keras' mixed_bfloat16 policy:
    float32 variables and outputs, bfloat16 matmuls/convolutions; fast on CPUs with AMX or AVX512_BF16 and on
    GPUs, outputs within about a level of float32's)."""
    from tf_faceedit.training import precision as precisions

    check_inference_precision(precision)
    build_cfg = cfg
    for field, value in registry.get(cfg.method).capabilities.inference_overrides.items():
        if _has_field(build_cfg, field):
            build_cfg = build_cfg.override(f"{field}={value}")
    with precisions.policy_scope(INFERENCE_PRECISIONS[precision]):
        return registry.get(cfg.method).trainer_class(build_cfg)


def restore_trainer(model_dir, checkpoint=None, precision="float32"):
    """Builds the method's trainer from `model_dir/config.yaml` and restores the networks of a checkpoint.

    Args:
      model_dir: a training run (config.yaml, checkpoints/).
      checkpoint: a `ckpt-XXXXXXXX` folder (default: the newest intact one in model_dir/checkpoints).
      precision: the networks' compute dtype, "float32" or "bfloat16" (`build_inference_trainer`).
    Returns:
      (trainer, cfg, info): the trainer at the phase (e.g. progressive stage) of the checkpoint, its config as
      trained, and {"checkpoint": path, "step": int}.
    Raises:
      ConfigError / TrainingError (one line): no config.yaml, no (intact) checkpoint, a checkpoint of another
      config or architecture.
    """
    model_dir = Path(model_dir)
    cfg = load_config(model_dir)
    saved = saved_config_dict(model_dir)
    manager = checkpoint_manager(model_dir)  # validates once; the trainer is set below
    if checkpoint is None:
        path = manager.latest()
        if path is None:
            raise TrainingError(f"--model_dir {model_dir} has no checkpoint (train it first)")
    else:
        path = Path(checkpoint)
        if not path.is_dir():
            raise TrainingError(f"--checkpoint {path} is not a checkpoint folder")
        reason = manager.check(path)
        if reason is not None:
            raise TrainingError(f"--checkpoint {path} is damaged or incomplete: {reason}")
        other = saved_config_dict(path.parent.parent) if path.parent.name == CHECKPOINTS else None
        if other is not None:
            changed = blocking_changes(other, saved)
            if changed:
                raise ConfigError(
                    f"--checkpoint {path} was written with another config than --model_dir "
                    f"{model_dir} (changed: {', '.join(changed)})"
                )
    trainer = build_inference_trainer(cfg, precision)
    manager.trainer = trainer
    state = manager.peek(path)
    trainer.set_phase(trainer.phase_of_checkpoint(state["step"]))  # the networks' graph (progressive stage)
    manager.restore_networks(path)
    return trainer, cfg, {"checkpoint": str(path), "step": int(state["step"])}
