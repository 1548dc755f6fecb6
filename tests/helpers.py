"""Tiny configs shared by the tests (32x32 or smaller, a few filters: fast on 2 CPU cores).

`tiny_config(method, data_dir, attributes=None, **overrides)` is the one entry point; `TINY[method]` holds each
registered method's small settings. A new method adds its entry here and the contract harness
(tests/contract/test_method_contract.py) checks it like every other. `photo_background` makes the plain photos that
the alignment and detection tests draw on.
"""

import cv2
import numpy as np

from tf_faceedit import registry

# Every method: log, sample and checkpoint every 2 steps, 3 sample rows, quiet, grids from the train split.
COMMON = {
    "data.shuffle_buffer": 64,
    "train.log_every": 2,
    "train.sample_every": 2,
    "train.checkpoint_every": 2,
    "train.num_samples": 3,
    "train.verbose": 0,
    "train.sample_split": "train",
}

# method -> (settings, default attributes; None keeps the config's own, e.g. AttentionGAN's domain attribute)
TINY = {
    # 32x32, 4 filters, 1 residual block, 2 critic updates per step, 4 steps
    "sagan": (
        {
            "data.image_size": 32,
            "model.g_filters": 4,
            "model.num_residual_blocks": 1,
            "model.d_filters": 4,
            "model.d_max_filters": 16,
            "train.batch_size": 4,
            "train.n_critic": 2,
            "train.steps": 4,
        },
        ("Eyeglasses",),
    ),
    # 4 -> 8 px, 8 filters: steps 0-2 at 4x4, then 8x8 (steps 2-6 fade in, 6-8 stable)
    "pggan_completion": (
        {
            "data.image_size": 8,
            "model.fmap_base": 16,
            "model.fmap_max": 8,
            "progressive.fade_images": 16,
            "progressive.stable_images": 8,
            "loss.lambda_feat": 0,
            "loss.history_size": 4,
            "train.batch_size": 4,
            "train.steps": 8,
        },
        ("Male", "Smiling"),
    ),
    # 32x32 (4 encoder layers: 4-8-16-16 filters, latent 2x2x16), lambda_E ramp over 4 steps
    "fader": (
        {
            "data.image_size": 32,
            "model.encoder_filters": 4,
            "model.max_filters": 16,
            "model.lat_dis_fc": 8,
            "loss.lambda_lat_dis": 0.5,
            "loss.lambda_schedule_steps": 4,
            "train.batch_size": 4,
            "train.steps": 4,
        },
        ("Smiling",),
    ),
    # 16x16, a few filters: steps 0-2 cGAN phase, 2-4 encoder phase
    "icgan": (
        {
            "data.image_size": 16,
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
        },
        ("Eyeglasses", "Smiling"),
    ),
    # 32x32 (Smiling 0 -> 1), scheme II, 4 generator filters, 1 residual block, n = 3 masks, batch 2, 4 steps;
    # PatchGAN with 2 stride-2 layers, image pool of 4
    "attentiongan": (
        {
            "data.image_size": 32,
            "data.domain_attribute": "Smiling",
            "model.scheme": 2,
            "model.num_masks": 3,
            "model.g_filters": 4,
            "model.num_residual_blocks": 1,
            "model.d_filters": 4,
            "model.d_layers": 2,
            "loss.pool_size": 4,
            "train.batch_size": 2,
            "train.steps": 4,
        },
        None,
    ),
    # 16x16: stem 4 filters, stages 8-8 (2 stages to 4x4), one residual block each, batch 8, 4 steps
    "classifier": (
        {
            "data.image_size": 16,
            "model.filters": 4,
            "model.max_filters": 8,
            "model.blocks_per_stage": 1,
            "train.batch_size": 8,
            "train.steps": 4,
        },
        ("Eyeglasses", "Smiling", "Male"),
    ),
}


def tiny_config(method, data_dir, attributes=None, **overrides):
    """The validated tiny config of `method` on `data_dir`.

    Args:
      method: a registered method name (a key of `TINY`).
      data_dir: dataset folder ("/x" for tests that only build networks).
      attributes: the edited attributes (default: the method's tiny default, `TINY[method][1]`).
      **overrides: dotted config fields, applied last: `tiny_config("sagan", d, **{"train.steps": 2})`.
    """
    if method not in TINY:
        raise KeyError(f"no tiny config for method {method!r}: add one to tests/helpers.py TINY")
    values, default_attributes = TINY[method]
    cfg = registry.get(method).config_class()
    for key, value in {"data.data_dir": str(data_dir), **COMMON, **values, **overrides}.items():
        cfg = cfg.override(f"{key}={value}")
    attributes = default_attributes if attributes is None else attributes
    if attributes is not None:
        cfg = cfg.override(f"data.attributes={','.join(attributes)}")
    return cfg.validate()


def photo_background(height, width, seed=0, smooth=True):
    """Low-saturation RGB uint8 background: a gradient plus smooth (or per-pixel) noise, values in [40, 200]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 60.0 + 80.0 * (xx / width) + 40.0 * (yy / height)
    if smooth:
        noise = cv2.resize(
            rng.uniform(-20, 20, (height // 16 + 2, width // 16 + 2)).astype(np.float32),
            (width, height),
            interpolation=cv2.INTER_CUBIC,
        )
    else:
        noise = rng.uniform(-20, 20, (height, width)).astype(np.float32)
    gray = np.clip(base + noise, 40, 200)
    tint = np.array([1.0, 0.95, 0.9], np.float32)
    return np.clip(gray[..., None] * tint, 0, 255).astype(np.uint8)


class MeanColourRecognizer:
    """Stand-in face recognizer (tf_faceedit.eval.identity's interface) for tests without the [identity] extra: the
    face is the middle half of the image (or none, `finds=False`), its descriptor the mean colour there / 255; the
    boxes it is asked to describe are recorded in `boxes` as (image H x W, box)."""

    name = "mean_colour"

    def __init__(self, threshold, finds=True):
        self.threshold = threshold
        self.finds = finds
        self.boxes = []

    def detect(self, image):
        h, w = image.shape[:2]
        return (w // 4, h // 4, 3 * w // 4, 3 * h // 4) if self.finds else None

    def describe(self, image, box):
        self.boxes.append((image.shape[:2], tuple(box)))
        left, top, right, bottom = (int(round(v)) for v in box)
        return image[top:bottom, left:right].reshape(-1, 3).mean(axis=0) / 255.0
