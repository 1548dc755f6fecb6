"""The method contract: every registered method, checked the same way (keras-hub's `run_layer_test`, TF-GAN's loss
test mixin). A method only states what it promises in `EXPECTED` below (its networks' output shapes, the loss keys
of each update, the rows of its sample grid) and `tests/helpers.py` TINY holds its tiny config; the checks are
shared:

  * network shapes: every network of `trainer.networks` on a small batch gives the stated output shapes, finite;
  * the inference contract of its task (`GANTrainer.infer`): shapes and value ranges of "image" / "completed" /
    "logits" and of the extras ("attention" in [0, 1], "content" in [-1, 1]);
  * the capabilities it declares on its registry entry (`registry.Capabilities`) are what its trainer does: task and
    attribute range, `predict_attributes` present and giving {0, 1} values exactly when declared, "attention" /
    "content" in the inference output exactly when declared, inference overrides that name config fields;
  * per-example losses: every update's loss dict has the stated keys, one finite value per example;
  * each update changes only its own networks (trainable and non-trainable weights of the others stay put);
  * `.keras` round trip of every exported network without `custom_objects`, same outputs;
  * `sample_rows`: the stated row names in every phase, N images each, finite, in [-1, 1];
  * seeded determinism of a fresh start: one seed, one set of initial weights, batches and draws;
  * training and resume (a run of 4 steps on generated faces, then the same command after a simulated crash):
    non-empty finite logs of the last phase's losses, and the resumed run ends with the same weights and logs.

A registered method without an entry here (or in TINY) fails `test_every_registered_method_has_a_contract`.
Variants (`CASES`) rerun the cheap checks on a second setting of a method (e.g. AttentionGAN's scheme I).
"""

import dataclasses
import json
import shutil

import keras
import numpy as np
import pytest
from keras import ops

from tests.helpers import TINY, tiny_config
from tf_faceedit import registry
from tf_faceedit.training import driver


@dataclasses.dataclass(frozen=True)
class Expect:
    """What a method promises at its tiny config (shapes without the batch axis).

    outputs: network name -> its output structure of shapes (a dict of shapes, or one shape);
    losses: update name -> the keys of its loss dict;
    rows: the names of `sample_rows`, one list for every phase or a dict phase name -> list;
    inputs: network name -> input shapes, for networks without a functional `input` (subclassed models);
    moves_statistics: update name -> other networks whose non-trainable statistics (BatchNorm moving averages) the
      update moves because it runs them in training mode, as the reference implementation does (their trainable
      weights never move).
    """

    outputs: dict
    losses: dict
    rows: object
    inputs: dict = dataclasses.field(default_factory=dict)
    moves_statistics: dict = dataclasses.field(default_factory=dict)


def _agan_rows(n_fg):
    """AttentionGAN's grid, both directions: input, the attention masks, the content images, the output."""

    def direction(name):
        if n_fg == 0:  # scheme I: one attention mask and one content image
            return [f"{name} input", f"{name} attention", f"{name} content", f"{name} output"]
        return (
            [f"{name} input"]
            + [f"{name} att {i + 1}" for i in range(n_fg)]
            + [f"{name} att bg"]
            + [f"{name} content {i + 1}" for i in range(n_fg)]
            + [f"{name} output"]
        )

    return direction("Smiling 0->1") + direction("Smiling 1->0")


_AGAN_G = {"image": (32, 32, 3), "attention": (32, 32, 3), "content": (32, 32, 6)}  # scheme II, n = 3 masks
_AGAN_LOSSES = {"g": {"g_adv", "g_cycle", "g_identity", "g_tv", "g_pixel", "g_loss"}, "d": {"d_a", "d_b", "d_loss"}}

EXPECTED = {
    "sagan": Expect(
        outputs={
            "generator": {"image": (32, 32, 3), "attention": (32, 32, 1), "edited": (32, 32, 3)},
            "discriminator": {"src": (2, 2, 1), "cls": (1,)},
        },
        losses={
            "d": {"d_adv", "d_cls", "d_gp", "d_loss"},
            "g": {"g_adv", "g_cls", "g_rec_cycle", "g_rec_id", "g_loss"},
        },
        rows=["input", "Eyeglasses flipped", "Eyeglasses attention"],
    ),
    "fader": Expect(
        outputs={"autoencoder": {"image": (32, 32, 3), "latent": (2, 2, 16)}, "lat_dis": (1,)},
        losses={"lat_dis": {"lat_dis_loss", "lat_dis_acc"}, "ae": {"ae_rec", "ae_adv", "lambda_e", "ae_loss"}},
        rows=["input", "reconstruction", "Smiling=0", "Smiling=0.5", "Smiling=1", "Smiling=1.5"],
    ),
    "icgan": Expect(
        outputs={"generator": (16, 16, 3), "discriminator": (1,), "encoder_z": (8,), "encoder_y": (2,)},
        losses={"d": {"d_adv", "d_wrong", "d_loss"}, "g": {"g_adv", "g_loss"}, "e": {"e_z", "e_y", "e_loss"}},
        rows={
            "cgan": ["G(z, y)", "Eyeglasses flipped", "Smiling flipped"],
            "encoders": ["input", "reconstruction", "Eyeglasses flipped", "Smiling flipped"],
        },
        # DCGAN's step (the IcGAN reference): G and D run in training mode in both players' updates
        moves_statistics={"d": {"generator"}, "g": {"discriminator"}},
    ),
    "pggan_completion": Expect(  # a fresh trainer is at stage 0 (4x4); the grid shows its tiles at 64x64
        outputs={
            "generator": {"image": (4, 4, 3), "composited": (4, 4, 3)},
            "discriminator": {"src": (1,), "cls": (2,)},
        },
        losses={
            "d": {"d_adv", "d_attr", "d_attr_fake", "d_loss"},
            "g": {"g_adv", "g_attr", "g_rec", "g_bdy", "g_loss"},
        },
        rows=["masked input", "completion", "Male flipped", "Smiling flipped", "ground truth"],
        inputs={"generator": {"image": (4, 4, 3), "mask": (4, 4, 1), "attributes": (2,)}, "discriminator": (4, 4, 3)},
    ),
    "attentiongan": Expect(
        outputs={
            "generator_ab": _AGAN_G,
            "generator_ba": _AGAN_G,
            "discriminator_a": (8, 8, 1),
            "discriminator_b": (8, 8, 1),
        },
        losses=_AGAN_LOSSES,
        rows=_agan_rows(2),
    ),
    "classifier": Expect(
        outputs={"classifier": {"logits": (3,), "features": (8,)}}, losses={"c": {"c_loss", "c_acc"}}, rows=["input"]
    ),
}

# (case id, method, config overrides, expectations): the registered methods at their tiny config, and variants
CASES = [(name, name, {}, EXPECTED.get(name)) for name in registry.names()] + [
    (
        "attentiongan-scheme1",
        "attentiongan",
        {"model.scheme": 1},
        dataclasses.replace(
            EXPECTED["attentiongan"],
            rows=_agan_rows(0),
            outputs={
                **{
                    g: {"image": (32, 32, 3), "attention": (32, 32, 1), "content": (32, 32, 3)}
                    for g in ("generator_ab", "generator_ba")
                },
                "discriminator_a": (8, 8, 1),
                "discriminator_b": (8, 8, 1),
            },
        ),
    ),
    (
        "attentiongan-attention_d",
        "attentiongan",
        {"model.attention_discriminator": True},
        dataclasses.replace(
            EXPECTED["attentiongan"],
            losses={"g": _AGAN_LOSSES["g"] | {"g_adv_att"}, "d": _AGAN_LOSSES["d"] | {"d_a_att", "d_b_att"}},
            outputs={
                **EXPECTED["attentiongan"].outputs,
                "discriminator_a_att": (8, 8, 1),
                "discriminator_b_att": (8, 8, 1),
            },
        ),
    ),
]
CASE_IDS = [case[0] for case in CASES]
METHOD_CASES = [case for case in CASES if case[0] == case[1]]
# The train-and-resume check costs two traced runs (about 1-3 minutes of CPU for these three methods on 2 cores):
# in the default tier their own files already train and resume them (tests/training/test_gan_trainer.py for sagan,
# test_attention_gan.py and test_pggan_completion.py), so here they run in the slow tier.
SLOW_TRAINING = {"sagan", "attentiongan", "pggan_completion"}
TRAINING_CASES = [
    pytest.param(*case, id=case[0], marks=[pytest.mark.slow] if case[1] in SLOW_TRAINING else [])
    for case in METHOD_CASES
]


def _np(x):
    return ops.convert_to_numpy(x)


def _config(method, data_dir, overrides):
    overrides = dict(overrides)
    attributes = overrides.pop("data.attributes", None)
    return tiny_config(method, data_dir, attributes=attributes.split(",") if attributes else None, **overrides)


def _trainer(method, data_dir, overrides):
    cfg = _config(method, data_dir, overrides)
    keras.utils.set_random_seed(cfg.train.seed)  # as the training driver does before it builds the trainer
    return registry.get(method).trainer_class(cfg)


_BATCHES = {}


def _data_batch(method, overrides, data_dir, n):
    """n examples of the trainer's own training pipeline on the generated faces (cached per case)."""
    key = (method, json.dumps(overrides, sort_keys=True), str(data_dir), n)
    if key not in _BATCHES:
        cfg = _config(method, data_dir, overrides)
        trainer_class = registry.get(method).trainer_class
        records = trainer_class.load_records(cfg.data, "train")
        dataset = trainer_class.make_dataset(
            cfg.data, "train", batch_size=n, training=True, seed=0, repeat=False, records=records
        )
        _BATCHES[key] = {k: _np(v) for k, v in next(iter(dataset)).items()}
    return {k: ops.convert_to_tensor(v) for k, v in _BATCHES[key].items()}


def _random_inputs(spec, n=2, seed=0):
    """Inputs for a network from its input shapes, by name: attributes in {0, 1}, masks in {0, 1}, z ~ N(0, 1),
    anything else (images, latents) uniform in [-1, 1]."""
    rng = np.random.RandomState(seed)

    def one(name, shape):
        shape = (n,) + tuple(shape)
        if "attributes" in name or "mask" in name:
            return rng.randint(0, 2, shape).astype("float32")
        if name == "z":
            return rng.normal(size=shape).astype("float32")
        return rng.uniform(-1, 1, shape).astype("float32")

    if isinstance(spec, dict):
        return {name: one(name, shape) for name, shape in spec.items()}
    return one("image", spec)


def _input_spec(network, expect, name):
    if name in expect.inputs:
        return expect.inputs[name]
    return keras.tree.map_structure(lambda t: tuple(t.shape[1:]), network.input)


def _shapes(structure):
    return keras.tree.map_structure(lambda v: tuple(v.shape[1:]), structure)


def _weights(trainer):
    """path -> (variable, value) of every weight of every network (shared variables once)."""
    out = {}
    for network in trainer.networks.values():
        for variable in network.weights:
            out.setdefault(id(variable), (variable, _np(variable).copy()))
    return out


def _checkpoint_weights(checkpoint):
    """Every array of every `.weights.h5` file of a checkpoint folder, by file and dataset path."""
    import h5py

    arrays = {}
    for path in sorted(checkpoint.glob("*.weights.h5")):
        with h5py.File(path, "r") as f:
            f.visititems(
                lambda key, item, name=path.name: (
                    arrays.__setitem__(f"{name}:{key}", item[()]) if isinstance(item, h5py.Dataset) else None
                )
            )
    return arrays


# -- the checks ------------------------------------------------------------------------------------------------------


def test_every_registered_method_has_a_contract():
    missing = [name for name in registry.names() if name not in EXPECTED or name not in TINY]
    assert not missing, f"add an Expect to EXPECTED and a tiny config to tests/helpers.py TINY for: {missing}"
    assert set(EXPECTED) <= set(registry.names()), "EXPECTED names a method that is not registered"


@pytest.mark.parametrize("case_id, method, overrides, expect", CASES, ids=CASE_IDS)
def test_network_shapes(case_id, method, overrides, expect):
    trainer = _trainer(method, "/x", overrides)
    assert set(trainer.networks) == set(expect.outputs), "the networks differ from the stated ones"
    for name, network in trainer.networks.items():
        out = network(_random_inputs(_input_spec(network, expect, name)))
        assert _shapes(out) == expect.outputs[name], name
        for value in keras.tree.flatten(out):
            assert value.shape[0] == 2 and np.all(np.isfinite(_np(value))), name


@pytest.mark.parametrize("case_id, method, overrides, expect", CASES, ids=CASE_IDS)
def test_inference_contract(case_id, method, overrides, expect, synthetic_celeba):
    trainer = _trainer(method, synthetic_celeba, overrides)
    cfg = trainer.config
    size, k, n = cfg.data.image_size, len(cfg.data.attributes), 3
    lo, hi = trainer.attribute_range
    assert trainer.task in ("edit", "complete", "classify") and lo < hi
    rng = np.random.RandomState(1)
    inputs = {
        "image": rng.uniform(-1, 1, (n, size, size, 3)).astype("float32"),
        "attributes": rng.randint(0, 2, (n, k)).astype("float32"),
    }
    if trainer.task == "complete":
        mask = np.zeros((n, size, size, 1), "float32")
        mask[:, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1
        inputs["mask"] = mask
    out = {
        key: _np(value)
        for key, value in trainer.infer({k_: ops.convert_to_tensor(v) for k_, v in inputs.items()}).items()
    }
    assert all(np.all(np.isfinite(v)) and v.shape[0] == n for v in out.values())
    main = {"edit": ["image"], "complete": ["completed", "raw"], "classify": ["logits", "probabilities"]}[trainer.task]
    assert set(main) <= set(out), f"{trainer.task} returns {main}"
    if trainer.task == "edit":
        assert out["image"].shape == inputs["image"].shape
    if trainer.task == "complete":  # at the current stage's resolution
        assert out["completed"].shape == out["raw"].shape and out["completed"].shape[-1] == 3
    if trainer.task == "classify":
        assert out["logits"].shape == (n, k)
        np.testing.assert_allclose(out["probabilities"], 1 / (1 + np.exp(-out["logits"])), rtol=1e-5, atol=1e-6)
    for key in ("image", "completed", "raw", "content"):
        if key in out:
            assert np.abs(out[key]).max() <= 1.0 + 1e-6, key
    if "attention" in out:
        assert out["attention"].min() >= 0 and out["attention"].max() <= 1 and out["attention"].ndim == 4


@pytest.mark.parametrize("case_id, method, overrides, expect", CASES, ids=CASE_IDS)
def test_declared_capabilities_match_the_trainer(case_id, method, overrides, expect, synthetic_celeba):
    caps = registry.get(method).capabilities
    trainer = _trainer(method, synthetic_celeba, overrides)
    cfg = trainer.config
    assert caps.task == trainer.task, "Capabilities.task differs from the trainer's task"
    assert tuple(caps.attribute_range) == tuple(float(v) for v in trainer.attribute_range), "attribute_range"
    if caps.attribute_controls == "checkbox":
        assert tuple(caps.attribute_range) == (0.0, 1.0), "checkboxes give {0, 1}: declare sliders for another range"
    predict = getattr(trainer, "predict_attributes", None)
    assert caps.predicts_attributes == callable(predict), "predicts_attributes <=> the trainer has predict_attributes"
    size, k, n = cfg.data.image_size, len(cfg.data.attributes), 3
    rng = np.random.RandomState(2)
    image = rng.uniform(-1, 1, (n, size, size, 3)).astype("float32")
    if caps.predicts_attributes:
        predicted = _np(predict(ops.convert_to_tensor(image)))
        assert predicted.shape == (n, k) and set(np.unique(predicted)) <= {0.0, 1.0}
    if caps.task != "classify":
        inputs = {"image": image, "attributes": rng.randint(0, 2, (n, k)).astype("float32")}
        if caps.task == "complete":
            inputs["mask"] = np.ones((n, size, size, 1), "float32")
        out = trainer.infer({key: ops.convert_to_tensor(value) for key, value in inputs.items()})
        assert ("attention" in out) == caps.attention_masks, "attention_masks <=> infer returns 'attention'"
        assert ("content" in out) == caps.content_masks, "content_masks <=> infer returns 'content'"
    for field, value in caps.inference_overrides.items():
        cfg.override(f"{field}={value}").validate()  # names a field of the method's config, with a valid value
    # what a zoo entry stores: networks of the trainer, at least one
    assert caps.inference_networks and set(caps.inference_networks) <= set(trainer.networks), caps.inference_networks


def test_code_outside_the_methods_does_not_test_method_names():
    """What a method offers comes from its Capabilities (a new method needs no edit outside its own file)."""
    import re
    from pathlib import Path

    import tf_faceedit

    root = Path(tf_faceedit.__file__).parent
    pattern = re.compile(r"(?<!for )\bmethod\b\s*(==|!=|\bin\b)\s*[\"'(\[{]")
    hits = [
        f"{path.relative_to(root)}:{number}: {line.strip()}"
        for path in sorted(root.rglob("*.py"))
        if "methods" not in path.relative_to(root).parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, "declare it on the method's registry.Capabilities instead:\n" + "\n".join(hits)


def _method_tables(source, method_names):
    """(line, keys) of each dict in `source` keyed by method names: a `{...}` literal or a `dict(...)` call with a
    registered method's name among its keys."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
            keys = [k.arg for k in node.keywords if k.arg]
        else:
            continue
        named = sorted(set(keys) & set(method_names))
        if named:
            found.append((node.lineno, named))
    return found


def test_no_table_keyed_by_method_name_outside_the_methods():
    """A per-method table (a dict keyed by method names, e.g. the zoo's former INFERENCE_NETWORKS) anywhere in the
    package outside `methods/` is a list a new method would have to join: declare it on `registry.Capabilities`."""
    from pathlib import Path

    import tf_faceedit

    names = registry.names()
    table = 'INFERENCE_NETWORKS = {\n    "sagan": ("generator",),\n    "fader": ("autoencoder",),\n}\n'
    assert _method_tables(table, names) == [(1, ["fader", "sagan"])]  # the check bites
    assert _method_tables("TABLE = dict(sagan=1, other=2)\n", names) == [(1, ["sagan"])]
    root = Path(tf_faceedit.__file__).parent
    hits = [
        f"{path.relative_to(root)}:{line}: keyed by {', '.join(keys)}"
        for path in sorted(root.rglob("*.py"))
        if "methods" not in path.relative_to(root).parts
        for line, keys in _method_tables(path.read_text(), names)
    ]
    assert not hits, "declare it on the method's registry.Capabilities instead:\n" + "\n".join(hits)


@pytest.mark.parametrize("case_id, method, overrides, expect", CASES, ids=CASE_IDS)
def test_losses_are_per_example_and_finite(case_id, method, overrides, expect, synthetic_celeba):
    trainer = _trainer(method, synthetic_celeba, overrides)
    n = trainer.config.train.batch_size
    batch = trainer.prepare_batch(_data_batch(method, overrides, synthetic_celeba, n), trainer.seed_generator)
    updates = trainer.all_updates()
    assert {u.name: None for u in updates}.keys() == expect.losses.keys()
    for update in updates:
        losses = update.loss_fn(batch, trainer.seed_generator)
        assert set(losses) == expect.losses[update.name] and update.loss_key in losses, update.name
        for key, value in losses.items():
            assert tuple(value.shape) == (n,), f"{key}: one value per example, got shape {tuple(value.shape)}"
            assert np.all(np.isfinite(_np(value))), key


@pytest.mark.parametrize("case_id, method, overrides, expect", CASES, ids=CASE_IDS)
def test_each_update_changes_only_its_own_networks(case_id, method, overrides, expect, synthetic_celeba):
    trainer = _trainer(method, synthetic_celeba, overrides)
    trainer.compile(optimizers=trainer.make_optimizers())
    n = trainer.config.train.batch_size
    batch = trainer.prepare_batch(_data_batch(method, overrides, synthetic_celeba, n), trainer.seed_generator)
    trainable = {id(v) for net in trainer.networks.values() for v in net.trainable_weights}
    problems = []
    for update in trainer.all_updates():
        own = {id(w) for name in update.networks for w in trainer.networks[name].weights}
        own |= {
            id(w)
            for name in expect.moves_statistics.get(update.name, ())
            for w in trainer.networks[name].non_trainable_weights
        }
        updated = {id(v) for v in trainer.variables_of(update)}
        before = _weights(trainer)
        trainer._run_update(update, batch)
        changed = {key for key, (variable, value) in before.items() if not np.array_equal(value, _np(variable))}
        if not changed & updated:
            problems.append(f"update {update.name} changed none of its variables")
        outside = sorted(before[key][0].path for key in changed - own)
        if outside:
            problems.append(f"update {update.name} changed weights of other networks: {outside[:6]}")
        stray = sorted(before[key][0].path for key in (changed & trainable) - updated)
        if stray:
            problems.append(f"update {update.name} changed trainable weights it does not train: {stray[:6]}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("case_id, method, overrides, expect", CASES, ids=CASE_IDS)
def test_keras_round_trip_without_custom_objects(case_id, method, overrides, expect, tmp_path):
    trainer = _trainer(method, "/x", overrides)
    exported = trainer.export_networks()
    assert exported and set(exported) <= set(trainer.networks)
    for name, network in exported.items():
        inputs = _random_inputs(_input_spec(network, expect, name), seed=3)
        path = tmp_path / f"{name}.keras"
        network.save(path)
        loaded = keras.saving.load_model(path)  # no custom_objects: every layer is registered
        want, got = network(inputs), loaded(inputs)
        assert _shapes(got) == _shapes(want), name
        for a, b in zip(keras.tree.flatten(want), keras.tree.flatten(got)):
            np.testing.assert_allclose(_np(b), _np(a), atol=1e-6, err_msg=name)


@pytest.mark.parametrize("case_id, method, overrides, expect", CASES, ids=CASE_IDS)
def test_sample_rows(case_id, method, overrides, expect, synthetic_celeba):
    trainer = _trainer(method, synthetic_celeba, overrides)
    batch = _data_batch(method, overrides, synthetic_celeba, 3)
    for phase in trainer.phases():
        trainer.set_phase(phase)
        rows = trainer.sample_rows(batch)
        names = [name for name, _ in rows]
        assert names == (expect.rows[phase.name] if isinstance(expect.rows, dict) else expect.rows), phase.name
        sizes = {tuple(images.shape[1:3]) for _, images in rows}
        assert len(sizes) == 1, f"rows of different sizes: {sizes}"
        for name, images in rows:
            images = _np(images)
            assert images.ndim == 4 and images.shape[0] == 3 and images.shape[-1] in (1, 3), name
            assert np.all(np.isfinite(images)) and np.abs(images).max() <= 1.0 + 1e-6, name


@pytest.mark.parametrize("case_id, method, overrides, expect", METHOD_CASES, ids=[c[0] for c in METHOD_CASES])
def test_a_seed_gives_one_start(case_id, method, overrides, expect, synthetic_celeba):
    """Seeded determinism of a fresh start (the steps after it: the resume test below): one seed gives the same
    initial weights, the same batches and the same drawn targets/noise; another seed other weights."""

    def start(seed, with_batch=True):
        trainer = _trainer(method, synthetic_celeba, {**overrides, "train.seed": seed})
        weights = [_np(w) for net in trainer.networks.values() for w in net.weights]
        if not with_batch:
            return weights, None
        cfg = trainer.config
        dataset = trainer.make_dataset(
            cfg.data,
            "train",
            batch_size=cfg.train.batch_size,
            training=True,
            seed=seed,
            records=trainer.load_records(cfg.data, "train"),
        )
        batch = trainer.prepare_batch(next(iter(dataset)), trainer.seed_generator)
        return weights, {key: _np(value) for key, value in batch.items()}

    (w1, b1), (w2, b2), (w3, _) = start(3), start(3), start(4, with_batch=False)
    assert len(w1) == len(w2) and all(np.array_equal(a, b) for a, b in zip(w1, w2)), "initial weights"
    assert b1.keys() == b2.keys() and all(np.array_equal(b1[k], b2[k]) for k in b1), "batch or draws"
    assert not all(np.array_equal(a, b) for a, b in zip(w1, w3)), "train.seed does not reach the initial weights"


@pytest.mark.parametrize("case_id, method, overrides, expect", TRAINING_CASES)
def test_training_resumes_exactly(case_id, method, overrides, expect, synthetic_celeba, tmp_path):
    """A run of 4 steps (checkpoints at 2 and 4); then the same command on a copy of its folder without the last
    checkpoint, as after a crash at step 3: it resumes at step 2 and ends with the very same weights and logs.
    Steps 2-3 (icgan: the encoder phase; pggan_completion: the 8x8 fade-in) are thus computed twice from one state:
    the step itself is deterministic too."""
    total, mid = 4, 2
    cfg = _config(
        method, synthetic_celeba, {"train.steps": total, "train.keep_checkpoints": 10, "train.sample_every": 100}
    )
    whole = driver.run(cfg, tmp_path / "whole")
    assert whole["step"] == total and whole["checkpoint"].name == f"ckpt-{total:08d}"
    assert whole["logs"], "no losses were logged: nothing trained"
    assert all(np.isfinite(v) for v in whole["logs"].values()), whole["logs"]
    last = registry.get(method).trainer_class(cfg)
    last.set_phase(last.phase_at(total - 1))
    assert set(whole["logs"]) == set().union(*(expect.losses[u.name] for u in last.updates()))

    crashed = tmp_path / "crashed"
    shutil.copytree(tmp_path / "whole", crashed, ignore=shutil.ignore_patterns(f"ckpt-{total:08d}", ".lock"))
    assert (crashed / "checkpoints" / f"ckpt-{mid:08d}").is_dir()
    resumed = driver.run(cfg, crashed)
    assert resumed["step"] == total
    assert json.loads((resumed["checkpoint"] / "state.json").read_text())["step"] == total
    end_a, end_b = _checkpoint_weights(whole["checkpoint"]), _checkpoint_weights(resumed["checkpoint"])
    assert end_a and end_a.keys() == end_b.keys()
    differ = [key for key in end_a if not np.array_equal(end_a[key], end_b[key])]
    assert not differ, f"the resumed run ended elsewhere than the uninterrupted one: {differ[:5]}"
    assert resumed["logs"] == whole["logs"]
