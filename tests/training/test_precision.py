"""train.mixed_precision and train.jit_compile: every method trains 2 steps with finite losses under each option, the
networks' image/attention outputs and the losses are float32, float16 uses a LossScaleOptimizer, checkpoints load
across precisions, the global dtype policy never leaks out of a run, and load()/export work on a mixed run.

Default tier: the cheap checks (sagan under mixed_bfloat16, the policy never leaking); the method x option matrix,
the mixed_float16 run resumed in float32 and the export of a mixed run are marked slow (9-40 s each)."""

import keras
import numpy as np
import pytest

from tests.model_runs import tiny_config_builder
from tf_faceedit import registry
from tf_faceedit.errors import ConfigError
from tf_faceedit.training import driver, precision

METHODS = ["sagan", "attentiongan", "pggan_completion", "fader", "icgan", "classifier"]
OPTIONS = {
    "mixed_float16": {"train.mixed_precision": "mixed_float16"},
    "mixed_bfloat16": {"train.mixed_precision": "mixed_bfloat16"},
    "xla": {"train.jit_compile": "true"},
}
# every option x method case is slow-tier (9-40 s each); the default tier keeps sagan under mixed_bfloat16 below
FAST = set()


def _tiny(method, data_dir, **overrides):
    cfg = tiny_config_builder(method)(data_dir)
    if cfg.method in ("sagan", "attentiongan", "fader", "classifier"):  # 2 steps (phased methods keep their schedule)
        overrides = {"train.steps": 2, **overrides}
    for key, value in overrides.items():
        cfg = cfg.override(f"{key}={value}")
    return cfg.validate()


@pytest.fixture(autouse=True)
def _policy_is_float32_around_each_test():
    assert keras.config.dtype_policy().name == "float32"
    yield
    assert keras.config.dtype_policy().name == "float32", "a run leaked its dtype policy"


def _matrix():
    params = []
    for method in METHODS:
        for option in OPTIONS:
            marks = [] if (method, option) in FAST else [pytest.mark.slow]
            params.append(pytest.param(method, option, marks=marks, id=f"{method}-{option}"))
    return params


@pytest.mark.parametrize("method,option", _matrix())
def test_trains_with_finite_losses(method, option, synthetic_celeba, tmp_path):
    cfg = _tiny(method, synthetic_celeba, **OPTIONS[option])
    result = driver.run(cfg, tmp_path / "run")
    assert result["step"] == cfg.train.steps
    assert result["logs"] and all(np.isfinite(v) for v in result["logs"].values()), result["logs"]
    assert keras.config.dtype_policy().name == "float32"  # reset after the run


@pytest.mark.parametrize("mixed", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_networks_compute_low_precision_but_output_float32(mixed, synthetic_celeba):
    cfg = _tiny("sagan", synthetic_celeba, **{"train.mixed_precision": mixed})
    with precision.policy_scope(mixed):
        trainer = registry.get("sagan").trainer_class(cfg)
    assert keras.config.dtype_policy().name == "float32"
    generator = trainer.generator
    assert {w.dtype for w in generator.weights} == {"float32"}  # checkpoints are precision-independent
    compute = {layer.compute_dtype for layer in generator._flatten_layers() if layer.weights}
    assert mixed.split("_")[1] in compute
    batch = {"image": keras.ops.zeros((2, 32, 32, 3)), "attributes": keras.ops.ones((2, 1))}
    out = generator(batch)
    for key in ("image", "attention", "edited"):
        assert keras.backend.standardize_dtype(out[key].dtype) == "float32", key
    losses = trainer.generator_losses(trainer.prepare_batch(batch, trainer.seed_generator), trainer.seed_generator)
    assert {keras.backend.standardize_dtype(v.dtype) for v in losses.values()} == {"float32"}


def test_float16_uses_loss_scaling_and_float32_does_not(synthetic_celeba):
    for mixed, scaled in [("mixed_float16", True), ("none", False)]:
        cfg = _tiny("sagan", synthetic_celeba, **{"train.mixed_precision": mixed})
        with precision.policy_scope(mixed):
            trainer = registry.get("sagan").trainer_class(cfg)
        trainer.compile(optimizers=trainer.make_optimizers())
        assert bool(trainer._loss_scalers) == scaled
        if scaled:
            assert isinstance(trainer._loss_scalers["g_optimizer"], keras.optimizers.LossScaleOptimizer)
            assert trainer._loss_scalers["g_optimizer"].inner_optimizer is trainer.g_optimizer


def test_jit_compile_reaches_compile(synthetic_celeba):
    for value, expected in [("true", True), ("false", False)]:
        cfg = _tiny("classifier", synthetic_celeba, **{"train.jit_compile": value})
        trainer = registry.get("classifier").trainer_class(cfg)
        trainer.compile(optimizers=trainer.make_optimizers())
        assert trainer.jit_compile is expected


def _mixed_run_resumed_in_float32(data_dir, run_dir):
    cfg = _tiny("sagan", data_dir, **{"train.mixed_precision": "mixed_float16"})
    first = driver.run(cfg, run_dir)
    assert first["step"] == 2 and all(np.isfinite(v) for v in first["logs"].values()), first["logs"]
    # the same run goes on in float32 from the mixed checkpoint (weights and optimizer slots are float32)
    longer = cfg.override("train.mixed_precision=none").override("train.steps=3")
    result = driver.run(longer, run_dir)
    assert result["step"] == 3 and all(np.isfinite(v) for v in result["logs"].values()), result["logs"]
    return run_dir


@pytest.mark.slow  # two runs (~40 s)
def test_mixed_float16_run_resumes_in_float32_and_loads(synthetic_celeba, tmp_path):
    from tf_faceedit import load

    run_dir = _mixed_run_resumed_in_float32(synthetic_celeba, tmp_path / "run")
    model = load(run_dir)
    out = model.edit(np.full((1, 40, 36, 3), 128, np.uint8), {"Eyeglasses": 1})
    assert out["image"].dtype == np.uint8 and out["image"].shape == (1, 40, 36, 3)


@pytest.mark.slow
def test_mixed_run_exports(synthetic_celeba, tmp_path):
    from tf_faceedit.serving import export_lib

    cfg = _tiny("sagan", synthetic_celeba, **{"train.mixed_precision": "mixed_bfloat16"})
    run_dir = tmp_path / "run"
    driver.run(cfg, run_dir)
    exported = export_lib.export(run_dir, tmp_path / "export" / "1")
    assert (tmp_path / "export" / "1" / "saved_model.pb").is_file() and exported["step"] == 2


def test_bad_values_name_the_field(synthetic_celeba):
    with pytest.raises(ConfigError, match="train.mixed_precision"):
        _tiny("sagan", synthetic_celeba, **{"train.mixed_precision": "float16"})
    with pytest.raises(ConfigError, match="train.jit_compile"):
        _tiny("sagan", synthetic_celeba, **{"train.jit_compile": "maybe"})
    assert _tiny("sagan", synthetic_celeba, **{"train.jit_compile": True}).train.jit_compile == "true"


@pytest.mark.parametrize(
    "flags, accelerator, expected",
    [
        ("fpu sse avx2 fma avx512f amx_tile amx_bf16 amx_int8", False, "mixed_bfloat16"),
        ("fpu sse avx2 fma avx512f avx512_bf16", False, "mixed_bfloat16"),
        ("fpu sse avx2 fma avx512f avx512bw", False, "none"),  # AVX-512 without bf16: emulated, slower
        ("fpu sse avx2 fma", False, "none"),
        ("fpu sse avx2 fma amx_bf16", True, "none"),  # a GPU does the work
    ],
)
def test_auto_precision_follows_the_machine(flags, accelerator, expected, tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    monkeypatch.setattr(precision, "cpu_info", lambda: precision._read_cpuinfo(cpuinfo))
    monkeypatch.setattr(precision.native, "accelerator_visible", lambda: accelerator)
    precision._auto.cache_clear()
    try:
        assert precision.cpu_info() == ("Test CPU", set(flags.split()))
        assert precision.resolve("auto") == expected
        assert precision.policy_name("auto") == precision.POLICIES[expected]
        assert not precision.needs_loss_scaling("auto")
        for value in ("none", "mixed_float16", "mixed_bfloat16"):
            assert precision.resolve(value) == value
    finally:
        precision._auto.cache_clear()


def test_auto_precision_builds_and_trains(synthetic_celeba, tmp_path, caplog):
    cfg = _tiny("sagan", synthetic_celeba, **{"train.mixed_precision": "auto"})
    with caplog.at_level("INFO", logger="tf_faceedit"):
        driver.run(cfg, tmp_path / "run")
    resolved = precision.resolve("auto")
    assert f"train.mixed_precision auto: {resolved} on this machine" in caplog.text
    trainer = registry.get("sagan").trainer_class
    with precision.policy_scope("auto"):
        built = trainer(cfg)
    assert built.networks["generator"].dtype_policy.name == precision.POLICIES[resolved]
    assert keras.config.dtype_policy().name == "float32"  # restored
