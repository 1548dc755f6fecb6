"""Config resolution: the typed, validated config of a run, from its method's paper defaults, a preset, a saved run
and the command line.

    cfg = resolve_config(method="sagan", model_dir="/tmp/run", config_file="sagan_quick",
                         overrides=["train.steps=50"], data_dir="/data/celeba")

The order: the config class's defaults (the paper) <- the preset YAML (`--config`, a name from `configs/` or a file)
<- `--data_dir` <- `--set` overrides. Without a preset, an existing `model_dir/config.yaml` is the base, so
`--model_dir=RUN` alone resumes. The training driver (`training/driver.py`) takes the result.
"""

import logging
from pathlib import Path

from tf_faceedit import config as config_lib
from tf_faceedit import configs as presets
from tf_faceedit import io_util, registry
from tf_faceedit.training import run_dir

log = logging.getLogger("tf_faceedit")


def resolve_config(method=None, model_dir=None, config_file=None, overrides=(), data_dir=None, use_saved=True):
    """Builds the typed, validated config: class defaults (paper) <- preset YAML <- --data_dir <- --set overrides.

    Without `config_file`, an existing `model_dir/config.yaml` is the base (unless `use_saved=False`, as with
    --overwrite), so `--model_dir=RUN` alone resumes.
    """
    if model_dir:
        io_util.check_output_dir(model_dir, "--model_dir")  # a file, or a folder we cannot write: one line, first
    saved = run_dir.saved_config_dict(model_dir) if model_dir and use_saved else None
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
