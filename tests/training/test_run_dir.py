"""training/run_dir.py: the run folder's config.yaml and what counts as a change on resume."""

import pytest
import yaml

from tf_faceedit.errors import TrainingError
from tf_faceedit.methods.sagan import SaGANConfig
from tf_faceedit.training import run_dir


def _cfg(tmp_path, *overrides):
    return SaGANConfig().apply_overrides([f"data.data_dir={tmp_path}", "data.image_size=16", *overrides]).validate()


def test_a_run_saved_before_a_field_existed_resumes(tmp_path):
    """A field added to the library later (here data.positive_fraction, absent from the saved file) is its default,
    not a change; a real change is still refused and a resumable one is allowed."""
    model_dir = tmp_path / "run"
    run_dir.prepare(_cfg(tmp_path), model_dir)
    path = run_dir.config_path(model_dir)
    saved = yaml.safe_load(path.read_text())
    del saved["data"]["positive_fraction"]  # as written by an older version
    path.write_text(yaml.safe_dump(saved))
    run_dir.prepare(_cfg(tmp_path), model_dir)  # no error
    run_dir.prepare(_cfg(tmp_path, "train.steps=99"), model_dir)  # resumable
    assert run_dir.blocking_changes(saved, _cfg(tmp_path).to_dict()) == []
    with pytest.raises(TrainingError, match="changed: data.positive_fraction"):
        run_dir.prepare(_cfg(tmp_path, "data.positive_fraction=0.5"), model_dir)
