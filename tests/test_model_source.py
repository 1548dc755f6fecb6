"""tf_faceedit.model_source: inference options set on a restored model (`with_options`, `--option`)."""

import json

import numpy as np
import pytest

import tf_faceedit
from tests import model_runs
from tf_faceedit import api
from tf_faceedit.cli import edit, evaluate
from tf_faceedit.errors import ConfigError
from tf_faceedit.model_source import restore, with_data, with_options


@pytest.fixture(scope="module")
def fader_run(synthetic_celeba, tmp_path_factory):
    model_dir, _ = model_runs.checkpointed_run(
        "fader", synthetic_celeba, tmp_path_factory.mktemp("fader") / "run", attributes=("Smiling",)
    )
    return model_dir


def _faces(n=2, size=32):
    return np.random.RandomState(0).randint(0, 255, (n, size, size, 3)).astype(np.uint8)


def test_an_option_changes_what_inference_computes(fader_run):
    plain = tf_faceedit.load(fader_run, engine="tensorflow")
    model = tf_faceedit.load(with_options(fader_run, residual_edit=True, residual_gain="2"), engine="tensorflow")
    assert model.config.model.residual_edit is True and model.config.model.residual_gain == 2.0
    assert model.trainer.config.model.residual_gain == 2.0  # what the trainer's inference reads
    assert not plain.config.model.residual_edit
    faces, target = _faces(), np.ones((2, 1), np.float32)
    residual, decoded = model.edit(faces, target)["image"], plain.edit(faces, target)["image"]
    assert np.abs(residual.astype(int) - decoded.astype(int)).mean() > 1  # the input plus a change, not a decode


def test_options_compose_with_data_locations(fader_run, tmp_path):
    split = tmp_path / "split.txt"
    split.write_text("")
    source = with_options(with_data(fader_run, partition_file=str(split)), residual_gain=1.5)
    source = with_data(with_options(source, residual_edit="true"), image_dir="imgs")
    restored = restore(source)
    assert restored.config.data.partition_file == str(split) and restored.config.data.image_dir == "imgs"
    assert restored.config.model.residual_gain == 1.5 and restored.config.model.residual_edit is True


def test_a_field_that_is_not_an_option_and_a_bad_value_are_one_line_errors(fader_run, synthetic_celeba, tmp_path):
    with pytest.raises(ConfigError, match=r"--option model.encoder_filters: not an inference option of fader \(its "):
        restore(with_options(fader_run, encoder_filters=8))
    with pytest.raises(ConfigError, match="model.residual_highpass must be one of chroma, all"):
        restore(with_options(fader_run, residual_highpass="luma"))
    with pytest.raises(ConfigError, match="model.residual_gain must be a number"):
        restore(with_options(fader_run, residual_gain="much"))
    sagan, _ = model_runs.checkpointed_run("sagan", synthetic_celeba, tmp_path / "sagan")
    with pytest.raises(ConfigError, match=r"not an inference option of sagan \(it has none\)"):
        restore(with_options(sagan, residual_gain=2))
    export = tmp_path / "export" / "1"
    export.mkdir(parents=True)
    (export / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ConfigError, match="inference options .* apply to a model_dir or a zoo name"):
        restore(with_options(export, residual_gain=2), exports=True)


def test_evaluate_and_edit_take_option_flags(fader_run, synthetic_celeba, tmp_path, capsys):
    common = ["--model_dir", str(fader_run), "--data_dir", str(synthetic_celeba), "--max_images", "2"]
    out = tmp_path / "eval"
    args = [*common, "--batch_size", "2", "--split", "train", "--identity", "off", "--quiet", "--out_dir", str(out)]
    assert evaluate.main([*args, "--option", "model.residual_edit=true"]) == 0, capsys.readouterr().err
    report = json.loads((out / "metrics.json").read_text())
    assert report["reconstruction"]["network_only"]  # the option reached the model: its residual is set aside here
    assert report["inference_options"]["residual_edit"] is True  # the report says how the model ran
    assert report["inference_options"]["residual_gain"] == 1.0
    assert "Inference options: residual_edit=True, residual_gain=1.0" in (out / "metrics.md").read_text()
    capsys.readouterr()
    assert evaluate.main([*args, "--option", "residual_gain=2"]) == 2
    assert "--option expects model.FIELD=VALUE" in capsys.readouterr().err
    assert evaluate.main([*args, "--set", "model.residual_gain=2"]) == 2
    assert "--option model.FIELD=VALUE" in capsys.readouterr().err
    photo = tmp_path / "photo.png"
    import cv2

    cv2.imwrite(str(photo), _faces(1, 32)[0])
    status = edit.main(
        ["--model_dir", str(fader_run), "--image", str(photo), "--out", str(tmp_path / "o.png"), "--set", "Smiling=1"]
        + ["--option", "model.lat_dis_fc=3", "--quiet"]
    )
    assert status == 2 and "not an inference option of fader" in capsys.readouterr().err
    assert api.with_options is with_options
