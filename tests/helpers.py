"""Tiny configs shared by the tests (32x32 or smaller, a few filters: fast on 2 CPU cores)."""

from tf_faceedit.methods.fader import FaderConfig
from tf_faceedit.methods.icgan import IcGANConfig
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
    return _tiny(cfg, values, attributes, overrides)


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
    return _tiny(cfg, values, attributes, overrides)


def tiny_fader_config(data_dir, attributes=("Smiling",), **overrides):
    """fader at 32x32 (4 encoder layers: 4-8-16-16 filters, latent 2x2x16), lambda_E ramp over 4 steps."""
    cfg = FaderConfig()
    values = {
        "data.data_dir": str(data_dir),
        "data.image_size": 32,
        "data.shuffle_buffer": 64,
        "model.encoder_filters": 4,
        "model.max_filters": 16,
        "model.lat_dis_fc": 8,
        "loss.lambda_lat_dis": 0.5,
        "loss.lambda_schedule_steps": 4,
        "train.batch_size": 4,
        "train.steps": 4,
        "train.log_every": 2,
        "train.sample_every": 2,
        "train.checkpoint_every": 2,
        "train.num_samples": 3,
        "train.verbose": 0,
        "train.sample_split": "train",
    }
    return _tiny(cfg, values, attributes, overrides)


def tiny_icgan_config(data_dir, attributes=("Eyeglasses", "Smiling"), **overrides):
    """icgan at 16x16, a few filters: steps 0-2 cGAN phase, 2-4 encoder phase."""
    cfg = IcGANConfig()
    values = {
        "data.data_dir": str(data_dir),
        "data.image_size": 16,
        "data.shuffle_buffer": 64,
        "model.z_dim": 8,
        "model.g_filters": 16,
        "model.d_filters": 4,
        "model.encoder_filters": 4,
        "model.ez_fc": 16,
        "model.ey_fc": 8,
        "train.cgan_steps": 2,
        "train.encoder_steps": 2,
        "train.batch_size": 4,
        "train.steps": 4,
        "train.log_every": 2,
        "train.sample_every": 2,
        "train.checkpoint_every": 2,
        "train.num_samples": 3,
        "train.verbose": 0,
        "train.sample_split": "train",
    }
    return _tiny(cfg, values, attributes, overrides)


def _tiny(cfg, values, attributes, overrides):
    """Applies the tiny settings, the test's overrides and the attributes; returns the validated config."""
    for key, value in {**values, **overrides}.items():
        cfg = cfg.override(f"{key}={value}")
    return cfg.override(f"data.attributes={','.join(attributes)}").validate()


def tiny_attentiongan_config(data_dir, scheme=2, **overrides):
    """attentiongan at 32x32 (Smiling 0 -> 1), 4 generator filters, 1 residual block, n = 3 masks, batch 2, 4 steps;
    PatchGAN with 2 stride-2 layers, image pool of 4."""
    from tf_faceedit.methods.attention_gan import AttentionGANConfig

    values = {
        "data.data_dir": str(data_dir),
        "data.image_size": 32,
        "data.shuffle_buffer": 64,
        "data.domain_attribute": "Smiling",
        "model.scheme": scheme,
        "model.num_masks": 3,
        "model.g_filters": 4,
        "model.num_residual_blocks": 1,
        "model.d_filters": 4,
        "model.d_layers": 2,
        "loss.pool_size": 4,
        "train.batch_size": 2,
        "train.steps": 4,
        "train.log_every": 2,
        "train.sample_every": 2,
        "train.checkpoint_every": 2,
        "train.num_samples": 3,
        "train.verbose": 0,
        "train.sample_split": "train",
    }
    cfg = AttentionGANConfig()
    for key, value in {**values, **overrides}.items():
        cfg = cfg.override(f"{key}={value}")
    return cfg.validate()


def tiny_classifier_config(data_dir, attributes=("Eyeglasses", "Smiling", "Male"), **overrides):
    """classifier at 16x16: stem 4 filters, stages 8-8 (2 stages to 4x4), one residual block each, batch 8, 4 steps."""
    from tf_faceedit.methods.attribute_classifier import ClassifierConfig

    values = {
        "data.data_dir": str(data_dir),
        "data.image_size": 16,
        "data.shuffle_buffer": 64,
        "model.filters": 4,
        "model.max_filters": 8,
        "model.blocks_per_stage": 1,
        "train.batch_size": 8,
        "train.steps": 4,
        "train.log_every": 2,
        "train.sample_every": 2,
        "train.checkpoint_every": 2,
        "train.num_samples": 3,
        "train.verbose": 0,
        "train.sample_split": "train",
    }
    return _tiny(ClassifierConfig(), values, attributes, overrides)
