"""Tiny configs shared by the tests (32x32 or smaller, a few filters: fast on 2 CPU cores)."""

from tf_faceedit.methods.pggan_completion import PGGANCompletionConfig
from tf_faceedit.methods.sagan import SaGANConfig


def tiny_sagan_config(data_dir, attributes=("Eyeglasses",), **overrides):
    cfg = SaGANConfig()
    values = {
        "data.data_dir": str(data_dir),
        "data.image_size": 32,
        "data.shuffle_buffer": 64,
        "model.g_filters": 4,
        "model.num_residual_blocks": 1,
        "model.d_filters": 4,
        "model.d_max_filters": 16,
        "train.batch_size": 4,
        "train.n_critic": 2,
        "train.steps": 4,
        "train.log_every": 2,
        "train.sample_every": 2,
        "train.checkpoint_every": 2,
        "train.num_samples": 3,
        "train.verbose": 0,
        "train.sample_split": "train",
    }
    values.update(overrides)
    for key, value in values.items():
        cfg = cfg.override(f"{key}={value}")
    cfg = cfg.override(f"data.attributes={','.join(attributes)}")
    return cfg.validate()


def tiny_pggan_config(data_dir, attributes=("Male", "Smiling"), **overrides):
    """pggan_completion at 4 -> 8 px, 8 filters: steps 0-2 at 4x4, then 8x8 (steps 2-6 fade in, 6-8 stable)."""
    cfg = PGGANCompletionConfig()
    values = {
        "data.data_dir": str(data_dir),
        "data.image_size": 8,
        "data.shuffle_buffer": 64,
        "model.fmap_base": 16,
        "model.fmap_max": 8,
        "progressive.fade_images": 16,
        "progressive.stable_images": 8,
        "loss.lambda_feat": 0,
        "loss.history_size": 4,
        "train.batch_size": 4,
        "train.steps": 8,
        "train.log_every": 2,
        "train.sample_every": 2,
        "train.checkpoint_every": 2,
        "train.num_samples": 3,
        "train.verbose": 0,
        "train.sample_split": "train",
    }
    values.update(overrides)
    for key, value in values.items():
        cfg = cfg.override(f"{key}={value}")
    cfg = cfg.override(f"data.attributes={','.join(attributes)}")
    return cfg.validate()
