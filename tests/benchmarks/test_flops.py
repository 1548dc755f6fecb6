"""Like for like (issue 36): in every case of `benchmarks/compare_peers.py`, our networks have the reference's
parameter count and model FLOPs within 1% (ours counted from the built Keras models, the PyTorch reference's from
its architecture: `benchmarks/flops.py`; torch is never imported). Also the counting rules themselves."""

import importlib.util
from pathlib import Path

import keras
import pytest

from benchmarks import flops

ROOT = Path(__file__).resolve().parents[2]


def _compare_peers():
    spec = importlib.util.spec_from_file_location("compare_peers", ROOT / "benchmarks" / "compare_peers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compare_peers = _compare_peers()
ALL_CASES = compare_peers.CASES + compare_peers.EXTRA_CASES


@pytest.mark.parametrize("method, size", sorted({(c[0], c[2]) for c in ALL_CASES}))
def test_every_case_is_like_for_like(method, size):
    ours, reference = compare_peers.network_counts(method, size)
    cases = [case for case in ALL_CASES if case[:1] == (method,) and case[2] == size]
    assert cases
    for case in cases:
        rows = compare_peers.like_for_like(case, ours, reference)
        assert {what for what, *_ in rows} >= {"FLOPs/iter"}
        over = [row for row in rows if row[3] > compare_peers.LIKE_FOR_LIKE_TOLERANCE]
        assert not over, f"{case}: ours and the reference differ by more than 1%: {over}"


def test_reference_counts_are_the_drivers():
    """The reference's parameter counts as its driver printed them (issue 36: D 11.19 M at 128^2 and, with the 1x1
    cls kernel, at 64^2) and as its layers add up by hand."""
    assert flops.reference_networks("sagan", 128)["D"]["params"] == 11_190_754
    assert flops.reference_networks("sagan", 64)["D"]["params"] == 11_187_682
    # the SAN: 7x7 3->32, 3 down convs, 8 residual 3x3 convs with batch norm, 3 transposed, 7x7 32->1 (all biased)
    san = (
        (49 * 3 * 32 + 32)
        + (16 * 32 * 64 + 64)
        + (16 * 64 * 128 + 128)
        + (16 * 128 * 256 + 256)
        + 8 * (9 * 256 * 256 + 256 + 512)
        + (16 * 256 * 128 + 128)
        + (16 * 128 * 64 + 64)
        + (16 * 64 * 32 + 32)
        + (49 * 32 * 1 + 1)
    )
    assert flops.reference_networks("sagan", 64)["G.SAN"]["params"] == san
    # Fader's latent discriminator: conv 512->512 k4 s2 + batch norm, Linear(512, 512), Linear(512, 2)
    assert flops.reference_networks("fader", 128)["lat_dis"]["params"] == (16 * 512 * 512 + 512 + 1024) + (
        512 * 512 + 512
    ) + (512 * 2 + 2)


def test_counting_rules():
    assert flops.conv_flops(3, 3, 4, 8, 10, 10) == 2 * 9 * 4 * 8 * 100
    assert flops.transposed_conv_flops(4, 4, 8, 4, 5, 5) == 2 * 16 * 8 * 4 * 25
    assert flops.dense_flops(10, 3, rows=2) == 120
    networks = {"G": {"flops": 10}, "D": {"flops": 1}}
    assert flops.iteration_flops("sagan", networks, batch=2) == 2 * (12 * 10 + 38 * 1)
    assert flops.case_flops("sagan", "gen_forward", networks, batch=1) == 10
    fader = {"ae.enc": {"flops": 3}, "ae.dec": {"flops": 5}, "lat_dis": {"flops": 1}, "ae": {"flops": 8}}
    assert flops.iteration_flops("fader", fader, batch=1) == 4 * 3 + 3 * 5 + 5 * 1
    assert flops.relative_difference(101, 100) == pytest.approx(0.01)


def test_forward_flops_counts_nested_layers_once():
    """A conv inside one of our blocks and a Dense at the top level, counted by the rule of each; a model inside a
    model is not counted twice."""
    from tf_faceedit.layers import ConvNormAct

    x = keras.Input((8, 8, 3))
    y = ConvNormAct(4, 3, strides=2, norm="none", activation="relu")(x)  # 4x4 outputs
    y = keras.layers.Conv2DTranspose(2, 2, strides=2)(y)  # from 4x4 inputs
    y = keras.layers.Dense(5)(keras.layers.Flatten()(y))
    inner = keras.Model(x, y)
    outer = keras.Model(x, inner(x))
    expected = flops.conv_flops(3, 3, 3, 4, 4, 4) + flops.transposed_conv_flops(2, 2, 4, 2, 4, 4)
    expected += flops.dense_flops(8 * 8 * 2, 5)
    image = keras.ops.zeros((1, 8, 8, 3))
    assert flops.forward_flops(inner, image)[0] == expected
    assert flops.forward_flops(outer, image)[0] == expected
    assert flops.count_params(inner) == (27 * 4 + 4) + (4 * 4 * 2 + 2) + (128 * 5 + 5)
