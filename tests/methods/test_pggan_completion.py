import json
import re

import keras
import numpy as np
import pytest
from keras import ops

from tests.helpers import tiny_config
from tf_faceedit.errors import ConfigError
from tf_faceedit.layers import downsample2x, upsample2x
from tf_faceedit.layers.progressive import filters_at
from tf_faceedit.methods import pggan_completion as pgc
from tf_faceedit.training import driver
from tf_faceedit.training.checkpoint import CheckpointManager
from tf_faceedit.training.image_pool import HistoryBuffer

SIZE = 32  # 4 stages: 4, 8, 16, 32
K = 2


def _np(x):
    return ops.convert_to_numpy(x)


def _inputs(size, n=2, seed=0):
    rng = np.random.RandomState(seed)
    image = rng.uniform(-1, 1, (n, size, size, 3)).astype("float32")
    mask = np.zeros((n, size, size, 1), "float32")
    mask[:, size // 4 : size // 2 + 1, size // 4 : 3 * size // 4] = 1.0
    observed = image * (1 - mask)
    return {"image": observed, "mask": mask, "attributes": rng.randint(0, 2, (n, K)).astype("float32")}, image


@pytest.fixture(scope="module")
def generator():
    return pgc.PGGANCompletionGenerator(SIZE, 4, K, fmap_base=32, fmap_max=16)


@pytest.fixture(scope="module")
def discriminator():
    return pgc.PGGANCompletionDiscriminator(SIZE, 4, K, fmap_base=32, fmap_max=16)


# -- config --------------------------------------------------------------------------------------------------------


def test_paper_defaults():
    cfg = pgc.PGGANCompletionConfig()
    loss, train = cfg.loss, cfg.train
    assert (
        loss.lambda_rec,
        loss.hole_weight,
        loss.lambda_feat,
        loss.lambda_bdy,
        loss.boundary_kernel,
        loss.lambda_attr,
        loss.adversarial,
    ) == (500.0, 0.7, 10.0, 5000.0, 7, 2.0, "gan")
    assert (train.batch_size, train.n_critic, train.g_lr, train.d_lr, train.beta_1, train.beta_2) == (
        16,
        1,
        2e-4,
        2e-4,
        0.5,
        0.99,
    )
    assert (cfg.data.image_size, cfg.data.attributes, cfg.data.mask.kind) == (128, ["Male", "Smiling"], "noise")
    assert (cfg.progressive.fade_images, cfg.progressive.stable_images) == (600000, 600000)
    # PGGAN's widths
    assert [filters_at(4 * 2**i, 8192, 512) for i in range(9)] == [512, 512, 512, 512, 256, 128, 64, 32, 16]


@pytest.mark.parametrize(
    "assignment, needle",
    [
        ("data.mask.kind=none", "data.mask.kind must be noise or rect"),
        ("model.start_resolution=16", "data.image_size must be >= model.start_resolution (16), got 8"),
        ("model.start_resolution=12", "model.start_resolution must be a power of two"),
        ("loss.history_size=2", "loss.history_size must be 0 (off) or >= train.batch_size"),
        ("loss.boundary_kernel=6", "loss.boundary_kernel must be an odd int >= 3"),
        ("loss.adversarial=wgangp", "loss.adversarial must be one of"),
        ("progressive.stable_images=3", "progressive.stable_images must be >= train.batch_size"),
        ("progressive.fade_images=-1", "progressive.fade_images must be >= 0"),
    ],
)
def test_validation_errors(assignment, needle):
    cfg = tiny_config("pggan_completion", "/x").override(assignment)
    with pytest.raises(ConfigError, match=re.escape(needle)):
        cfg.validate()


def test_schedule_and_phases():
    cfg = tiny_config(
        "pggan_completion",
        "/x",
        **{"data.image_size": 16, "progressive.fade_images": 12, "progressive.stable_images": 8, "train.steps": 12},
    )
    trainer = pgc.PGGANCompletion(cfg)
    # batch 4: stage 0 = 2 stable steps; later stages 3 fade + 2 stable steps
    assert [(p.name, p.start_step, p.end_step, p.info["fade_steps"]) for p in trainer.schedule()] == [
        ("4x4", 0, 2, 0),
        ("8x8", 2, 7, 3),
        ("16x16", 7, 12, 3),
    ]
    assert trainer.phases() == trainer.schedule()
    short = pgc.PGGANCompletion(cfg.override("train.steps=5"))
    assert [(p.name, p.end_step) for p in short.phases()] == [("4x4", 2), ("8x8", 5)]
    longer = pgc.PGGANCompletion(cfg.override("train.steps=20"))
    assert longer.phases()[-1].end_step == 20 and longer.phases()[-1].name == "16x16"
    phase = trainer.phases()[1]
    assert [float(trainer.alpha_at(s, phase)) for s in (0, 2, 3, 5, 6)] == [0.0, 0.0, pytest.approx(1 / 3), 1.0, 1.0]
    assert float(trainer.alpha_at(1, trainer.phases()[0])) == 1.0


# -- networks ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_shapes_at_each_stage_and_during_fade_in(generator, discriminator, stage):
    r = 4 * 2**stage
    inputs, _ = _inputs(r, n=3)
    for alpha in (0.5, 1.0):
        generator.set_stage(stage)
        discriminator.set_stage(stage)
        generator.alpha.assign(alpha)
        discriminator.alpha.assign(alpha)
        out = generator(inputs)
        assert tuple(out["image"].shape) == (3, r, r, 3) and tuple(out["composited"].shape) == (3, r, r, 3)
        assert np.abs(_np(out["image"])).max() <= 1.0
        d_out = discriminator(out["composited"])
        assert tuple(d_out["src"].shape) == (3, 1) and tuple(d_out["cls"].shape) == (3, K)
        assert np.all(np.isfinite(_np(d_out["src"])))
    with pytest.raises(ValueError, match="set_stage"):
        generator(_inputs(2 * r)[0])


def test_one_stage_networks_are_fully_built():
    """start_resolution == resolution: one stage, the FadeIn never called; every layer still counts as built
    (Keras' fit under JAX refuses a model with an unbuilt layer)."""
    g = pgc.PGGANCompletionGenerator(8, 8, K, fmap_base=32, fmap_max=16)
    d = pgc.PGGANCompletionDiscriminator(8, 8, K, fmap_base=32, fmap_max=16)
    out = g(_inputs(8)[0])
    d(out["composited"])
    for network in (g, d):
        unbuilt = [layer.name for layer in network._flatten_layers() if not layer.built]
        assert unbuilt == []


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_alpha_zero_equals_previous_stage_upsampled(generator, discriminator, stage):
    r = 4 * 2**stage
    inputs, _ = _inputs(r, seed=stage)
    generator.set_stage(stage)
    generator.alpha.assign(0.0)
    grown = _np(generator(inputs)["image"])
    generator.set_stage(stage - 1)
    generator.alpha.assign(1.0)
    small = {
        "image": downsample2x(inputs["image"]),
        "mask": downsample2x(inputs["mask"]),
        "attributes": inputs["attributes"],
    }
    previous = _np(upsample2x(generator(small)["image"]))
    np.testing.assert_allclose(grown, previous, atol=1e-5)
    # ...and alpha = 1 does use the new layers
    generator.set_stage(stage)
    generator.alpha.assign(1.0)
    assert np.abs(_np(generator(inputs)["image"]) - previous).max() > 1e-3
    # the discriminator fades the same way
    discriminator.set_stage(stage)
    discriminator.alpha.assign(0.0)
    d_grown = _np(discriminator(inputs["image"])["src"])
    discriminator.set_stage(stage - 1)
    discriminator.alpha.assign(1.0)
    np.testing.assert_allclose(d_grown, _np(discriminator(small["image"])["src"]), atol=1e-5)


def test_active_variables_are_the_current_stage(generator, discriminator):
    def names(variables):
        return {v.path for v in variables}

    for network in (generator, discriminator):
        network.set_stage(2)
        active, every = names(network.active_trainable_variables), names(network.trainable_variables)
        assert active < every
        assert any("rgb_16" in n for n in active) and any("rgb_8" in n for n in active)  # both fade paths
        assert not any("rgb_4" in n or "rgb_32" in n or "_32_" in n for n in active)
        network.set_stage(network.num_stages - 1)
        assert len(network.active_trainable_variables) < len(network.trainable_variables)
    assert "alpha" not in " ".join(names(generator.trainable_variables))
    with pytest.raises(ValueError, match="stage must be in"):
        generator.set_stage(4)


@pytest.mark.slow  # every stage saved (~16 s); tests/contract keeps the .keras round trip
def test_generator_saves_and_loads_without_custom_objects(generator, tmp_path):
    generator.set_stage(2)
    generator.alpha.assign(0.375)
    path = tmp_path / "g.keras"
    generator.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.stage == 2 and float(_np(loaded.alpha)) == 0.375
    assert loaded.get_config() == generator.get_config()
    inputs, _ = _inputs(16, seed=5)
    for key in ("image", "composited"):
        np.testing.assert_allclose(_np(loaded(inputs)[key]), _np(generator(inputs)[key]), atol=1e-6)


def test_generator_without_attributes_is_plain_inpainting():
    g = pgc.PGGANCompletionGenerator(8, 4, K, fmap_base=16, fmap_max=8, use_attributes=False)
    assert g.skip_blocks == [[]]
    inputs, _ = _inputs(8)
    flipped = {**inputs, "attributes": 1.0 - inputs["attributes"]}
    np.testing.assert_array_equal(_np(g(inputs)["image"]), _np(g(flipped)["image"]))
    with_attrs = pgc.PGGANCompletionGenerator(8, 4, K, fmap_base=16, fmap_max=8, skip_residual_blocks=2)
    assert [len(blocks) for blocks in with_attrs.skip_blocks] == [2]
    assert np.abs(_np(with_attrs(inputs)["image"]) - _np(with_attrs(flipped)["image"])).max() > 0


def test_completion_equals_input_outside_the_hole(generator):
    generator.set_stage(3)
    generator.alpha.assign(1.0)
    inputs, image = _inputs(32, n=2, seed=3)
    raw, composited = pgc.complete(generator, image, inputs["mask"], inputs["attributes"])
    outside = inputs["mask"][..., 0] == 0
    np.testing.assert_array_equal(_np(composited)[outside], image[outside])
    hole = ~outside
    np.testing.assert_array_equal(_np(composited)[hole], _np(raw)[hole])
    # at a lower stage the inputs are average-pooled to its resolution
    generator.set_stage(2)
    raw, composited = pgc.complete(generator, image, inputs["mask"], inputs["attributes"])
    assert tuple(composited.shape) == (2, 16, 16, 3)
    pooled_mask = _np(downsample2x(inputs["mask"]))[..., 0]
    np.testing.assert_allclose(_np(composited)[pooled_mask == 0], _np(downsample2x(image))[pooled_mask == 0], atol=1e-6)
    with pytest.raises(ValueError, match="power-of-two multiple"):
        pgc.complete(generator, image[:, :24, :24], inputs["mask"][:, :24, :24], inputs["attributes"])


# -- history buffer -------------------------------------------------------------------------------------------------


def test_history_buffer_returns_stored_images_once_full():
    buffer = HistoryBuffer(4, (2, 2, 3), fraction=0.5)
    seed = keras.random.SeedGenerator(0)
    first = np.stack([np.full((2, 2, 3), v, "float32") for v in (1, 2)])
    np.testing.assert_array_equal(_np(buffer.query(first, seed)), first)  # empty: fakes pass through
    assert int(_np(buffer.count)) == 2
    second = np.stack([np.full((2, 2, 3), v, "float32") for v in (3, 4)])
    np.testing.assert_array_equal(_np(buffer.query(second, seed)), second)  # not full yet
    assert int(_np(buffer.count)) == 4
    np.testing.assert_array_equal(_np(buffer.images)[:, 0, 0, 0], [1, 2, 3, 4])  # filled in order
    fakes = np.full((4, 2, 2, 3), -1.0, "float32")
    mixed = _np(buffer.query(fakes, seed))
    assert set(mixed[:2, 0, 0, 0]) <= {1.0, 2.0, 3.0, 4.0}  # half the batch from the buffer
    assert np.all(mixed[:2] == mixed[:2, :1, :1, :1])
    np.testing.assert_array_equal(mixed[2:], fakes[2:])
    stored = _np(buffer.images)[:, 0, 0, 0]
    assert (stored == -1.0).sum() == 4  # the 4 new fakes went to 4 distinct slots
    # seeded: the same seed state draws the same stored images
    again = HistoryBuffer(4, (2, 2, 3), fraction=0.5)
    seed2 = keras.random.SeedGenerator(0)
    again.query(first, seed2)
    again.query(second, seed2)
    np.testing.assert_array_equal(_np(again.query(fakes, seed2)), mixed)


# -- trainer --------------------------------------------------------------------------------------------------------


def _batch(cfg, n=4, seed=0):
    rng = np.random.RandomState(seed)
    s = cfg.data.image_size
    mask = np.zeros((n, s, s, 1), "float32")
    mask[:, 2:6, 1:5] = 1.0
    return {
        "image": rng.uniform(-1, 1, (n, s, s, 3)).astype("float32"),
        "mask": mask,
        "attributes": rng.randint(0, 2, (n, 2)).astype("float32"),
    }


def test_prepare_batch_pools_draws_targets_and_sets_alpha():
    cfg = tiny_config("pggan_completion", "/x")
    trainer = pgc.PGGANCompletion(cfg)
    batch = _batch(cfg, n=64)
    prepared = trainer.prepare_batch(batch, trainer.seed_generator)  # stage 0: 4x4
    assert tuple(prepared["image"].shape) == (64, 4, 4, 3) and tuple(prepared["mask"].shape) == (64, 4, 4, 1)
    np.testing.assert_allclose(
        _np(prepared["observed"]), _np(downsample2x(batch["image"] * (1 - batch["mask"]))), atol=1e-6
    )
    changed = np.abs(_np(prepared["target_attributes"]) - batch["attributes"]).sum(axis=1)
    assert set(changed) == {0.0, 1.0} and 16 < (changed == 0).sum() < 48  # kept or one flipped, about half each
    fade = trainer.phases()[1]  # 8x8, steps 2-8 with 4 fade-in steps
    trainer.set_phase(fade)
    assert float(_np(trainer.generator.alpha)) == 0.0  # the new stage starts faded out
    trainer.step.assign(3)
    prepared = trainer.prepare_batch(batch, trainer.seed_generator)
    assert tuple(prepared["image"].shape) == (64, 8, 8, 3)
    for network in (trainer.generator, trainer.discriminator):
        assert float(_np(network.alpha)) == 0.25
    assert trainer.phase_state() == {"phase": "8x8", "stage": 1, "resolution": 8, "alpha": 0.25}


def test_build_trackers_leaves_the_state_alone():
    cfg = tiny_config("pggan_completion", "/x")
    trainer = pgc.PGGANCompletion(cfg)
    before = [_np(v).copy() for v in trainer.state_variables()]
    trainer.build_trackers(_batch(cfg))  # runs both players' losses once, which pushes fakes into the buffer
    assert {"d_loss", "g_loss"} <= {m.name for m in trainer.metrics}
    for variable, value in zip(trainer.state_variables(), before):
        np.testing.assert_array_equal(_np(variable), value)
    assert int(_np(trainer.history_buffer.count)) == 0


@pytest.mark.parametrize(
    "overrides, d_keys, g_keys",
    [
        ({}, {"d_adv", "d_attr", "d_attr_fake", "d_loss"}, {"g_adv", "g_attr", "g_rec", "g_bdy", "g_loss"}),
        (
            {"loss.adversarial": "wgan", "loss.lambda_feat": 10, "loss.vgg_weights": "random", "loss.lambda_dfm": 3},
            {"d_adv", "d_attr", "d_attr_fake", "d_gp", "d_loss"},
            {"g_adv", "g_attr", "g_rec", "g_bdy", "g_feat", "g_dfm", "g_loss"},
        ),
        ({"loss.d_attr_fakes": False}, {"d_adv", "d_attr", "d_loss"}, {"g_adv", "g_attr", "g_rec", "g_bdy", "g_loss"}),
    ],
)
def test_loss_dicts(overrides, d_keys, g_keys):
    cfg = tiny_config("pggan_completion", "/x", **overrides)
    trainer = pgc.PGGANCompletion(cfg)
    assert (trainer.feature_extractor is None) == (cfg.loss.lambda_feat == 0)  # lambda_feat 0: no VGG16 built
    batch = trainer.prepare_batch(_batch(cfg, n=3), trainer.seed_generator)
    d = trainer.discriminator_losses(batch, trainer.seed_generator)
    g = trainer.generator_losses(batch, trainer.seed_generator)
    assert set(d) == d_keys and set(g) == g_keys
    for value in list(d.values()) + list(g.values()):
        assert tuple(value.shape) == (3,) and np.all(np.isfinite(_np(value)))
    lam = cfg.loss
    expected = (
        g["g_adv"]
        + lam.lambda_attr * g["g_attr"]
        + lam.lambda_rec * g["g_rec"]
        + lam.lambda_bdy * g["g_bdy"]
        + lam.lambda_feat * g.get("g_feat", 0.0)
        + lam.lambda_dfm * g.get("g_dfm", 0.0)
    )
    np.testing.assert_allclose(_np(g["g_loss"]), _np(expected), rtol=1e-5)


def test_updates_change_only_the_active_layers():
    cfg = tiny_config("pggan_completion", "/x")
    trainer = pgc.PGGANCompletion(cfg)
    trainer.compile(optimizers=trainer.make_optimizers())
    batch = trainer.prepare_batch(_batch(cfg), trainer.seed_generator)  # stage 0
    d_update, g_update = trainer.updates()
    g_before = {v.path: _np(v).copy() for v in trainer.generator.trainable_variables}
    d_before = {v.path: _np(v).copy() for v in trainer.discriminator.trainable_variables}
    trainer._run_update(g_update, batch)
    g_changed = {v.path for v in trainer.generator.trainable_variables if not np.array_equal(g_before[v.path], _np(v))}
    assert g_changed == {v.path for v in trainer.generator.active_trainable_variables}
    assert all(np.array_equal(d_before[v.path], _np(v)) for v in trainer.discriminator.trainable_variables)
    trainer._run_update(d_update, batch)
    d_changed = {
        v.path for v in trainer.discriminator.trainable_variables if not np.array_equal(d_before[v.path], _np(v))
    }
    assert d_changed == {v.path for v in trainer.discriminator.active_trainable_variables}


def test_sample_rows_layout():
    cfg = tiny_config("pggan_completion", "/x")
    trainer = pgc.PGGANCompletion(cfg)
    rows = trainer.sample_rows(_batch(cfg, n=3))
    assert [name for name, _ in rows] == [
        "masked input",
        "completion",
        "Male flipped",
        "Smiling flipped",
        "ground truth",
    ]
    for _, images in rows:
        assert tuple(images.shape) == (3, 64, 64, 3)  # 4x4 tiles shown at 64x64
    masked = _np(rows[0][1])
    assert masked.max() == 1.0  # the hole is painted white


def test_smoke_train_across_a_stage_and_resume_mid_fade(synthetic_celeba, tmp_path):
    # 4x4: steps 0-2; 8x8: fade-in over steps 2-6, stable 6-8. Stop at the end of the 4x4 stage, resume across the
    # stage transition (the checkpoint holds 4x4 state), stop in the middle of the fade-in.
    run_dir = tmp_path / "run"
    assert driver.run(tiny_config("pggan_completion", synthetic_celeba, **{"train.steps": 2}), run_dir)["step"] == 2
    cfg = tiny_config("pggan_completion", synthetic_celeba, **{"train.steps": 4})
    result = driver.run(cfg, run_dir)
    assert result["step"] == 4
    assert {"d_adv", "d_attr", "d_attr_fake", "d_loss", "g_adv", "g_attr", "g_rec", "g_bdy", "g_loss"} == set(
        result["logs"]
    )
    assert all(np.isfinite(v) for v in result["logs"].values())
    assert result["sample_grid"].is_file()
    stage0 = json.loads((run_dir / "checkpoints" / "ckpt-00000002" / "state.json").read_text())
    assert (stage0["phase"], stage0["stage"], stage0["resolution"], stage0["alpha"]) == ("4x4", 0, 4, 1.0)
    saved = json.loads((result["checkpoint"] / "state.json").read_text())
    # the last step (3) ran at alpha (3 - 2) / 4
    assert saved == {"step": 4, "format": 1, "phase": "8x8", "stage": 1, "resolution": 8, "alpha": 0.25}

    # a fresh trainer restores the stage, alpha and the 8x8 history buffer exactly
    longer = cfg.override("train.steps=8")
    trainer = pgc.PGGANCompletion(longer)
    trainer.compile(optimizers=trainer.make_optimizers())
    manager = CheckpointManager(run_dir / "checkpoints", trainer)
    trainer.set_phase(trainer.phase_at(manager.peek()["step"] - 1))
    state = manager.restore()
    assert trainer.phase_state() == {k: v for k, v in state.items() if k not in ("step", "format")}
    assert trainer.generator.stage == trainer.discriminator.stage == 1
    assert float(_np(trainer.discriminator.alpha)) == 0.25
    assert tuple(trainer.history_buffer.images.shape) == (4, 8, 8, 3) and int(_np(trainer.history_buffer.count)) == 4

    # ...and training goes on from step 4 to the end of the fade-in and the stable part
    result = driver.run(longer, run_dir)
    assert result["step"] == 8 and all(np.isfinite(v) for v in result["logs"].values())
    final = json.loads((result["checkpoint"] / "state.json").read_text())
    assert (final["stage"], final["alpha"]) == (1, 1.0)
    mid = json.loads((run_dir / "checkpoints" / "ckpt-00000006" / "state.json").read_text())
    assert mid["alpha"] == 0.75  # step 5 ran at (5 - 2) / 4
    assert (run_dir / "samples" / "step_00000008.png").is_file()


# -- fidelity fixes (issue 15) --------------------------------------------------------------------------------------


def test_composite_keeps_the_context_unattenuated_under_a_fractional_pooled_mask(generator):
    # a hole whose edge falls inside 2x2 cells: at 16x16 the pooled mask takes the values 0.5 / 0.25 there
    generator.set_stage(2)
    generator.alpha.assign(1.0)
    rng = np.random.RandomState(5)
    image = rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    mask = np.zeros((2, 32, 32, 1), "float32")
    mask[:, 5:14, 7:20] = 1.0
    raw, composited = pgc.complete(generator, image, mask, np.zeros((2, K), "float32"))
    pooled_mask = _np(downsample2x(mask))
    observed = _np(downsample2x(image * (1 - mask)))
    assert np.any((pooled_mask > 0) & (pooled_mask < 1))
    # I_syn * m + I_obs: the observed part of a fractional cell is kept whole, not multiplied by (1 - m) again
    np.testing.assert_allclose(_np(composited), _np(raw) * pooled_mask + observed, atol=1e-6)
    fractional = (pooled_mask[..., 0] > 0) & (pooled_mask[..., 0] < 1)
    attenuated = _np(raw) * pooled_mask + observed * (1 - pooled_mask)
    assert not np.allclose(_np(composited)[fractional], attenuated[fractional], atol=1e-3)


@pytest.mark.parametrize("d_fake", ["composited", "raw"])
def test_d_fake_selects_what_the_discriminator_judges(d_fake, monkeypatch):
    cfg = tiny_config("pggan_completion", "/x", **{"loss.d_fake": d_fake, "loss.history_size": 0})
    trainer = pgc.PGGANCompletion(cfg)
    batch = trainer.prepare_batch(_batch(cfg, n=3), trainer.seed_generator)
    seen = []
    real_call = trainer.discriminator.__call__

    def spy(images, **kwargs):
        seen.append(_np(images))
        return real_call(images, **kwargs)

    monkeypatch.setattr(trainer, "discriminator", spy)
    out = trainer._generate(batch, training=True)
    trainer.discriminator_losses(batch, trainer.seed_generator)
    want = _np(out["composited"] if d_fake == "composited" else out["image"])
    np.testing.assert_allclose(seen[1], want, atol=1e-5)  # calls: real, then the fakes


def test_d_fake_is_validated():
    with pytest.raises(ConfigError, match="loss.d_fake"):
        tiny_config("pggan_completion", "/x", **{"loss.d_fake": "both"}).validate()


def test_a_new_stage_starts_with_fresh_optimizer_states(synthetic_celeba, tmp_path):
    cfg = tiny_config("pggan_completion", synthetic_celeba)
    trainer = pgc.PGGANCompletion(cfg)
    trainer.compile(optimizers=trainer.make_optimizers())
    batch = trainer.prepare_batch(_batch(cfg), trainer.seed_generator)
    for update in trainer.updates():
        trainer._run_update(update, batch)
    moments = [v for v in trainer.g_optimizer.variables if np.any(_np(v) != 0)]
    assert moments and int(_np(trainer.g_optimizer.iterations)) == 1
    learning_rates = {name: float(_np(getattr(trainer, name).learning_rate)) for name in ("g_optimizer", "d_optimizer")}
    trainer.set_phase(trainer.phases()[1])
    trainer.start_phase(trainer.phases()[1])
    for name in ("g_optimizer", "d_optimizer"):
        optimizer = getattr(trainer, name)
        # moments and iteration counter zeroed; the learning rate (also among `variables` in Keras 3) kept
        states = [v for v in optimizer.variables if not v.path.endswith("learning_rate")]
        assert states and all(not np.any(_np(v)) for v in states), name
        assert learning_rates[name] > 0 and float(_np(optimizer.learning_rate)) == pytest.approx(learning_rates[name])
    # and the next stage still learns: an update after the reset moves the generator
    before = [_np(w).copy() for w in trainer.generator.trainable_weights]
    trainer._run_update(trainer.updates()[1], trainer.prepare_batch(_batch(cfg), trainer.seed_generator))
    assert any(np.any(_np(w) != b) for w, b in zip(trainer.generator.trainable_weights, before))
    # with the option off the states carry over
    cfg_off = tiny_config("pggan_completion", synthetic_celeba, **{"loss.reset_optimizers_per_stage": False})
    kept = pgc.PGGANCompletion(cfg_off)
    kept.compile(optimizers=kept.make_optimizers())
    kept._run_update(kept.updates()[1], kept.prepare_batch(_batch(cfg_off), kept.seed_generator))
    kept.start_phase(kept.phases()[1])
    assert int(_np(kept.g_optimizer.iterations)) == 1


# -- issue 33: the loss balance -------------------------------------------------------------------------------------


def test_fade_real_blends_like_the_fading_generator():
    image = np.random.RandomState(0).uniform(-1, 1, (2, 8, 8, 3)).astype("float32")
    blocky = _np(upsample2x(downsample2x(image)))
    np.testing.assert_allclose(_np(pgc.fade_real(image, 0.0)), blocky, atol=1e-6)
    np.testing.assert_allclose(_np(pgc.fade_real(image, 1.0)), image, atol=1e-6)
    np.testing.assert_allclose(_np(pgc.fade_real(image, 0.25)), 0.75 * blocky + 0.25 * image, atol=1e-6)


def test_prepare_batch_fades_the_real_during_a_fade_in():
    cfg = tiny_config("pggan_completion", "/x")
    trainer = pgc.PGGANCompletion(cfg)
    batch = _batch(cfg, n=4)
    fade = trainer.phases()[1]  # 8x8 with a fade-in
    trainer.set_phase(fade)
    trainer.step.assign(fade.start_step)  # alpha = 0
    prepared = trainer.prepare_batch(batch, trainer.seed_generator)
    pooled = _np(downsample2x(batch["image"], cfg.data.image_size // 8))
    np.testing.assert_allclose(_np(prepared["image"]), _np(upsample2x(downsample2x(pooled))), atol=1e-6)
    off = pgc.PGGANCompletion(tiny_config("pggan_completion", "/x", **{"loss.fade_reals": False}))
    off.set_phase(off.phases()[1])
    off.step.assign(fade.start_step)
    np.testing.assert_allclose(_np(off.prepare_batch(batch, off.seed_generator)["image"]), pooled, atol=1e-6)


def test_discriminator_attribute_loss_reads_the_fakes_with_their_requested_attributes():
    cfg = tiny_config("pggan_completion", "/x", **{"loss.history_size": 0})
    trainer = pgc.PGGANCompletion(cfg)
    batch = trainer.prepare_batch(_batch(cfg, n=4), trainer.seed_generator)
    seed = keras.random.SeedGenerator(3)
    d = trainer.discriminator_losses(batch, seed)
    flipped = {**batch, "target_attributes": 1.0 - batch["target_attributes"]}
    d_flipped = trainer.discriminator_losses(flipped, keras.random.SeedGenerator(3))
    # the fakes' attribute term changes with the attributes G was asked for (the real term does not)
    assert not np.allclose(_np(d["d_attr_fake"]), _np(d_flipped["d_attr_fake"]))
    np.testing.assert_allclose(_np(d["d_attr"]), _np(d_flipped["d_attr"]), rtol=1e-6)
    np.testing.assert_allclose(
        _np(d["d_loss"]),
        _np(d["d_adv"] + cfg.loss.lambda_attr * (d["d_attr"] + d["d_attr_fake"])),
        rtol=1e-5,
    )


def test_paper_presets_judge_the_raw_output():
    from tf_faceedit.configs.resolution import resolve_config

    assert pgc.PGGANCompletionConfig().loss.d_fake == "raw"
    for preset in ("pggan_completion_celeba128", "pggan_completion_celeba1024", "pggan_completion_cpu64"):
        assert resolve_config(config_file=preset, data_dir="/x").loss.d_fake == "raw", preset


@pytest.mark.parametrize("resolution, used", [(4, False), (8, False), (16, True), (32, True)])
def test_boundary_term_only_from_its_minimum_resolution(resolution, used):
    cfg = tiny_config("pggan_completion", "/x", **{"data.image_size": 32})
    trainer = pgc.PGGANCompletion(cfg)
    stage = [p for p in trainer.schedule() if p.info["resolution"] == resolution][0]
    trainer.set_phase(stage)
    batch = trainer.prepare_batch(_batch(cfg, n=2), trainer.seed_generator)
    terms = trainer.generator_terms(batch, trainer.generator_output(batch))
    weight, value = terms["g_bdy"]
    assert (weight > 0) == used
    assert np.any(_np(value) > 0) == used


def test_flipped_rows_keep_only_the_context_reconstruction():
    cfg = tiny_config("pggan_completion", "/x", **{"loss.rec_on_flipped": "context"})
    trainer = pgc.PGGANCompletion(cfg)
    batch = trainer.prepare_batch(_batch(cfg, n=4), trainer.seed_generator)
    batch["kept"] = ops.convert_to_tensor(np.array([1, 0, 1, 0], "float32"))
    raw = trainer.generator_output(batch)
    hole = _np(batch["mask"]) >= 1.0  # pixels wholly in the hole (the pooled mask is fractional at its edge)
    assert hole.any()
    changed = np.where(hole, _np(raw) + 0.5, _np(raw)).astype("float32")  # only the hole differs
    rec = _np(trainer.generator_terms(batch, ops.convert_to_tensor(raw))["g_rec"][1])
    rec_changed = _np(trainer.generator_terms(batch, ops.convert_to_tensor(changed))["g_rec"][1])
    np.testing.assert_allclose(rec[[1, 3]], rec_changed[[1, 3]], rtol=1e-5)  # flipped rows: the hole is free
    assert np.all(rec[[0, 2]] != rec_changed[[0, 2]])  # kept rows: still reconstructed in the hole
    full = pgc.PGGANCompletion(tiny_config("pggan_completion", "/x"))
    full_batch = {**batch}
    a = _np(full.generator_terms(full_batch, ops.convert_to_tensor(raw))["g_rec"][1])
    b = _np(full.generator_terms(full_batch, ops.convert_to_tensor(changed))["g_rec"][1])
    assert np.all(a != b)  # the paper's choice: every row is reconstructed in the hole


def test_generator_terms_sum_to_the_loss_and_the_readout_shares_sum_to_one():
    from tf_faceedit.training.loss_balance import format_balance, loss_balance

    cfg = tiny_config("pggan_completion", "/x", **{"loss.lambda_dfm": 2.0})
    trainer = pgc.PGGANCompletion(cfg)
    trainer.set_phase(trainer.schedule()[-1])
    before = [_np(v).copy() for v in trainer.state_variables()]
    rows = loss_balance(trainer, _batch(cfg, n=4))
    assert set(rows) == {"g_adv", "g_attr", "g_rec", "g_bdy", "g_dfm"}
    assert abs(sum(row["grad_share"] for row in rows.values()) - 1.0) < 1e-6
    for row in rows.values():
        assert row["weighted"] == pytest.approx(row["weight"] * row["value"], rel=1e-5)
    for variable, value in zip(trainer.state_variables(), before):  # the readout leaves the run as it was
        np.testing.assert_array_equal(_np(variable), value)
    heavier = pgc.PGGANCompletion(
        tiny_config("pggan_completion", "/x", **{"loss.lambda_dfm": 2.0, "loss.lambda_rec": 5000.0})
    )
    heavier.set_weights(trainer.get_weights())
    heavier.set_phase(heavier.schedule()[-1])
    rows_heavy = loss_balance(heavier, _batch(cfg, n=4))
    # a 10x weight is a 10x pull on G's output (the readout is linear in the weights)
    assert rows_heavy["g_rec"]["grad_norm"] == pytest.approx(10 * rows["g_rec"]["grad_norm"], rel=1e-3)
    assert rows_heavy["g_rec"]["grad_share"] > rows["g_rec"]["grad_share"]
    assert "g_rec" in format_balance(rows)
