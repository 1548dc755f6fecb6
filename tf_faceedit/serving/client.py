"""Clients for tf_faceedit models served by TF Serving: gRPC (tensorflow-serving-api) and REST (urllib).

    tf-faceedit serve-client --server localhost:8500 --model sagan --image face.jpg \
        --set Eyeglasses=1 --out edited.png
    tf-faceedit serve-client --server localhost:8500 --model pggan_completion --image face.jpg \
        --mask hole.png --set Smiling=1 --out completed.png
    tf-faceedit serve-client --rest --server localhost:8501 --model sagan --image face.jpg \
        --attributes 1 --out edited.png

    from tf_faceedit.serving.client import GrpcClient
    client = GrpcClient("localhost:8500", "sagan")
    client.metadata()            # {"method", "attribute_names", "image_size", "task", "attribute_range"}
    client.predict_attributes(images)            # float32 [N,K] in {0,1} (methods that export that signature)
    out = client.edit(images, attributes)        # uint8 [N,H,W,3], float32 [N,K] -> {"image": uint8, "attention": ...}
    out = client.complete(images, masks, attributes)   # + masks uint8 [N,H,W,1], nonzero = hole

The signatures (written by `tf_faceedit.export`, schema in serving/README.md):
  * `serving_default` of an editing model: `image` uint8 [N,H,W,3] RGB (any H, W) and `attributes` float32 [N,K]
    target values ({0,1}; Fader also takes sliders beyond) -> `image` uint8 [N,H,W,3] plus the method's extras
    (`attention` float32 [N,S,S,n] in [0,1], `content`, `latent`);
  * `serving_default` of `pggan_completion`: `image`, `mask` uint8 [N,H,W,1] (nonzero = hole), `attributes` ->
    `completed` uint8 (the input outside the hole), `raw` uint8 (the generator's full output);
  * `metadata` (no inputs): `method`, `attribute_names` [K], `image_size`, `task` ("edit" or "complete"),
    `attribute_range` [2] (the accepted target values; older exports lack it: then any finite value is sent).
Attribute values that are not finite, or outside `attribute_range`, are refused before a request is sent.
A single image [H,W,3] / mask [H,W,1] or [H,W] / attribute vector [K] is batched to N = 1 for you.

Errors are `ServingError` (a `FaceEditError`: the CLI prints one line, no traceback): the server cannot be
reached (the message names the address and says TF Serving must run there), or it rejected the request (its
status and message, which name the input).
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import numpy.typing as npt

from tf_faceedit.errors import ConfigError, DataError, FaceEditError, check_attribute_values, suggest

if TYPE_CHECKING:
    from tensorflow_serving.apis import predict_pb2

DEFAULT_SIGNATURE = "serving_default"
METADATA_SIGNATURE = "metadata"
UINT8_OUTPUTS = ("image", "completed", "raw")
MAX_MESSAGE_BYTES = 512 * 1024 * 1024
DOCKER_HINT = "start it with the docker command in serving/README.md"


class ServingError(FaceEditError):
    """The model server cannot be reached, or it rejected a request."""


# ---------------------------------------------------------------------------------------------------------------
# Request preparation and response decoding (shared by both clients)


def batch_images(images: npt.ArrayLike, channels: int, name: str = "image") -> np.ndarray:
    """uint8 [H,W,C] or [N,H,W,C] (masks may also be [H,W] / [N,H,W] when channels == 1) -> uint8 [N,H,W,C]."""
    array = np.asarray(images)
    if array.dtype != np.uint8:
        raise DataError(f"{name} must be uint8 (0..255), got {array.dtype}")
    if channels == 1 and array.ndim in (2, 3) and (array.ndim == 2 or array.shape[-1] != 1):
        array = array[..., None]
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != channels:
        raise DataError(f"{name} must have shape [N,H,W,{channels}] or [H,W,{channels}], got {list(array.shape)}")
    return array


def batch_attributes(attributes: npt.ArrayLike, batch: int) -> np.ndarray:
    """float [K] or [N,K] -> float32 [N,K]; a single vector is repeated over the batch."""
    array = np.asarray(attributes, dtype=np.float32)
    if array.ndim == 1:
        array = np.repeat(array[None], batch, axis=0)
    if array.ndim != 2:
        raise DataError(f"attributes must have shape [K] or [N,K], got {list(array.shape)}")
    if not np.isfinite(array).all():
        column = int(np.argwhere(~np.isfinite(array))[0][1])
        raise ConfigError(
            f"attribute {column} (0-based, the model's attribute order) is "
            f"{array[~np.isfinite(array)][0]}: attribute values must be finite numbers"
        )
    return array


def decode_metadata(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The `metadata` signature's outputs -> {"method": str, "attribute_names": [str], "image_size": int,
    "task": str}."""

    def text(value: Any) -> str:
        value = np.asarray(value).reshape(-1)[0]
        value = value.item() if isinstance(value, np.generic) else value
        return value.decode() if isinstance(value, bytes) else str(value)

    missing = [k for k in ("method", "attribute_names", "image_size", "task") if k not in outputs]
    if missing:
        raise ServingError(
            f"the model's 'metadata' signature lacks output '{missing[0]}' (is it a tf_faceedit export?)"
        )
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in np.asarray(outputs["attribute_names"]).reshape(-1)]
    value_range = None
    if "attribute_range" in outputs:
        value_range = tuple(float(v) for v in np.asarray(outputs["attribute_range"]).reshape(-1)[:2])
    return {
        "method": text(outputs["method"]),
        "attribute_names": names,
        "image_size": int(np.asarray(outputs["image_size"]).reshape(-1)[0]),
        "task": text(outputs["task"]),
        "attribute_range": value_range,
    }


class _Client:
    """What both clients share: edit / complete / metadata on top of `predict`."""

    def predict(  # pragma: no cover (abstract)
        self, inputs: Mapping[str, npt.ArrayLike], signature_name: str = DEFAULT_SIGNATURE
    ) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def edit(self, images: npt.ArrayLike, attributes: npt.ArrayLike) -> dict[str, np.ndarray]:
        """images uint8 [N,H,W,3] (or [H,W,3]), attributes [N,K] (or [K]) -> {"image": uint8, extras...}."""
        images = batch_images(images, 3)
        return self.predict({"image": images, "attributes": batch_attributes(attributes, len(images))})

    def complete(self, images: npt.ArrayLike, masks: npt.ArrayLike, attributes: npt.ArrayLike) -> dict[str, np.ndarray]:
        """images uint8 [N,H,W,3], masks uint8 [N,H,W,1] (nonzero = hole), attributes [N,K] ->
        {"completed": uint8, "raw": uint8}."""
        images = batch_images(images, 3)
        masks = batch_images(masks, 1, name="mask")
        if masks.shape[:3] != images.shape[:3]:
            raise DataError(
                f"mask shape {list(masks.shape)} does not match image shape {list(images.shape)} (same N, H, W)"
            )
        return self.predict({"image": images, "mask": masks, "attributes": batch_attributes(attributes, len(images))})

    def metadata(self) -> dict[str, Any]:
        """{"method", "attribute_names", "image_size", "task"} from the model's `metadata` signature."""
        return decode_metadata(self.predict({}, signature_name=METADATA_SIGNATURE))

    def predict_attributes(self, images: npt.ArrayLike) -> np.ndarray:
        """images uint8 [N,H,W,3] -> float32 [N,K] in {0, 1} (`predict_attributes` signature: SaGAN, IcGAN)."""
        out = self.predict({"image": batch_images(images, 3)}, signature_name="predict_attributes")
        return np.asarray(out["attributes"], np.float32)


# ---------------------------------------------------------------------------------------------------------------
# gRPC


class GrpcClient(_Client):
    """TF Serving PredictionService client (gRPC, default port 8500).

    Args:
        server: "host:port".
        model: model name in the server's model config.
        version: a model version (int); None for the latest the server has loaded.
        timeout: seconds per request.
    """

    def __init__(self, server: str, model: str, version: int | None = None, timeout: float = 60.0) -> None:
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self.server, self.model, self.version, self.timeout = server, model, version, timeout
        # no HTTP proxy: TF Serving runs next to its clients, and an http_proxy variable would break loopback calls
        self._channel = grpc.insecure_channel(
            server,
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.enable_http_proxy", 0),
            ],
        )
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _model_spec(self, spec, signature_name=None):
        spec.name = self.model
        if self.version is not None:
            spec.version.value = int(self.version)
        if signature_name is not None:
            spec.signature_name = signature_name

    def predict_request(
        self, inputs: Mapping[str, npt.ArrayLike], signature_name: str = DEFAULT_SIGNATURE
    ) -> predict_pb2.PredictRequest:
        """The PredictRequest proto for {name: array} (dtypes kept: uint8 images, float32 attributes)."""
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._model_spec(request.model_spec, signature_name)
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(np.asarray(value)))
        return request

    def predict(
        self, inputs: Mapping[str, npt.ArrayLike], signature_name: str = DEFAULT_SIGNATURE
    ) -> dict[str, np.ndarray]:
        """Calls Predict; returns {output name: numpy array} (uint8 images stay uint8, strings are bytes)."""
        import tensorflow as tf

        response = self._call("Predict", self.predict_request(inputs, signature_name))
        return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}

    def signature_defs(self) -> dict[str, dict[str, dict[str, tuple[str, list[int] | None]]]]:
        """GetModelMetadata -> {signature name: {"inputs"|"outputs": {name: (dtype name, shape with -1)}}}."""
        import tensorflow as tf
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest()
        self._model_spec(request.model_spec)
        request.metadata_field.append("signature_def")
        response = self._call("GetModelMetadata", request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)

        def describe(tensors):
            return {
                name: (
                    tf.dtypes.as_dtype(info.dtype).name,
                    None if info.tensor_shape.unknown_rank else [d.size for d in info.tensor_shape.dim],
                )
                for name, info in tensors.items()
            }

        return {
            key: {"inputs": describe(sig.inputs), "outputs": describe(sig.outputs)}
            for key, sig in signature_map.signature_def.items()
        }

    def _call(self, method, request):
        import grpc

        try:
            return getattr(self._stub, method)(request, timeout=self.timeout)
        except grpc.RpcError as err:
            code, details = err.code(), err.details()
            if code == grpc.StatusCode.UNAVAILABLE:
                raise ServingError(
                    f"cannot reach a model server at {self.server} (gRPC): {details}. TF Serving "
                    f"must be running there with model '{self.model}'; {DOCKER_HINT} "
                    "(gRPC port 8500; use --rest for the REST port 8501)"
                ) from None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise ServingError(
                    f"the model server at {self.server} did not answer {method} within {self.timeout:g} s"
                ) from None
            raise ServingError(
                f"{self.server} rejected {method} for model '{self.model}': {code.name}: {details}"
            ) from None


# ---------------------------------------------------------------------------------------------------------------
# REST


class RestClient(_Client):
    """TF Serving REST client (default port 8501): POST /v1/models/<model>[/versions/<v>]:predict, columnar format.

    Request: {"signature_name": ..., "inputs": {name: nested lists}}; response: {"outputs": {name: nested lists}}
    (or {"error": message}). JSON has no dtypes: `image`, `completed`, `raw` come back as uint8, other numeric
    outputs as float32, strings as str.

    Args:
        server: "host:port" or "http://host:port".
        model, version, timeout: as for GrpcClient.
    """

    def __init__(self, server: str, model: str, version: int | None = None, timeout: float = 60.0) -> None:
        self.server, self.model, self.version, self.timeout = server, model, version, timeout
        base = server if server.startswith(("http://", "https://")) else f"http://{server}"
        path = f"/v1/models/{model}" + (f"/versions/{int(version)}" if version is not None else "")
        self.url = base.rstrip("/") + path + ":predict"
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy (see GrpcClient)

    @staticmethod
    def request_body(inputs: Mapping[str, npt.ArrayLike], signature_name: str = DEFAULT_SIGNATURE) -> dict[str, Any]:
        """The JSON body (a dict) of a columnar predict request."""
        return {"signature_name": signature_name, "inputs": {k: np.asarray(v).tolist() for k, v in inputs.items()}}

    def predict(
        self, inputs: Mapping[str, npt.ArrayLike], signature_name: str = DEFAULT_SIGNATURE
    ) -> dict[str, np.ndarray]:
        body = json.dumps(self.request_body(inputs, signature_name)).encode()
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as reply:
                payload = json.loads(reply.read().decode())
        except urllib.error.HTTPError as err:
            raise ServingError(f"{self.url} answered HTTP {err.code}: {_rest_error(err)}") from None
        except urllib.error.URLError as err:
            raise ServingError(
                f"cannot reach a model server at {self.server} (REST): {err.reason}. TF Serving must "
                f"be running there with model '{self.model}'; {DOCKER_HINT} (REST port 8501)"
            ) from None
        except (TimeoutError, OSError) as err:
            raise ServingError(
                f"the model server at {self.server} did not answer within {self.timeout:g} s ({err})"
            ) from None
        except json.JSONDecodeError as err:
            raise ServingError(f"{self.url} did not answer with JSON ({err})") from None
        except http.client.InvalidURL as err:  # a malformed --server
            raise ConfigError(f"--server {self.server} is not a valid host:port ({err})") from None
        if "error" in payload:
            raise ServingError(f"{self.url}: {payload['error']}")
        if "outputs" not in payload:
            raise ServingError(f"{self.url} answered without 'outputs' (keys: {sorted(payload)})")
        outputs = payload["outputs"]
        if not isinstance(outputs, dict):  # TF Serving drops the name of a signature's only output
            outputs = {"outputs": outputs}
        return {name: _from_json(name, value) for name, value in outputs.items()}


def _rest_error(err):
    try:
        return json.loads(err.read().decode()).get("error", err.reason)
    except (ValueError, AttributeError, OSError):
        return str(err.reason)


def _from_json(name, value):
    array = np.asarray(value)
    if array.dtype.kind in "US":
        return array
    if name in UINT8_OUTPUTS:
        return array.astype(np.uint8)
    return array.astype(np.int32) if name == "image_size" else array.astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# CLI work


def resolve_attributes(
    names: Iterable[str],
    sets: Iterable[str] = (),
    attributes: str | None = None,
    value_range: Sequence[float] | None = None,
    method: str | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Target attribute vector from `--attributes v1,v2,...` and/or `--set NAME=V` (applied on top).

    Returns (float32 [K], notes): attributes not given default to 0, and `notes` says which ones did.
    Raises ConfigError naming the flag for an unknown name (listing `names`), a bad value, a value that is not
    finite or outside `value_range` (the metadata's `attribute_range`; None: any finite value) or a wrong length.
    """
    names = list(names)
    if attributes is not None:
        try:
            vector = [float(v) for v in str(attributes).split(",")]
        except ValueError:
            raise ConfigError(
                f"--attributes must be {len(names)} comma-separated numbers ({', '.join(names)}), got '{attributes}'"
            ) from None
        if len(vector) != len(names):
            raise ConfigError(
                f"--attributes has {len(vector)} values but the model has {len(names)} attributes: {', '.join(names)}"
            )
        check_attribute_values(vector, names, value_range, method, "--attributes")
        given = set(names)
    else:
        vector, given = [0.0] * len(names), set()
    for item in sets:
        name, sep, value = str(item).partition("=")
        if not sep:
            raise ConfigError(f"--set must be NAME=VALUE, got '{item}'")
        if name not in names:
            raise ConfigError(
                f"--set {item}: unknown attribute '{name}'{suggest(name, names)}; the model's "
                f"attributes are: {', '.join(names)}"
            )
        try:
            vector[names.index(name)] = float(value)
        except ValueError:
            raise ConfigError(f"--set {item}: value must be a number, got '{value}'") from None
        check_attribute_values({name: vector[names.index(name)]}, names, value_range, method, "--set")
        given.add(name)
    unset = [n for n in names if n not in given]
    notes = [f"note: attributes not set default to 0: {', '.join(unset)}"] if unset else []
    return np.asarray(vector, np.float32), notes


def read_image(path: str | Path, flag: str = "--image", grayscale: bool = False) -> np.ndarray:
    """An image file -> uint8 RGB [H,W,3] (or [H,W,1] with grayscale=True): `tf_faceedit.images` (header parsed,
    size guard) before anything is sent. DataError names the flag and file."""
    from tf_faceedit import images

    return images.read_mask(path, flag)[..., None] if grayscale else images.read_image(path, flag)


def write_image(path: str | Path, image: np.ndarray, flag: str = "--out") -> Path:
    """uint8 RGB [H,W,3] (or one channel) -> image file (format from the extension, one of
    `images.IMAGE_EXTENSIONS`). DataError names the flag and file."""
    from tf_faceedit import images

    return images.write_image(path, image, what=flag)


def edit_file(
    client: GrpcClient | RestClient,
    image_path: str | Path,
    out_path: str | Path,
    sets: Iterable[str] = (),
    attributes: str | None = None,
    mask_path: str | Path | None = None,
    save_extras: bool = False,
    log: Callable[[str], object] = print,
) -> dict[str, Any]:
    """What the CLI does: metadata, attribute vector, one request, the output image (and extras) written.

    Returns {"out": Path, "outputs": {name: array}, "attributes": vector, "metadata": dict}.
    """
    from tf_faceedit import images

    images.check_output_extension(out_path, "--out")
    # local input first: a bad file is reported without a server round trip; an alpha channel is put back on output
    image, alpha = images.read_image_alpha(image_path, "--image")
    meta = client.metadata()
    vector, notes = resolve_attributes(
        meta["attribute_names"], sets, attributes, meta.get("attribute_range"), meta["method"]
    )
    for note in notes:
        log(note)
    if meta["task"] == "complete":
        if mask_path is None:
            raise ConfigError(f"--mask is required: model '{client.model}' ({meta['method']}) fills in a hole")
        mask = read_image(mask_path, "--mask", grayscale=True)
        if mask.shape[:2] != image.shape[:2]:
            raise DataError(
                f"--mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but --image {image_path} is "
                f"{image.shape[1]}x{image.shape[0]}; they must have the same size"
            )
        outputs = client.complete(image, mask, vector)
        result_name = "completed"
    else:
        if mask_path is not None:
            raise ConfigError(
                f"--mask is only for completion models; model '{client.model}' ({meta['method']}) edits attributes"
            )
        outputs = client.edit(image, vector)
        result_name = "image"
    result = np.asarray(outputs[result_name][0])
    out = images.write_image(
        out_path, result, alpha if alpha is not None and alpha.shape == result.shape[:2] else None, what="--out"
    )
    log(f"wrote {out} ({meta['method']}, {', '.join(f'{n}={v:g}' for n, v in zip(meta['attribute_names'], vector))})")
    if save_extras:
        out_path = Path(out_path)
        for name, value in outputs.items():
            value = np.asarray(value)
            if name == result_name or value.ndim != 4:
                continue
            for c in range(value.shape[-1]):
                extra = value[0, ..., c]
                if extra.dtype != np.uint8:  # attention maps in [0, 1]
                    extra = images.mask_to_uint8(extra)
                suffix = f"_{name}" + (f"{c}" if value.shape[-1] > 1 else "")
                log(f"wrote {write_image(out_path.with_name(out_path.stem + suffix + '.png'), extra)}")
    return {"out": out, "outputs": outputs, "attributes": vector, "metadata": meta}


def make_client(
    server: str, model: str, rest: bool = False, version: int | None = None, timeout: float = 60.0
) -> GrpcClient | RestClient:
    return (RestClient if rest else GrpcClient)(server, model, version=version, timeout=timeout)
