"""Networks saved by earlier code still load: tests/fixtures/pggan_completion_*.keras were written by the single-file
`methods/pggan_completion.py` (commit ffe1404, see tests/fixtures/make_pggan_completion_fixtures.py), with their
outputs on a fixed input. The registered names, `get_config` and the weight paths must stay stable for them to load
and give those outputs (checkpoints and exports hold the same `.weights.h5` layout)."""

import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from tf_faceedit.methods import pggan_completion as pgc

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
KWARGS = {"resolution": 8, "start_resolution": 4, "num_attributes": 2, "fmap_base": 16, "fmap_max": 8}
CLASSES = {"generator": pgc.PGGANCompletionGenerator, "discriminator": pgc.PGGANCompletionDiscriminator}


@pytest.fixture(scope="module")
def stored():
    with np.load(FIXTURES / "pggan_completion_outputs.npz") as data:
        return {key: data[key] for key in data}


def _outputs(name, network, stored):
    if name == "generator":
        out = network({key: stored[key] for key in ("image", "mask", "attributes")})
        return {"g_image": out["image"], "g_composited": out["composited"]}
    out = network(stored["image"])
    return {"d_src": out["src"], "d_cls": out["cls"]}


def _assert_stored(outputs, stored):
    for key, value in outputs.items():
        np.testing.assert_allclose(keras.ops.convert_to_numpy(value), stored[key], atol=1e-5, err_msg=key)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_old_keras_file_loads_without_custom_objects_and_gives_the_stored_outputs(name, stored):
    network = keras.saving.load_model(FIXTURES / f"pggan_completion_{name}.keras")
    assert type(network) is CLASSES[name]
    assert network.stage == 1 and float(keras.ops.convert_to_numpy(network.alpha)) == 0.375
    assert network.get_config() == CLASSES[name](**KWARGS, stage=1).get_config()
    _assert_stored(_outputs(name, network, stored), stored)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_old_weights_file_loads_into_a_new_network(name, stored, tmp_path):
    # the .keras zip's model.weights.h5 is the file `save_weights` writes (same H5 layout)
    with zipfile.ZipFile(FIXTURES / f"pggan_completion_{name}.keras") as archive:
        (tmp_path / "old.weights.h5").write_bytes(archive.read("model.weights.h5"))
    network = CLASSES[name](**KWARGS, stage=1)
    before = _outputs(name, network, stored)
    network.load_weights(tmp_path / "old.weights.h5")
    assert float(keras.ops.convert_to_numpy(network.alpha)) == 0.375
    _assert_stored(_outputs(name, network, stored), stored)
    # the check bites: a freshly initialised network does not give the stored outputs
    assert not np.allclose(
        keras.ops.convert_to_numpy(next(iter(before.values()))), stored[next(iter(before))], atol=1e-3
    )


def test_the_package_registers_the_method_and_the_serializable_names_of_the_single_file_module():
    from tf_faceedit import registry

    assert all(hasattr(pgc, name) for name in pgc.__all__)
    assert registry.get("pggan_completion").trainer_class is pgc.PGGANCompletion
    assert keras.saving.get_registered_name(pgc.PGGANCompletionGenerator) == "tf_faceedit>PGGANCompletionGenerator"
    assert (
        keras.saving.get_registered_name(pgc.PGGANCompletionDiscriminator) == "tf_faceedit>PGGANCompletionDiscriminator"
    )
