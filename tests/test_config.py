from pathlib import Path

import pytest

from tf_faceedit import configs as presets
from tf_faceedit import registry
from tf_faceedit.config import ExperimentConfig, diff, load_yaml
from tf_faceedit.configs import resolution
from tf_faceedit.errors import ConfigError
from tf_faceedit.methods.sagan import SaGANConfig


def test_yaml_round_trip(tmp_path):
    cfg = SaGANConfig().override("data.data_dir=/x").override("data.attributes=[Eyeglasses, Smiling]")
    path = tmp_path / "c.yaml"
    cfg.to_yaml(path)
    again = SaGANConfig.from_dict(load_yaml(path))
    assert again == cfg
    assert again.data.attributes == ["Eyeglasses", "Smiling"]


def test_override_coerces_types():
    cfg = SaGANConfig()
    cfg = cfg.override("train.g_lr=1e-3").override("data.random_flip=false").override("data.attributes=A,B")
    cfg = cfg.override("train.steps=10").override("loss.lambda_gp=5")
    assert cfg.train.g_lr == pytest.approx(1e-3) and isinstance(cfg.train.g_lr, float)
    assert cfg.data.random_flip is False
    assert cfg.data.attributes == ["A", "B"]
    assert cfg.train.steps == 10 and isinstance(cfg.train.steps, int)
    assert isinstance(cfg.loss.lambda_gp, float)


@pytest.mark.parametrize(
    "assignment, needle",
    [
        ("train.n_critc=3", "did you mean: n_critic"),
        ("train.steps=abc", "train.steps must be an integer"),
        ("train.steps=1.5", "train.steps must be an integer"),
        ("data.random_flip=maybe", "data.random_flip must be true or false"),
        ("nokey", "key=value"),
        ("model.g_filterz=3", "model.g_filterz"),
    ],
)
def test_override_errors_name_the_field(assignment, needle):
    with pytest.raises(ConfigError, match=needle):
        SaGANConfig().override(assignment)


@pytest.mark.parametrize(
    "assignment, needle",
    [
        ("train.n_critic=0", "train.n_critic must be >= 1, got 0"),
        ("data.image_size=48", "data.image_size must be a power of two"),
        ("loss.adversarial=wgangp", "loss.adversarial must be one of"),
        ("train.strategy=tpu", "train.strategy must be one of"),
        ("data.mask.kind=noise", "data.mask.kind must be none for SaGAN"),
        ("data.attributes=A,A", "data.attributes has duplicates"),
    ],
)
def test_validation_errors(assignment, needle):
    cfg = SaGANConfig().override("data.data_dir=/x").override(assignment)
    with pytest.raises(ConfigError, match=needle):
        cfg.validate()


def test_data_dir_required():
    with pytest.raises(ConfigError, match="data.data_dir is required"):
        SaGANConfig().validate()


@pytest.mark.parametrize("name", presets.names())
def test_presets_load_and_validate(name):
    values = load_yaml(presets.path(name))
    assert name.startswith(values["method"] + "_"), f"preset {name} is for method {values['method']}"
    spec = registry.get(values["method"])
    cfg = spec.config_class().merge_dict(values, source=name).override("data.data_dir=/x")
    cfg.validate()


def test_presets_resolve_by_name_legacy_path_or_file(tmp_path, monkeypatch):
    assert "sagan_quick" in presets.names() and len(presets.names()) >= 10
    packaged = presets.path("sagan_quick")
    # the checkout's top-level configs/ (an installed wheel: tf_faceedit/configs/presets/, tests/test_wheel.py)
    assert packaged.is_file() and packaged.parent == Path(__file__).resolve().parents[1] / "configs"
    assert presets.resolve("sagan_quick") == presets.resolve("sagan_quick.yaml") == packaged
    monkeypatch.chdir(tmp_path)  # not the checkout: the pre-0.2 path falls back to the packaged preset
    assert presets.resolve("configs/sagan_quick.yaml") == packaged
    mine = tmp_path / "configs" / "sagan_quick.yaml"  # ...unless that file exists: a file of yours wins
    mine.parent.mkdir()
    mine.write_text("method: sagan\ntrain:\n  steps: 7\n")
    assert presets.resolve("configs/sagan_quick.yaml").resolve() == mine
    assert presets.resolve(str(tmp_path / "nowhere" / "x.yaml")) == tmp_path / "nowhere" / "x.yaml"
    with pytest.raises(ConfigError, match=r"no packaged preset 'sagan_quik' \(did you mean: sagan_quick"):
        presets.resolve("sagan_quik")
    with pytest.raises(ConfigError, match="config file not found|nowhere"):
        SaGANConfig().merge_yaml(tmp_path / "nowhere" / "x.yaml")


def test_train_resolves_a_preset_by_name(tmp_path):
    cfg = resolution.resolve_config("sagan", tmp_path / "run", "sagan_quick", ["train.steps=5"], str(tmp_path))
    paper = resolution.resolve_config("sagan", tmp_path / "run2", "sagan_celeba128", [], str(tmp_path))
    assert (cfg.model.g_filters, cfg.data.image_size, cfg.train.steps) == (16, 64, 5)
    assert cfg.model.g_filters != paper.model.g_filters and paper.data.image_size == 128
    with pytest.raises(ConfigError, match="is a preset for method 'fader'"):
        resolution.resolve_config("sagan", tmp_path / "run3", "fader_quick", [], str(tmp_path))
    # without --method, the preset's own `method:` decides; with neither (and no saved run) it is an error
    assert resolution.resolve_config(None, tmp_path / "run4", "fader_quick", [], str(tmp_path)).method == "fader"
    with pytest.raises(ConfigError, match="--method is required"):
        resolution.resolve_config(None, tmp_path / "run5", None, [], str(tmp_path))


def test_paper_defaults_of_sagan_reach_the_trainer():
    """The paper's hyper-parameters are the dataclass defaults, and the trainer uses them: its optimizers and its
    number of critic updates per step (the loss weights: tests/methods/test_sagan.py)."""
    from keras import ops

    from tf_faceedit.methods import sagan

    cfg = SaGANConfig().apply_overrides(
        [
            "data.data_dir=/x",
            "data.image_size=32",
            "model.g_filters=4",
            "model.num_residual_blocks=1",
            "model.d_filters=4",
            "model.d_max_filters=8",
        ]
    )
    assert (cfg.train.n_critic, cfg.train.batch_size, cfg.train.g_lr, cfg.train.beta_1, cfg.train.beta_2) == (
        3,
        16,
        2e-4,
        0.5,
        0.999,
    )
    assert (cfg.loss.lambda_gp, cfg.loss.lambda_rec_cycle, cfg.loss.lambda_rec_id) == (10.0, 20.0, 100.0)
    trainer = sagan.SaGAN(cfg.validate())
    optimizers = trainer.make_optimizers()
    for name in ("g_optimizer", "d_optimizer"):
        opt = optimizers[name]
        assert (float(ops.convert_to_numpy(opt.learning_rate)), opt.beta_1, opt.beta_2) == (
            pytest.approx(2e-4),
            0.5,
            0.999,
        )
    d_update, g_update = trainer.updates()
    assert (d_update.repeat, g_update.repeat, trainer.batch_multiple) == (3, 1, 3)


def test_diff_lists_changed_fields():
    a = SaGANConfig().to_dict()
    b = SaGANConfig().override("train.steps=7").override("data.mask.min_ratio=0.3").to_dict()
    assert diff(a, b) == ["data.mask.min_ratio", "train.steps"]


def test_unknown_method_lists_registered():
    with pytest.raises(ConfigError, match="registered methods: .*sagan"):
        registry.get("stargan")
    with pytest.raises(ConfigError, match="did you mean: sagan"):
        registry.get("sagn")


def test_base_config_has_no_method_sections():
    assert ExperimentConfig().model is None
