"""Every registered method: its real export served by the in-process gRPC server, called through the gRPC client,
gives what the eager model (`tf_faceedit.load(model_dir)`) gives, and a bad request leaves the server answering."""

import grpc
import numpy as np
import pytest

from tests import model_runs
from tf_faceedit import api
from tf_faceedit.serving import client as client_lib
from tf_faceedit.serving import grpc_server


@pytest.fixture(scope="module", params=model_runs.method_params())
def served(request, tmp_path_factory, synthetic_celeba):
    run = model_runs.exported_run(request.param, tmp_path_factory, synthetic_celeba)
    server, port = grpc_server.start_server({request.param: run.export_dir}, port=0)
    client = client_lib.GrpcClient(f"localhost:{port}", request.param)
    yield run, client
    client.close()
    server.stop(None)


def test_grpc_round_trip_matches_the_eager_model(served):
    run, client = served
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 40, 36, 3), dtype=np.uint8)
    meta = client.metadata()
    k = len(meta["attribute_names"])
    attributes = np.eye(2, k, dtype=np.float32)
    eager = api.load(run.model_dir)
    assert meta["attribute_names"] == eager.attribute_names and meta["image_size"] == eager.image_size
    if meta["task"] == "complete":
        masks = np.zeros((2, 40, 36, 1), np.uint8)
        masks[:, 10:25, 8:20] = 255
        got, want = client.complete(images, masks, attributes), eager.complete(images, masks, attributes)
        keys = ("completed", "raw")
    else:
        # the serving signature resamples the whole image (the client sends it as it is): keep_detail=False
        got, want = client.edit(images, attributes), eager.edit(images, attributes, keep_detail=False)
        keys = ("image",)
    for key in keys:
        assert got[key].dtype == np.uint8 and got[key].shape == want[key].shape
        assert np.abs(got[key].astype(int) - want[key].astype(int)).max() <= 1, key
    for key in set(want) - set(keys):  # extras (attention, content, latent) as float32
        np.testing.assert_allclose(got[key], want[key], atol=1e-4)


def test_bad_request_then_good_request(served):
    _, client = served
    meta = client.metadata()
    k = len(meta["attribute_names"])
    images = np.zeros((1, 16, 16, 3), np.uint8)
    with pytest.raises(client_lib.ServingError) as err:
        client.predict(
            {"image": images, "attributes": np.zeros((1, k + 1), np.float32)}
            | ({"mask": np.zeros((1, 16, 16, 1), np.uint8)} if meta["task"] == "complete" else {})
        )
    assert "attributes" in str(err.value) and grpc.StatusCode.INVALID_ARGUMENT.name in str(err.value)
    assert client.metadata() == meta
