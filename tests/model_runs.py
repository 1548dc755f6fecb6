"""Tiny model_dirs for the export / load tests: a method's tiny config, built and checkpointed (no training steps,
so they are fast), or trained for a step with `driver.run`."""

import functools
from pathlib import Path

from tests import helpers
from tf_faceedit import registry
from tf_faceedit.training import run_dir
from tf_faceedit.training.checkpoint import CheckpointManager


def tiny_config_builder(method):
    """`tiny_config` bound to a registered method: `(data_dir, **overrides) -> config`, or None when tests/helpers.py
    TINY has no entry for it."""
    return functools.partial(helpers.tiny_config, method) if method in helpers.TINY else None


def method_params(fast=None):
    """pytest params over every registered method; a method without a tiny config is skipped, saying so. With
    `fast` (a set of names), the other methods are marked slow."""
    import pytest

    from tf_faceedit.serving.processing import TASKS

    params = []
    for name in registry.names():
        task = registry.get(name).trainer_class.task
        marks = []
        if task not in TASKS:
            marks = [
                pytest.mark.skip(
                    reason=f"method {name!r} has task {task!r}: export and load() serve {', '.join(TASKS)} models"
                )
            ]
        elif not tiny_config_builder(name):
            marks = [pytest.mark.skip(reason=f"no tiny config for method {name!r}: add it to tests/helpers.py TINY")]
        elif fast is not None and name not in fast:
            marks = [pytest.mark.slow]
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def checkpointed_run(method, data_dir, model_dir, **overrides):
    """Writes model_dir/config.yaml and one checkpoint of the freshly built (seeded) networks at the end of the
    tiny schedule (`train.steps`, the last phase: e.g. pggan_completion's final stage with alpha 1).
    Returns (model_dir, trainer)."""
    cfg = tiny_config_builder(method)(data_dir, **overrides)
    model_dir = run_dir.prepare(cfg, Path(model_dir))
    import keras

    keras.utils.set_random_seed(cfg.train.seed)
    trainer = registry.get(method).trainer_class(cfg)
    trainer.compile(optimizers=trainer.make_optimizers())
    trainer.step.assign(cfg.train.steps)
    trainer.set_phase(trainer.phase_at(cfg.train.steps - 1))
    manager = CheckpointManager(model_dir / "checkpoints", trainer)
    manager.save(cfg.train.steps, extra_state=trainer.phase_state())
    return model_dir, trainer


_EXPORTS = {}


def exported_run(method, tmp_path_factory, data_dir):
    """A checkpointed tiny run of `method` and its export (version 1), made once per test session and shared by
    the test modules: namespace(model_dir, trainer, export_dir, result)."""
    import types

    from tf_faceedit.serving import export_lib

    if method not in _EXPORTS:
        root = tmp_path_factory.mktemp(f"exported_{method}")
        model_dir, trainer = checkpointed_run(method, data_dir, root / "run")
        result = export_lib.export(model_dir, root / "exports" / method / "1")
        _EXPORTS[method] = types.SimpleNamespace(
            model_dir=model_dir, trainer=trainer, export_dir=Path(result["export_dir"]), result=result
        )
    return _EXPORTS[method]
