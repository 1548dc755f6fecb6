from pathlib import Path

import pytest

from tf_faceedit import registry
from tf_faceedit.config import ExperimentConfig, diff, load_yaml
from tf_faceedit.errors import ConfigError
from tf_faceedit.methods.sagan import SaGANConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


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


@pytest.mark.parametrize("assignment, needle", [
    ("train.n_critc=3", "did you mean: n_critic"),
    ("train.steps=abc", "train.steps must be an integer"),
    ("train.steps=1.5", "train.steps must be an integer"),
    ("data.random_flip=maybe", "data.random_flip must be true or false"),
    ("nokey", "key=value"),
    ("model.g_filterz=3", "model.g_filterz"),
])
def test_override_errors_name_the_field(assignment, needle):
    with pytest.raises(ConfigError, match=needle):
        SaGANConfig().override(assignment)


@pytest.mark.parametrize("assignment, needle", [
    ("train.n_critic=0", "train.n_critic must be >= 1, got 0"),
    ("data.image_size=48", "data.image_size must be a power of two"),
    ("loss.adversarial=wgangp", "loss.adversarial must be one of"),
    ("train.strategy=tpu", "train.strategy must be one of"),
    ("data.mask.kind=noise", "data.mask.kind must be none for SaGAN"),
    ("data.attributes=A,A", "data.attributes has duplicates"),
])
def test_validation_errors(assignment, needle):
    cfg = SaGANConfig().override("data.data_dir=/x").override(assignment)
    with pytest.raises(ConfigError, match=needle):
        cfg.validate()


def test_data_dir_required():
    with pytest.raises(ConfigError, match="data.data_dir is required"):
        SaGANConfig().validate()


@pytest.mark.parametrize("preset", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_presets_load_and_validate(preset):
    values = load_yaml(preset)
    spec = registry.get(values["method"])
    cfg = spec.config_class().merge_dict(values, source=str(preset)).override("data.data_dir=/x")
    cfg.validate()


def test_paper_defaults_of_sagan():
    cfg = SaGANConfig()
    assert (cfg.train.n_critic, cfg.train.batch_size, cfg.train.g_lr, cfg.train.beta_1, cfg.train.beta_2) == \
        (3, 16, 2e-4, 0.5, 0.999)
    assert (cfg.loss.lambda_gp, cfg.loss.lambda_rec_cycle, cfg.loss.lambda_rec_id) == (10.0, 20.0, 100.0)


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
