"""One model source: which model a name or a folder is, and its trainer restored (keras-hub's `from_preset`: one
loader for a built-in name, a handle or a local folder). `tf_faceedit.load`, export, the attribute judge, the demo,
evaluate and the benchmarks all go through here; nothing else tells the kinds apart.

    restored = restore("runs/sagan")                     # a training run: its newest intact checkpoint
    restored = restore("sagan-eyeglasses-64")            # a zoo name (or an entry's folder): its files checked first
    restored.trainer, restored.config, restored.info     # info: {"checkpoint", "step"} (+ "zoo", "dtype")
    restore(with_data("sagan-eyeglasses-64", partition_file=P))   # the data locations of this machine
    restore(with_options("fader-smiling-64", residual_gain=1.5))   # an inference option of the method (--option)
    locate("exports/sagan/1")                            # ModelSource(kind="export", path=...): what it is, no loading

A source is, in this order (`locate`):
  zoo     a `zoo.Entry`, an entry's own folder (`<zoo>/<name>`), or a string of the form of a zoo name when no
          training run or export folder of that name exists here (a local folder wins)
  export  a folder holding saved_model.pb (an export version folder; it also carries a config, under assets.extra/)
  run     a folder holding config.yaml (a training run: `training/run_dir.py`)
A string of the form of a zoo name that is none of these is a ConfigError listing the zoo's names; any other path
that is neither a run nor an export locates with kind None (`restore` says what is wrong with it).

The two rules every restore follows are written once: a saved config dict becomes the typed config of its method by
`config.from_saved`, and a checkpoint (or an entry) at step s holds the phase of step s - 1
(`GANTrainer.phase_of_checkpoint`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tf_faceedit import config as config_lib
from tf_faceedit.errors import ConfigError
from tf_faceedit.pretrained import zoo
from tf_faceedit.training import run_dir

KINDS = ("zoo", "run", "export")


# ---------------------------------------------------------------------------------------------------------------
# A source with the user's data locations


@dataclasses.dataclass(frozen=True)
class SourceWithData(os.PathLike):
    """A model source (run folder, export folder or zoo name) and replacements of its data config's file locations
    (`with_data`) and of its inference options (`with_options`). Path-like: it reads as `source` wherever a path is
    expected."""

    source: str | os.PathLike
    data: tuple  # ((field, value), ...) of `zoo.MACHINE_PATH_FIELDS`
    options: tuple = ()  # ((field, value), ...) of the method's model config's INFERENCE_OPTIONS

    def __fspath__(self):
        return os.fspath(self.source)

    def __str__(self):
        return os.fspath(self.source)


def with_data(source: str | os.PathLike, **fields: str) -> SourceWithData:
    """`source` whose loaded config takes `fields` (data_dir, image_dir, attr_file, partition_file: where the data
    is on THIS machine) instead of the run's; e.g. `load(with_data("sagan-eyeglasses-64", partition_file=P))`.
    A relative value is read inside data_dir, as in training. ConfigError naming an unknown field."""
    for name, value in fields.items():
        if name not in zoo.MACHINE_PATH_FIELDS:
            raise ConfigError(
                f"--set data.{name}: only the data locations can be set here "
                f"({', '.join('data.' + f for f in zoo.MACHINE_PATH_FIELDS)})"
            )
        if not isinstance(value, (str, os.PathLike)):
            raise ConfigError(f"--set data.{name} must be a path, got {value!r}")
    options = ()
    if isinstance(source, SourceWithData):
        fields = {**dict(source.data), **fields}
        source, options = source.source, source.options
    return SourceWithData(source, tuple(sorted((name, os.fspath(value)) for name, value in fields.items())), options)


def with_options(source: str | os.PathLike, **options: Any) -> SourceWithData:
    """`source` (a run or a zoo name) with inference options of its method set in the restored config, e.g.
    `load(with_options("fader-smiling-64", residual_gain=1.5))`: the fields its model config lists in
    `INFERENCE_OPTIONS` (they change what inference computes, not the weights). A string value is read as YAML
    ("2" -> 2, "true" -> True), as `--option model.FIELD=VALUE` gives it. `restore` checks the names and values."""
    data = ()
    if isinstance(source, SourceWithData):
        options = {**dict(source.options), **options}
        source, data = source.source, source.data
    return SourceWithData(source, data, tuple(sorted(options.items())))


# ---------------------------------------------------------------------------------------------------------------
# What a source is


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """What a source names (see the module docstring).

    Attributes:
      kind: "zoo", "run", "export", or None (a path that is neither a run nor an export).
      path: the entry's folder, the run folder, the export folder (or the path given, for kind None).
      entry: the `zoo.Entry` (kind "zoo"), else None.
      data: {field: value} data locations to set in the loaded config (`with_data`).
      options: {field: value} inference options to set in the loaded model config (`with_options`).
    """

    kind: str | None
    path: Path
    entry: Any = None
    data: Mapping[str, str] = dataclasses.field(default_factory=dict)
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __fspath__(self):
        return os.fspath(self.path)

    def __str__(self):
        return os.fspath(self.path)


def locate(source: Any) -> ModelSource:
    """The `ModelSource` of `source`: a zoo name, a `zoo.Entry`, an entry's folder, a run folder or an export folder
    (a str, a path, `with_data(...)` of one, or a `ModelSource`, returned as it is). ConfigError listing the zoo's
    names for a string of the form of a zoo name that is none of them."""
    if isinstance(source, ModelSource):
        return source
    data, options = {}, {}
    if isinstance(source, SourceWithData):
        source, data, options = source.source, dict(source.data), dict(source.options)
    if isinstance(source, zoo.Entry):
        return ModelSource("zoo", source.directory, source, data, options)
    if not isinstance(source, (str, os.PathLike)):
        raise ConfigError(f"a model source is a run folder, an export folder or a zoo name, got {source!r}")
    text = os.fspath(source)
    path = Path(text).expanduser()
    kind = run_dir.kind(path)
    if kind == "run":
        entry = zoo.entry_at(path)
        if entry is not None:
            return ModelSource("zoo", entry.directory, entry, data, options)
    if kind is None and zoo.is_name(text):
        entry = zoo.get(text)  # ConfigError listing the known names
        return ModelSource("zoo", entry.directory, entry, data, options)
    return ModelSource(kind, path, None, data, options)


# ---------------------------------------------------------------------------------------------------------------
# Restoring it


@dataclasses.dataclass(frozen=True)
class Restored:
    """A restored model.

    Attributes:
      trainer: the method's trainer with the networks' weights (None for an export: load its SavedModel).
      config: the typed config it was trained with, `with_data` locations applied (None for an export).
      info: {"checkpoint", "step"} of a run; {"zoo", "step", "dtype", "checkpoint": the entry's folder} of a zoo
        entry; {"export_dir"} of an export.
      source: the `ModelSource`.
    """

    trainer: Any
    config: Any
    info: dict
    source: ModelSource


def _apply_data(cfg, data):
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **data)) if data else cfg


def inference_options(cfg) -> dict:
    """{field: value} of the inference options of `cfg`'s model config (its `INFERENCE_OPTIONS`), as the model runs
    them: what a report states beside the model's name. {} for a method without any, or no config (an export)."""
    if cfg is None:
        return {}
    return {name: getattr(cfg.model, name) for name in getattr(type(cfg.model), "INFERENCE_OPTIONS", ())}


def _apply_options(trainer, cfg, options):
    """The config with `options` set in its model config (checked: names in its INFERENCE_OPTIONS, values by the
    config's types and validation), also made the trainer's, which reads them at inference."""
    if not options:
        return cfg
    allowed = getattr(type(cfg.model), "INFERENCE_OPTIONS", ())
    for name, value in options.items():
        if name not in allowed:
            known = f"its options: {', '.join('model.' + a for a in allowed)}" if allowed else "it has none"
            raise ConfigError(f"--option model.{name}: not an inference option of {cfg.method} ({known})")
        if isinstance(value, str):
            value = config_lib.parse_value(value)
        cfg = cfg.merge_dict({"model": {name: value}}, source=f"--option model.{name}")
    cfg.model.validate()
    trainer.config = dataclasses.replace(trainer.config, model=cfg.model)
    return cfg


def restore(
    source: Any,
    checkpoint: str | os.PathLike | None = None,
    precision: str = "float32",
    exports: bool = False,
    flag: str = "--model_dir",
) -> Restored:
    """The trainer of `source` (see `locate`), built for inference (`run_dir.build_inference_trainer`).

    Args:
      source: a zoo name, an entry or its folder, a run folder, or an export folder (with `exports`); `with_data`.
      checkpoint: for a run, a `ckpt-XXXXXXXX` folder (default: the newest intact one; damaged newer ones are
        skipped with a warning).
      precision: the networks' compute dtype, "float32" or "bfloat16" (a run or a zoo entry).
      exports: accept an export folder: `Restored(trainer=None, config=None, info={"export_dir"})` (the caller loads
        its SavedModel); without it an export is a ConfigError.
      flag: the flag named in the errors about a folder.
    Raises:
      ConfigError / TrainingError / DataError (one line): an unknown zoo name, a folder that is neither, no (intact)
      checkpoint, a zoo file that does not match the manifest, an option that does not apply to the source's kind.
    """
    source = locate(source)
    path, data = source.path, dict(source.data)
    if source.kind == "zoo":
        if checkpoint is not None:
            raise ConfigError(f"checkpoint= applies to a training run; {source.entry.name} is a zoo model")
        trainer, cfg, info = zoo.restore_entry(source.entry, precision)
    elif source.kind == "run":
        trainer, cfg, info = run_dir.restore_trainer(path, checkpoint, precision)
    elif source.kind == "export" and exports:
        if checkpoint is not None:
            raise ConfigError(f"checkpoint= applies to a model_dir; {path} is an export")
        if precision != "float32":
            raise ConfigError(f"precision= applies to a model_dir or a zoo name; {path} is an export")
        if data:
            raise ConfigError(f"data locations (--set data.*) apply to a model_dir or a zoo name; {path} is an export")
        if source.options:
            raise ConfigError(
                f"inference options (--option model.*) apply to a model_dir or a zoo name; {path} is an export "
                "(it keeps the options it was exported with)"
            )
        return Restored(None, None, {"export_dir": str(path)}, source)
    elif exports:
        raise ConfigError(
            f"{path} is neither a training run (no config.yaml) nor an export version dir (no saved_model.pb)"
        )
    elif source.kind == "export":
        raise ConfigError(f"{flag} {path} is an export (saved_model.pb); give its training run or a zoo name")
    else:
        raise ConfigError(f"{flag} {path} has no config.yaml (is it a training run's folder?)")
    cfg = _apply_options(trainer, cfg, dict(source.options))
    return Restored(trainer, _apply_data(cfg, data), info, source)
