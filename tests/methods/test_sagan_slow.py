"""Slow checks (`pytest -m slow`): SaGAN can overfit one batch."""

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import tiny_config
from tf_faceedit.data import celeba
from tf_faceedit.methods.sagan import SaGAN


@pytest.mark.slow
def test_overfit_one_batch_reconstruction_falls_tenfold(synthetic_celeba):
    cfg = tiny_config(
        "sagan",
        synthetic_celeba,
        **{"model.g_filters": 8, "train.n_critic": 1, "train.g_lr": 1e-3, "data.random_flip": False},
    )
    batch = next(iter(celeba.build_dataset(cfg.data, "train", 4, training=False, seed=0, repeat=False)))
    trainer = SaGAN(cfg)
    trainer.compile(optimizers=trainer.make_optimizers())
    trainer.build_trackers(batch)
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    first = trainer.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0).history
    last = trainer.fit(dataset, steps_per_epoch=300, epochs=1, verbose=0).history
    for key in ("g_rec_id", "g_rec_cycle"):
        start, end = first[key][-1], last[key][-1]
        assert np.isfinite(end)
        assert end < start / 10, f"{key}: {start:.4f} -> {end:.4f}"
