"""gRPC/REST clients, the in-process gRPC server and the client CLI, over real loopback sockets, on stub SavedModels
with the tf_faceedit serving signatures (tests/serving/conftest.py)."""

import json
import re
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from tests.serving.conftest import STUB_ATTRIBUTES
from tf_faceedit.cli import serve_client
from tf_faceedit.errors import ConfigError, DataError
from tf_faceedit.serving import client as client_lib
from tf_faceedit.serving.client import GrpcClient, RestClient, ServingError, resolve_attributes
from tf_faceedit.serving.grpc_server import models_from_config_file, resolve_version_dir, start_server

ROOT = Path(__file__).resolve().parents[2]


def random_images(n, h=10, w=12, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (n, h, w, 3)).astype(np.uint8)


def direct_call(module, signature="serving_default", **inputs):
    return {
        k: v.numpy() for k, v in module.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()}).items()
    }


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------------------------------------------
# gRPC client == direct signature call


def test_grpc_edit_matches_direct_call(stub_server):
    address, modules = stub_server
    images = random_images(3)
    attributes = np.array([[1, 0], [0, 1], [1, 1]], np.float32)
    with GrpcClient(address, "sagan") as client:
        out = client.edit(images, attributes)
    expected = direct_call(modules["sagan"], image=images, attributes=attributes)
    assert set(out) == {"image", "attention"}
    assert out["image"].dtype == np.uint8 and out["image"].shape == (3, 10, 12, 3)
    np.testing.assert_array_equal(out["image"], expected["image"])
    np.testing.assert_array_equal(out["attention"], expected["attention"])
    np.testing.assert_array_equal(out["image"][0], 255 - images[0])  # the stub really ran: flipped where a0 = 1
    np.testing.assert_array_equal(out["image"][1], images[1])


def test_grpc_single_image_and_vector_are_batched(stub_server):
    address, modules = stub_server
    image = random_images(1, 7, 5, seed=1)[0]
    out = GrpcClient(address, "sagan").edit(image, [1, 0])
    assert out["image"].shape == (1, 7, 5, 3)
    np.testing.assert_array_equal(out["image"][0], 255 - image)


def test_grpc_complete_matches_direct_call(stub_server):
    address, modules = stub_server
    images = random_images(2, seed=2)
    masks = np.zeros((2, 10, 12, 1), np.uint8)
    masks[:, 2:6, 3:9] = 255
    attributes = np.array([[1, 0], [0, 1]], np.float32)
    out = GrpcClient(address, "pggan_completion").complete(images, masks, attributes)
    expected = direct_call(modules["pggan_completion"], image=images, mask=masks, attributes=attributes)
    assert set(out) == {"completed", "raw"} and out["completed"].dtype == np.uint8
    for name in out:
        np.testing.assert_array_equal(out[name], expected[name])
    np.testing.assert_array_equal(out["completed"][:, 0], images[:, 0])  # outside the hole: the input
    assert not np.array_equal(out["completed"], images)


def test_grpc_metadata_and_signature_defs(stub_server):
    address, _ = stub_server
    assert GrpcClient(address, "sagan").metadata() == {
        "method": "sagan",
        "attribute_names": list(STUB_ATTRIBUTES),
        "image_size": 8,
        "task": "edit",
        "attribute_range": None,
    }  # the stub has no attribute_range output (an export before it existed)
    assert GrpcClient(address, "pggan_completion").metadata()["task"] == "complete"
    images = np.stack([np.full((4, 4, 3), 200, np.uint8), np.full((4, 4, 3), 20, np.uint8)])
    np.testing.assert_array_equal(GrpcClient(address, "sagan").predict_attributes(images), [[1, 0], [0, 1]])
    sigs = GrpcClient(address, "pggan_completion").signature_defs()
    assert set(sigs) == {"serving_default", "metadata"}
    assert sigs["serving_default"]["inputs"] == {
        "image": ("uint8", [-1, -1, -1, 3]),
        "mask": ("uint8", [-1, -1, -1, 1]),
        "attributes": ("float32", [-1, 2]),
    }
    assert sigs["serving_default"]["outputs"]["completed"][0] == "uint8"
    assert sigs["metadata"]["inputs"] == {}


# ---------------------------------------------------------------------------------------------------------------
# Bad requests: the right status, a message naming the input, and the server keeps answering


def _request(model="sagan", signature="serving_default", drop=(), **overrides):
    inputs = {"image": random_images(2), "attributes": np.zeros((2, 2), np.float32)}
    inputs.update(overrides)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    for name, value in inputs.items():
        if name not in drop:
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def _versioned(version):
    request = _request()
    request.model_spec.version.value = version
    return request


BAD_REQUESTS = {
    "unknown model": (lambda: _request(model="sagann"), grpc.StatusCode.NOT_FOUND, "'sagann'"),
    "unknown version": (lambda: _versioned(7), grpc.StatusCode.NOT_FOUND, "version 7"),
    "unknown signature": (lambda: _request(signature="serve"), grpc.StatusCode.INVALID_ARGUMENT, "'serve'"),
    "missing input": (
        lambda: _request(drop=("attributes",)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "missing input 'attributes'",
    ),
    "unknown input": (
        lambda: _request(mask=np.zeros((2, 10, 12, 1), np.uint8)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "unknown input 'mask'",
    ),
    "wrong dtype": (
        lambda: _request(image=random_images(2).astype(np.float32)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "input 'image' of model 'sagan' signature 'serving_default' must be uint8, got float32",
    ),
    "wrong rank": (
        lambda: _request(image=random_images(1)[0]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "input 'image' of model 'sagan' signature 'serving_default' must have rank 4",
    ),
    "K mismatch": (
        lambda: _request(attributes=np.zeros((2, 3), np.float32)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "input 'attributes'",
    ),
    "empty batch": (
        lambda: _request(image=np.zeros((0, 10, 12, 3), np.uint8), attributes=np.zeros((0, 2), np.float32)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "empty batch",
    ),
    "batch mismatch": (
        lambda: _request(attributes=np.zeros((3, 2), np.float32)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "inputs 'attributes' and 'image'",
    ),
    "bad output_filter": (lambda: _with_filter("atention"), grpc.StatusCode.INVALID_ARGUMENT, "'atention'"),
}


def _with_filter(name):
    request = _request()
    request.output_filter.append(name)
    return request


@pytest.mark.parametrize("kind", list(BAD_REQUESTS))
def test_bad_request_status_and_server_stays_up(stub_server, kind):
    address, _ = stub_server
    make, code, text = BAD_REQUESTS[kind]
    with grpc.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)]) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(make(), timeout=30)
        assert info.value.code() == code, info.value.details()
        assert text in info.value.details()
        good = stub.Predict(_request(), timeout=30)  # the next good request is answered
        assert set(good.outputs) == {"image", "attention"}
        assert good.model_spec.version.value == 1


def test_client_reports_rejection_with_server_message(stub_server):
    address, _ = stub_server
    with pytest.raises(ServingError, match=r"INVALID_ARGUMENT.*input 'attributes'"):
        GrpcClient(address, "sagan").edit(random_images(2), np.zeros((2, 5), np.float32))
    with pytest.raises(ServingError, match=r"NOT_FOUND.*'fader'"):
        GrpcClient(address, "fader").metadata()


def test_output_filter_and_signature_call_errors(stub_server, tmp_path):
    address, _ = stub_server
    request = _with_filter("attention")
    with grpc.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)]) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
    assert set(response.outputs) == {"attention"}


def test_signature_error_maps_to_invalid_argument(tmp_path):
    """A TF error raised inside the signature (here: a failing assertion) is INVALID_ARGUMENT, not a crash."""

    class Strict(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="attributes")])
        def serve(self, attributes):
            tf.debugging.assert_less_equal(attributes, 1.0, message="attributes must be <= 1")
            return {"y": attributes * 2}

    module = Strict()
    tf.saved_model.save(module, str(tmp_path / "strict" / "1"), signatures={"serving_default": module.serve})
    server, port = start_server({"strict": tmp_path / "strict"})
    try:
        client = GrpcClient(f"127.0.0.1:{port}", "strict")
        with pytest.raises(ServingError, match=r"INVALID_ARGUMENT.*attributes must be <= 1"):
            client.predict({"attributes": np.full((1, 2), 3, np.float32)})
        np.testing.assert_array_equal(
            client.predict({"attributes": np.ones((1, 2), np.float32)})["y"], np.full((1, 2), 2, np.float32)
        )
    finally:
        server.stop(0)


def test_get_model_metadata_rejects_other_fields(stub_server):
    address, _ = stub_server
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "sagan"
    request.metadata_field.append("labels")
    with grpc.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)]) as channel:
        with pytest.raises(grpc.RpcError) as info:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "metadata_field" in info.value.details()


# ---------------------------------------------------------------------------------------------------------------
# Versions and the model config


def test_versions_follow_tf_serving_policy(stub_exports, tmp_path):
    base = tmp_path / "sagan"
    for version in ("3", "10", "draft"):
        shutil.copytree(stub_exports["sagan"] / "1", base / version)
    (base / "12").mkdir()  # no saved_model.pb: not a version
    assert resolve_version_dir(base) == (10, base / "10")
    assert resolve_version_dir(base / "3") == (3, base / "3")
    assert resolve_version_dir(base / "draft") == (1, base / "draft")
    with pytest.raises(DataError, match=re.escape(str(base / "12"))):
        resolve_version_dir(base / "12")
    with pytest.raises(DataError, match="does not exist"):
        resolve_version_dir(tmp_path / "missing")
    server, port = start_server({"sagan": base})
    try:
        client = GrpcClient(f"127.0.0.1:{port}", "sagan", version=10)
        assert client.metadata()["method"] == "sagan"
        with pytest.raises(ServingError, match=r"NOT_FOUND.*version 3 is not loaded"):
            GrpcClient(f"127.0.0.1:{port}", "sagan", version=3).metadata()
    finally:
        server.stop(0)


def test_models_config_lists_every_method(tmp_path):
    models = models_from_config_file(ROOT / "serving" / "models.config", models_root=tmp_path)
    assert models == {
        name: str(tmp_path / name) for name in ("sagan", "attentiongan", "pggan_completion", "fader", "icgan")
    }
    assert models_from_config_file(ROOT / "serving" / "models.config")["fader"] == "/models/fader"
    bad = tmp_path / "bad.config"
    bad.write_text("model_config_list { config { nme: 'x' } }")
    with pytest.raises(ConfigError, match="bad.config"):
        models_from_config_file(bad)


# ---------------------------------------------------------------------------------------------------------------
# REST: a local http.server stub that checks TF Serving's columnar predict schema and runs the stub signature


class RestStub:
    """POST /v1/models/<name>[/versions/<v>]:predict with {"signature_name", "inputs"} -> {"outputs"} or 400/404."""

    def __init__(self, modules):
        self.modules, self.requests = modules, []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append((self.path, self.headers.get("Content-Type"), body))
                try:
                    status, payload = stub.answer(self.path, body)
                except Exception as err:  # noqa: BLE001 (a stub bug must reach the test, not hang it)
                    status, payload = 500, {"error": f"stub failed: {err!r}"}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, path, body):
        match = re.fullmatch(r"/v1/models/([\w-]+)(?:/versions/(\d+))?:predict", path)
        if not match:
            return 404, {"error": f"bad path {path}"}
        if match.group(1) not in self.modules:
            return 404, {"error": f"Servable not found for request: Latest({match.group(1)})"}
        if set(body) != {"signature_name", "inputs"} or not isinstance(body["inputs"], dict):
            return 400, {"error": f"body must be {{signature_name, inputs}}, got keys {sorted(body)}"}
        fn = self.modules[match.group(1)].signatures[body["signature_name"]]
        specs = fn.structured_input_signature[1]
        if set(body["inputs"]) != set(specs):
            return 400, {"error": f"inputs {sorted(body['inputs'])} != {sorted(specs)}"}
        inputs = {}
        for name, value in body["inputs"].items():
            array = np.asarray(value)
            if array.ndim != specs[name].shape.rank:
                return 400, {"error": f"input {name}: rank {array.ndim} (need nested lists)"}
            if specs[name].dtype == tf.uint8 and (array.dtype.kind != "i" or array.min() < 0 or array.max() > 255):
                return 400, {"error": f"input {name}: uint8 images must be JSON integers 0..255"}
            inputs[name] = tf.constant(array, dtype=specs[name].dtype)
        outputs = fn(**inputs)
        return 200, {"outputs": {k: _jsonable(v.numpy()) for k, v in outputs.items()}}

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _jsonable(value):
    """Numbers as nested lists; strings (bytes) as str, as TF Serving's REST API writes them."""
    array = np.asarray(value, dtype=object if isinstance(value, bytes) else None)
    if array.dtype.kind in "OS":
        decoded = [b.decode() for b in array.reshape(-1)]
        return decoded[0] if array.ndim == 0 else np.asarray(decoded, object).reshape(array.shape).tolist()
    return array.tolist()


@pytest.fixture
def rest_stub(stub_server):
    stub = RestStub(stub_server[1])
    yield stub
    stub.close()


def test_rest_client_body_and_outputs(rest_stub, stub_server):
    images = random_images(2, seed=3)
    attributes = np.array([[1, 0], [0, 1]], np.float32)
    client = RestClient(rest_stub.address, "sagan")
    out = client.edit(images, attributes)
    path, content_type, body = rest_stub.requests[-1]
    assert path == "/v1/models/sagan:predict" and content_type == "application/json"
    assert body["signature_name"] == "serving_default"
    assert np.asarray(body["inputs"]["image"]).shape == (2, 10, 12, 3)
    assert all(isinstance(v, int) for v in np.asarray(body["inputs"]["image"], object).reshape(-1)[:10])
    expected = direct_call(stub_server[1]["sagan"], image=images, attributes=attributes)
    assert out["image"].dtype == np.uint8
    np.testing.assert_array_equal(out["image"], expected["image"])
    np.testing.assert_allclose(out["attention"], expected["attention"], rtol=1e-6)
    assert client.metadata() == {
        "method": "sagan",
        "attribute_names": list(STUB_ATTRIBUTES),
        "image_size": 8,
        "task": "edit",
        "attribute_range": None,
    }
    assert rest_stub.requests[-1][2] == {"signature_name": "metadata", "inputs": {}}


def test_rest_client_version_url_and_errors(rest_stub):
    RestClient(rest_stub.address, "pggan_completion", version=4).complete(
        random_images(1), np.zeros((1, 10, 12, 1), np.uint8), [1, 1]
    )
    assert rest_stub.requests[-1][0] == "/v1/models/pggan_completion/versions/4:predict"
    with pytest.raises(ServingError, match=r"HTTP 404: Servable not found.*Latest\(fader\)"):
        RestClient(rest_stub.address, "fader").metadata()


# ---------------------------------------------------------------------------------------------------------------
# CLI end to end (in-process: main() returns the exit code)


@pytest.fixture
def face_png(tmp_path):
    image = random_images(1, 9, 11, seed=4)[0]
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path, image


def _read_rgb(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_cli_grpc_edit_writes_image(stub_server, face_png, tmp_path, capsys):
    path, image = face_png
    out = tmp_path / "out" / "edited.png"
    code = serve_client.main(
        [
            "--server",
            stub_server[0],
            "--model",
            "sagan",
            "--image",
            str(path),
            "--set",
            "Eyeglasses=1",
            "--out",
            str(out),
            "--save_extras",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    np.testing.assert_array_equal(_read_rgb(out), 255 - image)
    assert "attributes not set default to 0: Smiling" in printed
    assert (tmp_path / "out" / "edited_attention.png").exists()


def test_cli_attributes_vector_keeps_image(stub_server, face_png, tmp_path, capsys):
    path, image = face_png
    out = tmp_path / "kept.png"
    assert (
        serve_client.main(
            [
                "--server",
                stub_server[0],
                "--model",
                "sagan",
                "--image",
                str(path),
                "--attributes",
                "0,1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(_read_rgb(out), image)
    assert "default to 0" not in capsys.readouterr().out


def test_cli_completion_with_mask(stub_server, face_png, tmp_path):
    path, image = face_png
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[2:5, 3:8] = 255
    cv2.imwrite(str(tmp_path / "hole.png"), mask)
    out = tmp_path / "completed.png"
    assert (
        serve_client.main(
            [
                "--server",
                stub_server[0],
                "--model",
                "pggan_completion",
                "--image",
                str(path),
                "--mask",
                str(tmp_path / "hole.png"),
                "--set",
                "Eyeglasses=1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    result = _read_rgb(out)
    np.testing.assert_array_equal(result[mask == 0], image[mask == 0])
    assert (result[mask > 0] == 128).all()  # the stub's raw level 64 + 64 * Eyeglasses


def test_cli_rest_end_to_end(rest_stub, face_png, tmp_path):
    path, image = face_png
    out = tmp_path / "rest.png"
    assert (
        serve_client.main(
            [
                "--rest",
                "--server",
                rest_stub.address,
                "--model",
                "sagan",
                "--image",
                str(path),
                "--set",
                "Eyeglasses=1",
                "--set",
                "Smiling=0",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(_read_rgb(out), 255 - image)


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--set", "Eyeglases=1"],
            "unknown attribute 'Eyeglases' (did you mean: Eyeglasses?); the model's attributes "
            "are: Eyeglasses, Smiling",
        ),
        (["--attributes", "1,0,1"], "--attributes has 3 values but the model has 2 attributes"),
        (["--mask", "face.png"], "--mask is only for completion models"),
        (["--image", "nothere.png"], "--image nothere.png does not exist"),
    ],
)
def test_cli_user_errors(stub_server, face_png, tmp_path, capsys, monkeypatch, args, message):
    path, _ = face_png
    monkeypatch.chdir(tmp_path)
    code = serve_client.main(
        ["--server", stub_server[0], "--model", "sagan", "--image", str(path), "--out", str(tmp_path / "x.png"), *args]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_cli_completion_needs_mask(stub_server, face_png, tmp_path, capsys):
    code = serve_client.main(
        [
            "--server",
            stub_server[0],
            "--model",
            "pggan_completion",
            "--image",
            str(face_png[0]),
            "--out",
            str(tmp_path / "x.png"),
        ]
    )
    assert code == 2 and "--mask is required" in capsys.readouterr().err


@pytest.mark.parametrize("rest", [False, True])
def test_connection_refused(face_png, tmp_path, capsys, rest):
    address = f"127.0.0.1:{free_port()}"
    client = client_lib.make_client(address, "sagan", rest=rest, timeout=10)
    with pytest.raises(ServingError, match=re.escape(f"cannot reach a model server at {address}")) as info:
        client.metadata()
    assert "TF Serving must be running there" in str(info.value)
    code = serve_client.main(
        ["--server", address, "--model", "sagan", "--image", str(face_png[0]), "--out", str(tmp_path / "x.png")]
        + (["--rest"] if rest else [])
    )
    err = capsys.readouterr().err
    assert code == 2 and address in err and "TF Serving must be running" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------------------------
# Attribute resolution


def test_resolve_attributes():
    names = ["Eyeglasses", "Smiling", "Male"]
    vector, notes = resolve_attributes(names, ["Smiling=1"])
    np.testing.assert_array_equal(vector, [0, 1, 0])
    assert notes == ["note: attributes not set default to 0: Eyeglasses, Male"]
    vector, notes = resolve_attributes(names, ["Male=0.5"], "1,0,1")
    np.testing.assert_array_equal(vector, [1, 0, 0.5])
    assert notes == [] and vector.dtype == np.float32
    for sets, attributes, text in [
        (["Smiling"], None, "--set must be NAME=VALUE"),
        (["Smiling=yes"], None, "value must be a number"),
        ([], "1,x,0", "--attributes must be 3 comma-separated numbers"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(text)):
            resolve_attributes(names, sets, attributes)
