"""Networks saved before issue 17's faster norm layers still load and compute what they did.

tests/fixtures/norm_blocks.keras was written by the code of commit d4cd9f3 (instance norm =
`keras.layers.GroupNormalization(groups=-1)`, batch norm = `keras.layers.BatchNormalization`; see
tests/fixtures/make_norm_fixtures.py), with its outputs on a fixed input in inference and in training mode."""

from pathlib import Path

import keras
import numpy as np
import pytest

from tf_faceedit.layers.norm import BatchNormalization, InstanceNormalization

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def stored():
    with np.load(FIXTURES / "norm_blocks_outputs.npz") as data:
        return {key: data[key] for key in data}


def _norm_layers(model):
    found = []
    for layer in model._flatten_layers(include_self=False):
        norm = getattr(layer, "norm_layer", None)
        if norm is not None:
            found.append(norm)
    return found


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_old_keras_file_loads_into_the_new_layers_and_gives_the_stored_outputs(stored, mode):
    model = keras.saving.load_model(FIXTURES / "norm_blocks.keras")
    kinds = {type(layer) for layer in _norm_layers(model)}
    assert InstanceNormalization in kinds and BatchNormalization in kinds  # the new classes, not the old ones
    y = model(stored["image"], training=mode == "train")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(y), stored[mode], atol=2e-5)


def test_old_weights_file_loads_into_a_freshly_built_network(stored, tmp_path):
    import sys
    import zipfile

    sys.path.insert(0, str(FIXTURES))
    try:
        from make_norm_fixtures import build
    finally:
        sys.path.remove(str(FIXTURES))
    with zipfile.ZipFile(FIXTURES / "norm_blocks.keras") as archive:
        (tmp_path / "old.weights.h5").write_bytes(archive.read("model.weights.h5"))
    model = build()
    model.load_weights(tmp_path / "old.weights.h5")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(stored["image"])), stored["infer"], atol=2e-5)
