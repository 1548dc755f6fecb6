"""Typed experiment configs: dataclasses with YAML presets, `--set a.b=value` overrides and validation.

An experiment config has five parts: `method` (registered name), `data` (`DataConfig`), `model` and `loss`
(method-specific dataclasses) and `train` (`TrainConfig`). Paper defaults live in the dataclass defaults of each
method's config class; YAML presets in the top-level `configs/` (by name: `--config=sagan_quick`) override them;
`--set` overrides come last. The resolved config is written to `model_dir/config.yaml`, and
evaluate/edit/export/resume reload it from there.

Field errors name the dotted field, e.g. `train.n_critic must be >= 1, got 0`.
"""

import copy
import dataclasses
import typing
from pathlib import Path

import yaml

from tf_faceedit.errors import ConfigError, suggest

# ---------------------------------------------------------------------------------------------------------------
# Validation helpers


def parse_value(raw):
    """The value of a `--set key=VALUE` (or `--option`) string, read as YAML ("2" -> 2, "true" -> True); "" for an
    empty one, the string itself where it is not YAML."""
    try:
        return yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw


def check(condition, field, message):
    """Raises ConfigError(`field message`) when `condition` is false."""
    if not condition:
        raise ConfigError(f"{field} {message}")


def check_choice(value, field, choices):
    check(
        value in choices,
        field,
        f"must be one of {', '.join(map(str, choices))}, got {value!r}{suggest(value, choices)}",
    )


def check_range(value, field, low=None, high=None, low_inclusive=True):
    if low is not None:
        ok = value >= low if low_inclusive else value > low
        check(ok, field, f"must be {'>=' if low_inclusive else '>'} {low}, got {value}")
    if high is not None:
        check(value <= high, field, f"must be <= {high}, got {value}")


# ---------------------------------------------------------------------------------------------------------------
# Shared sections


@dataclasses.dataclass
class MaskConfig:
    """Random masks generated inside the input pipeline (1 = hole).

    kind: "none" (no mask in the batch), "noise" (rectangle filled with thresholded upsampled uniform noise,
      Chen & Zhong 2018), "rect" (filled rectangle), "mixed" (noise or rect, each with probability 1/2), "parts" (a
      solid box over the eyes, nose or mouth of an aligned face, sides in [part_min_ratio, part_max_ratio] * side)
      or "noise+parts" (noise or parts, each with probability 1/2).
    min_ratio, max_ratio: the rectangle's height and width are each drawn in [min_ratio, max_ratio] * image side.
    noise_resolution: side of the low-resolution uniform noise that is upsampled bilinearly to the rectangle.
    threshold: noise values above it become hole pixels.
    """

    kind: str = "none"
    min_ratio: float = 0.25
    max_ratio: float = 0.5
    noise_resolution: int = 4
    threshold: float = 0.5
    part_min_ratio: float = 0.30
    part_max_ratio: float = 0.45

    def validate(self, prefix="data.mask"):
        check_choice(self.kind, f"{prefix}.kind", ["none", "noise", "rect", "mixed", "parts", "noise+parts"])
        check_range(self.part_min_ratio, f"{prefix}.part_min_ratio", 0.0, 1.0, low_inclusive=False)
        check_range(self.part_max_ratio, f"{prefix}.part_max_ratio", self.part_min_ratio, 1.0)
        check_range(self.min_ratio, f"{prefix}.min_ratio", 0.0, 1.0, low_inclusive=False)
        check_range(self.max_ratio, f"{prefix}.max_ratio", self.min_ratio, 1.0)
        check_range(self.noise_resolution, f"{prefix}.noise_resolution", 1)
        check_range(self.threshold, f"{prefix}.threshold", 0.0, 1.0)


@dataclasses.dataclass
class DataConfig:
    """Where the images and attributes come from and how they are prepared.

    data_dir: dataset folder. CelebA format: `images/` (or `img_align_celeba/`), `list_attr_celeba.txt`,
      optional `list_eval_partition.txt`. CSV format: images (in `images/` or the folder itself) and
      `attributes.csv` with header `filename,attr1,attr2,...` and 0/1 (or -1/1) values.
    format: "auto" (detect), "celeba" or "csv".
    image_dir, attr_file, partition_file: override the default locations inside data_dir.
    attributes: attribute names to train on, in order (their values become the model's [N, K] condition).
    image_size: square side fed to the networks.
    crop_fraction: side of the centered square face crop as a fraction of min(height, width).
    random_flip: random horizontal flip on the training split.
    cache: keep decoded, resized uint8 images in memory after the first pass.
    shuffle_buffer, num_parallel_calls (-1 = AUTOTUNE).
    max_corrupt_fraction: unreadable images are skipped with a counted warning; above this fraction it fails.
    val_fraction: when no partition file exists, this fraction of images (the last ones) forms the val split.
    positive_fraction: training only; > 0 draws each training image with the first attribute of `attributes`
      present with this probability (a rare attribute, e.g. Eyeglasses on 7% of CelebA, is then seen as an input
      often enough to learn its removal); 0 (default) keeps the data's own frequencies.
    """

    data_dir: str = ""
    format: str = "auto"
    image_dir: str = ""
    attr_file: str = ""
    partition_file: str = ""
    attributes: list[str] = dataclasses.field(default_factory=lambda: ["Eyeglasses"])
    image_size: int = 128
    crop_fraction: float = 1.0
    random_flip: bool = True
    cache: bool = True
    shuffle_buffer: int = 10000
    num_parallel_calls: int = -1
    max_corrupt_fraction: float = 0.01
    val_fraction: float = 0.0
    positive_fraction: float = 0.0
    mask: MaskConfig = dataclasses.field(default_factory=MaskConfig)

    def validate(self, prefix="data"):
        check(bool(self.data_dir), f"{prefix}.data_dir", "is required (pass --data_dir=DIR)")
        check_choice(self.format, f"{prefix}.format", ["auto", "celeba", "csv"])
        check(len(self.attributes) >= 1, f"{prefix}.attributes", "must name at least one attribute")
        check(
            len(set(self.attributes)) == len(self.attributes),
            f"{prefix}.attributes",
            f"has duplicates: {self.attributes}",
        )
        check_range(self.image_size, f"{prefix}.image_size", 8)
        check(
            self.image_size & (self.image_size - 1) == 0,
            f"{prefix}.image_size",
            f"must be a power of two, got {self.image_size}",
        )
        check_range(self.crop_fraction, f"{prefix}.crop_fraction", 0.0, 1.0, low_inclusive=False)
        check_range(self.shuffle_buffer, f"{prefix}.shuffle_buffer", 1)
        check(
            self.num_parallel_calls == -1 or self.num_parallel_calls >= 1,
            f"{prefix}.num_parallel_calls",
            f"must be -1 (autotune) or >= 1, got {self.num_parallel_calls}",
        )
        check_range(self.max_corrupt_fraction, f"{prefix}.max_corrupt_fraction", 0.0, 1.0)
        check_range(self.val_fraction, f"{prefix}.val_fraction", 0.0, 0.5)
        check_range(self.positive_fraction, f"{prefix}.positive_fraction", 0.0, 1.0)
        check(
            self.positive_fraction < 1.0,
            f"{prefix}.positive_fraction",
            f"must be < 1 (0 = the data's own frequencies), got {self.positive_fraction}",
        )
        self.mask.validate(f"{prefix}.mask")


@dataclasses.dataclass
class ValidationConfig:
    """Periodic validation while training (time to quality; `training/validation.py`). Off by default.

    every: steps between validations (0: off); each writes `val/...` scalars to TensorBoard and logs/scalars.jsonl.
    num_images: the fixed first images of `split` it scores (kept small: it runs inside training).
    split: the data split it reads ("val": never the training images).
    judge: an attribute classifier (a `--method=classifier` run folder or a zoo judge name) for the edit success of
      editing methods, scored as `evaluate` scores it (the judge's reading of the edit equals the target); without
      one, editing methods report the reconstruction PSNR only. Completion methods report the hole PSNR, the
      attribute classifier its balanced accuracy on the labels (no judge needed).
    target_metric / target_value: a metric it writes (e.g. "val/edit_success", "val/hole_psnr"; higher is better)
      and the value that counts as reached; the step and training seconds of the first validation that reaches it
      are logged and written as "val/target_reached_step" / "val/target_reached_seconds".
    stop_at_target: end the run (with a checkpoint) once the target is reached.
    """

    every: int = 0
    num_images: int = 32
    split: str = "val"
    judge: str = ""
    target_metric: str = ""
    target_value: float = 0.0
    stop_at_target: bool = False

    def validate(self, prefix="train.validation"):
        check_range(self.every, f"{prefix}.every", 0)
        check_range(self.num_images, f"{prefix}.num_images", 1)
        check_choice(self.split, f"{prefix}.split", ["train", "val", "test"])
        check(
            not self.stop_at_target or bool(self.target_metric),
            f"{prefix}.stop_at_target",
            f"needs {prefix}.target_metric (the metric whose target ends the run)",
        )
        check(
            not self.target_metric or self.target_metric.startswith("val/"),
            f"{prefix}.target_metric",
            f"must name a validation metric ('val/...', e.g. val/edit_success), got {self.target_metric!r}",
        )


@dataclasses.dataclass
class TrainConfig:
    """The training loop.

    steps: training steps in total. One step = `n_critic` discriminator updates (each on its own batch) and one
      generator update, so a step reads `n_critic * batch_size` images.
    batch_size: global batch size of one update (split across replicas under a distribution strategy).
    strategy: "auto" (MirroredStrategy when more than one GPU is visible), "default", "mirrored", "multiworker".
    log_every: TensorBoard scalars and the progress bar's chunk; sample_every: PNG grid + image summary;
    checkpoint_every: checkpoint interval (a checkpoint is also written at the last step).
    mixed_precision: "none" (float32), "mixed_float16" (float16 compute with dynamic loss scaling: GPUs) or
      "mixed_bfloat16" (bfloat16 compute, no loss scaling: TPUs, recent GPUs/CPUs) or "auto" (mixed_bfloat16
      when training runs on a CPU with native bfloat16, AMX-BF16 or AVX512_BF16, where it is faster; float32
      elsewhere: on AVX2-only CPUs bfloat16 is emulated and slower; the CPU recipes use it). Variables, the images
      and attention masks the networks output, and every loss stay float32, so checkpoints load across precisions.
    jit_compile: "auto" (Keras decides), "true" (XLA-compile the train step) or "false".
    nan_policy: on a non-finite loss, "stop" (keep the last good checkpoint and raise) or "rollback" (restore the
      last good checkpoint, multiply every learning rate by `nan_lr_factor`, go on; at most `nan_max_rollbacks`
      times, then stop). Needs `nan_guard`.
    replica_seeds: fold the replica id into the seeds drawn inside the train step, so replicas draw different
      noise/targets (replica 0 draws what a single device draws).
    validation: periodic validation and a quality target (`ValidationConfig`; off by default).
    """

    steps: int = 200000
    batch_size: int = 16
    n_critic: int = 1
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    seed: int = 0
    strategy: str = "auto"
    log_every: int = 100
    sample_every: int = 1000
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    num_samples: int = 8
    sample_split: str = "val"
    nan_guard: bool = True
    verbose: int = 1
    mixed_precision: str = "none"
    jit_compile: str = "auto"
    nan_policy: str = "stop"
    nan_lr_factor: float = 0.5
    nan_max_rollbacks: int = 3
    replica_seeds: bool = True
    validation: ValidationConfig = dataclasses.field(default_factory=ValidationConfig)

    def validate(self, prefix="train"):
        for name in [
            "steps",
            "batch_size",
            "n_critic",
            "log_every",
            "sample_every",
            "checkpoint_every",
            "keep_checkpoints",
            "num_samples",
        ]:
            check_range(getattr(self, name), f"{prefix}.{name}", 1)
        for name in ["g_lr", "d_lr"]:
            check_range(getattr(self, name), f"{prefix}.{name}", 0.0, low_inclusive=False)
        for name in ["beta_1", "beta_2"]:
            check_range(getattr(self, name), f"{prefix}.{name}", 0.0, 1.0)
        check_choice(self.nan_policy, f"{prefix}.nan_policy", ["stop", "rollback"])
        check_range(self.nan_lr_factor, f"{prefix}.nan_lr_factor", 0.0, 1.0, low_inclusive=False)
        check_range(self.nan_max_rollbacks, f"{prefix}.nan_max_rollbacks", 0)
        check_choice(self.strategy, f"{prefix}.strategy", ["auto", "default", "mirrored", "multiworker"])
        check_choice(self.sample_split, f"{prefix}.sample_split", ["train", "val", "test"])
        check_choice(self.verbose, f"{prefix}.verbose", [0, 1, 2])
        check_choice(
            self.mixed_precision, f"{prefix}.mixed_precision", ["none", "mixed_float16", "mixed_bfloat16", "auto"]
        )
        self.jit_compile = str(self.jit_compile).lower()  # YAML reads true/false as booleans
        check_choice(self.jit_compile, f"{prefix}.jit_compile", ["auto", "true", "false"])
        self.validation.validate(f"{prefix}.validation")


@dataclasses.dataclass
class ExperimentConfig:
    """Base of every method's config. Subclasses replace `model`/`loss` with typed dataclasses."""

    method: str = ""
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: typing.Any = None
    loss: typing.Any = None
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def validate(self):
        """Validates every section; raises ConfigError naming the first bad field."""
        self.data.validate("data")
        self.train.validate("train")
        for section in ("model", "loss"):
            part = getattr(self, section)
            if part is not None and hasattr(part, "validate"):
                part.validate(section)
        return self

    # -- conversions -------------------------------------------------------------------------------------------
    def to_dict(self):
        return dataclasses.asdict(self)

    def to_yaml(self, path=None):
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, values, source="config"):
        return _from_dict(cls, values or {}, "", source)

    def merge_dict(self, values, source="config"):
        """Returns a copy with `values` (a nested dict, e.g. a YAML preset) applied on top."""
        merged = _deep_merge(self.to_dict(), values or {})
        return type(self).from_dict(merged, source)

    def merge_yaml(self, path):
        """Applies a YAML file, or a packaged preset by name (`tf_faceedit.configs.resolve`)."""
        from tf_faceedit import configs

        path = configs.resolve(path)
        return self.merge_dict(load_yaml(path), source=str(path))

    def override(self, assignment):
        """Applies one `a.b=value` override (value parsed as YAML) and returns a new config."""
        if "=" not in assignment:
            raise ConfigError(f"--set expects key=value, got {assignment!r}")
        key, raw = assignment.split("=", 1)
        key = key.strip()
        nested = parse_value(raw)
        for part in reversed(key.split(".")):
            nested = {part: nested}
        return self.merge_dict(nested, source=f"--set {key}")

    def apply_overrides(self, assignments):
        cfg = self
        for assignment in assignments or []:
            cfg = cfg.override(assignment)
        return cfg


def load_yaml(path, what="config file"):
    """A YAML config file -> dict. ConfigError naming the file when it is missing, a folder, unreadable, binary, not
    UTF-8, not valid YAML or not a mapping (`io_util.read_yaml`)."""
    from tf_faceedit import io_util

    return io_util.read_yaml(path, what)


def load_run_config(path):
    """A run's (or an export's) `config.yaml` -> dict, checked to be a tf_faceedit config: a registered `method`.

    Raises ConfigError naming the file (as `load_yaml`), and when it has no `method` field (another tool's
    config.yaml) or names a method that is not registered.
    """
    from tf_faceedit import registry

    values = load_yaml(path, "run config")
    method = values.get("method")
    if not isinstance(method, str) or not method:
        raise ConfigError(
            f"{path} is not a tf_faceedit config: it has no 'method' field (another tool's "
            "config.yaml?); use another folder"
        )
    available = registry.names()
    if method not in available:
        raise ConfigError(
            f"{path} names method {method!r}, which is not registered{suggest(method, available)} "
            f"(registered: {', '.join(available)})"
        )
    return values


def from_saved(values, source="config"):
    """A saved config dict (a run's or a zoo entry's config.yaml, as `load_run_config` reads it) -> the typed config
    of the method it names: the class defaults (paper) under it, so a field added to the library since it was written
    takes its default. Not validated (the caller validates: a released config has no data_dir by design)."""
    from tf_faceedit import registry

    return registry.get((values or {}).get("method", "")).config_class().merge_dict(values, source=source)


def _deep_merge(base, update):
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _from_dict(cls, values, prefix, source):
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping in {source}, got {values!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in values if k not in fields]
    if unknown:
        key = unknown[0]
        raise ConfigError(f"unknown config field {prefix}{key} in {source}{suggest(key, list(fields))}")
    kwargs = {}
    for name, value in values.items():
        kwargs[name] = _coerce(value, hints[name], f"{prefix}{name}", source)
    return cls(**kwargs)


def _coerce(value, hint, field, source):
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _from_dict(hint, value, field + ".", source)
    if hint is typing.Any or hint is None:
        return value
    if origin in (list, list):
        (item_type,) = typing.get_args(hint) or (typing.Any,)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{field} must be a list, got {value!r} (in {source})")
        return [_coerce(v, item_type, field, source) for v in value]
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{field} must be true or false, got {value!r} (in {source})")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ConfigError(f"{field} must be an integer, got {value!r} (in {source})")
        return int(value)
    if hint is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{field} must be a number, got {value!r} (in {source})")
        return float(value)
    if hint is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{field} must be a string, got {value!r} (in {source})")
        return "" if value is None else str(value)
    return value


def diff(a, b, prefix=""):
    """Lists the dotted fields whose values differ between two config dicts."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out.extend(diff(va, vb, f"{prefix}{key}."))
        elif va != vb:
            out.append(f"{prefix}{key}")
    return out
