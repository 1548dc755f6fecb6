"""An in-process gRPC server speaking TF Serving's PredictionService, for tests, benchmarks and development.

THIS IS NOT TF SERVING. It is a test double: a `grpc.server` that implements the two RPCs the tf_faceedit client
uses, `Predict` and `GetModelMetadata` (signature_def), with the request/response protos of `tensorflow-serving-api`,
by calling the exported SavedModel's signatures in this Python process. Production serving is the
`tensorflow/serving` docker image (see serving/README.md); this server lets the client, the CLI and the latency
benchmark run where that binary cannot be installed, over a real socket.

    tf-faceedit grpc-server --model sagan=EXPORT/sagan --model fader=EXPORT/fader/3 --port 8500
    tf-faceedit grpc-server --model_config_file serving/models.config --models_root EXPORT

    from tf_faceedit.serving.grpc_server import start_server
    server, port = start_server({"sagan": "EXPORT/sagan"}, port=0)   # port 0: a free port is picked
    ...
    server.stop(0)

Model versions follow TF Serving's default policy: a base dir serves its highest integer subfolder that holds a
`saved_model.pb`; a version dir (one that holds `saved_model.pb` itself) serves that version (its folder name if it
is an integer, else 1). A request for another version is NOT_FOUND.

Error codes (each message names the model, signature or input):
  * NOT_FOUND: unknown model name, or a version that is not loaded.
  * INVALID_ARGUMENT: unknown signature, missing or unknown input, wrong dtype, wrong rank or fixed dimension
    (e.g. K attributes), an empty batch or zero-sized dimension, inputs with different batch sizes, an unreadable
    TensorProto, an unknown output_filter name, or an error raised by the signature call itself.
The server stays up after a bad request. Classify, Regress and MultiInference answer UNIMPLEMENTED.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from concurrent import futures
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from tf_faceedit.errors import ConfigError, DataError

if TYPE_CHECKING:
    from tensorflow.core.framework import tensor_pb2
    from tensorflow.core.protobuf import meta_graph_pb2
    from tensorflow_serving.apis import model_pb2

DEFAULT_SIGNATURE = "serving_default"
MAX_MESSAGE_BYTES = 512 * 1024 * 1024  # images at 1024^2 x batch 16 are ~50 MB; TF Serving has no small limit either

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------------------
# Loading


def resolve_version_dir(path: str | Path) -> tuple[int, Path]:
    """Returns (version, version_dir) for a version dir or a base dir of integer version dirs (TF Serving policy).

    Raises DataError naming `path` when it does not exist or holds no servable version.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"export folder {path} does not exist")
    if (path / "saved_model.pb").exists():
        return (int(path.name) if path.name.isdigit() else 1), path
    versions = sorted(
        (int(p.name), p) for p in path.iterdir() if p.is_dir() and p.name.isdigit() and (p / "saved_model.pb").exists()
    )
    if not versions:
        raise DataError(
            f"export folder {path} has no saved_model.pb and no integer version subfolder holding one "
            f"(expected {path}/<version>/saved_model.pb)"
        )
    return versions[-1]


class ServedModel:
    """One loaded SavedModel version: its concrete signatures and their SignatureDef protos.

    Args:
        name: model name clients ask for.
        path: a version dir or a base dir (see `resolve_version_dir`).
    """

    def __init__(self, name: str, path: str | Path) -> None:
        self.name = name
        self.version, self.path = resolve_version_dir(path)
        try:
            self.module = tf.saved_model.load(str(self.path))
        except (OSError, ValueError, tf.errors.OpError) as err:
            raise DataError(f"cannot load the SavedModel in {self.path} for model '{name}': {err}") from err
        self.signatures = dict(self.module.signatures)
        self.signature_defs = read_signature_defs(self.path)
        # name -> TensorSpec of each keyword input (what the signature was exported with)
        self.input_specs = {key: dict(fn.structured_input_signature[1]) for key, fn in self.signatures.items()}
        logger.info(
            "model '%s' version %d from %s: signatures %s", name, self.version, self.path, sorted(self.signatures)
        )


def read_signature_defs(version_dir: str | Path) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The SignatureDef protos of the SavedModel's serving meta graph (what TF Serving's GetModelMetadata returns)."""
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((Path(version_dir) / "saved_model.pb").read_bytes())
    meta_graph = saved_model.meta_graphs[0]
    return {key: value for key, value in meta_graph.signature_def.items() if not key.startswith("__")}


def load_models(export_dirs: Mapping[str, str | Path]) -> dict[str, ServedModel]:
    """{name: version dir or base dir} -> {name: ServedModel}."""
    if not export_dirs:
        raise ConfigError("no model to serve: give at least one --model NAME=DIR")
    return {name: ServedModel(name, path) for name, path in export_dirs.items()}


# ---------------------------------------------------------------------------------------------------------------
# Request validation


class RequestError(Exception):
    """A bad request: `code` is the grpc.StatusCode to answer with."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def _invalid(message: str) -> RequestError:
    return RequestError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _dtype_name(enum: int) -> str:
    try:
        return tf.dtypes.as_dtype(enum).name
    except TypeError:
        return f"invalid dtype enum {enum}"


def find_model(models: Mapping[str, ServedModel], model_spec: model_pb2.ModelSpec) -> ServedModel:
    """The ServedModel for a ModelSpec (NOT_FOUND for an unknown name or version)."""
    model = models.get(model_spec.name)
    if model is None:
        raise RequestError(
            grpc.StatusCode.NOT_FOUND,
            f"Servable not found for request: model '{model_spec.name}' is not served "
            f"(served: {', '.join(sorted(models)) or 'none'})",
        )
    if model_spec.HasField("version") and model_spec.version.value != model.version:
        raise RequestError(
            grpc.StatusCode.NOT_FOUND,
            f"model '{model.name}' version {model_spec.version.value} is not loaded (loaded version: {model.version})",
        )
    if model_spec.version_label:
        raise RequestError(
            grpc.StatusCode.NOT_FOUND,
            f"model '{model.name}' has no version label '{model_spec.version_label}' "
            "(labels are not supported by this test server)",
        )
    return model


def validate_inputs(
    model: ServedModel, signature_name: str, request_inputs: Mapping[str, tensor_pb2.TensorProto]
) -> dict[str, tf.Tensor]:
    """Checks a Predict request's TensorProtos against the signature's input specs; returns {name: tf.Tensor}."""
    specs = model.input_specs[signature_name]
    where = f"model '{model.name}' signature '{signature_name}'"
    missing = sorted(set(specs) - set(request_inputs))
    if missing:
        raise _invalid(f"missing input '{missing[0]}' for {where} (expects inputs: {', '.join(sorted(specs))})")
    unknown = sorted(set(request_inputs) - set(specs))
    if unknown:
        raise _invalid(
            f"unknown input '{unknown[0]}' for {where} (expects inputs: {', '.join(sorted(specs)) or 'none'})"
        )
    tensors, batch = {}, None
    for name in sorted(specs):
        spec, proto = specs[name], request_inputs[name]
        if proto.dtype != spec.dtype.as_datatype_enum:
            raise _invalid(f"input '{name}' of {where} must be {spec.dtype.name}, got {_dtype_name(proto.dtype)}")
        if proto.tensor_shape.unknown_rank:
            raise _invalid(f"input '{name}' of {where} has an unknown rank; expected shape {_shape_str(spec.shape)}")
        dims = [d.size for d in proto.tensor_shape.dim]
        if spec.shape.rank is not None and len(dims) != spec.shape.rank:
            raise _invalid(
                f"input '{name}' of {where} must have rank {spec.shape.rank} (shape "
                f"{_shape_str(spec.shape)}), got rank {len(dims)} (shape {dims})"
            )
        if not tf.TensorShape(dims).is_compatible_with(spec.shape):
            raise _invalid(f"input '{name}' of {where} has shape {dims}, which does not match {_shape_str(spec.shape)}")
        if dims and dims[0] == 0:
            raise _invalid(f"input '{name}' of {where} has an empty batch (dimension 0 is 0)")
        if any(d <= 0 for d in dims):
            raise _invalid(f"input '{name}' of {where} has a zero-sized dimension (shape {dims})")
        if dims:
            if batch is not None and dims[0] != batch[1]:
                raise _invalid(
                    f"inputs '{batch[0]}' and '{name}' of {where} have different batch sizes ({batch[1]} vs {dims[0]})"
                )
            batch = batch or (name, dims[0])
        try:
            tensors[name] = tf.constant(tf.make_ndarray(proto), dtype=spec.dtype)
        except (ValueError, TypeError) as err:
            raise _invalid(f"input '{name}' of {where}: cannot read its TensorProto ({err})") from err
    return tensors


def _error_summary(err: Exception, limit: int = 600) -> str:
    """A TF error's message without the 'Graph execution error' header, the node's stack and the op name."""
    text = getattr(err, "message", None) or str(err)
    start = text.find("assertion failed:")  # tf.debugging checks: their message is what matters
    if start >= 0:
        text = text[start:]
    else:
        text = re.sub(r"^\s*Graph execution error:\s*", "", text)
        text = re.sub(r"Detected at node .*?\(most recent call last\):.*?\n\s*\n", "", text, flags=re.S)
    text = re.sub(r"\s*\[\[\{\{node .*$", "", text, flags=re.S)
    text = " ".join(text.split())
    return (text[:limit] + " ...") if len(text) > limit else (text or type(err).__name__)


def _shape_str(shape: tf.TensorShape) -> str:
    return (
        "[" + ", ".join("?" if d is None else str(d) for d in shape.as_list()) + "]"
        if shape.rank is not None
        else "<any>"
    )


# ---------------------------------------------------------------------------------------------------------------
# Service


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata over loaded SavedModels (the rest: UNIMPLEMENTED, inherited)."""

    def __init__(self, models: Mapping[str, ServedModel]) -> None:
        self.models = models

    def Predict(  # noqa: N802 (gRPC method name)
        self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext
    ) -> predict_pb2.PredictResponse:
        try:
            return self._predict(request)
        except RequestError as err:
            logger.info("Predict %s: %s", err.code.name, err)
            context.abort(err.code, str(err))

    def _predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        model = find_model(self.models, request.model_spec)
        signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        if signature_name not in model.signatures:
            raise _invalid(
                f"model '{model.name}' has no signature '{signature_name}' (signatures: "
                f"{', '.join(sorted(model.signatures))})"
            )
        fn = model.signatures[signature_name]
        inputs = validate_inputs(model, signature_name, request.inputs)
        wanted = list(request.output_filter)
        unknown = [n for n in wanted if n not in fn.structured_outputs]
        if unknown:
            raise _invalid(
                f"output_filter names unknown output '{unknown[0]}' of model '{model.name}' signature "
                f"'{signature_name}' (outputs: {', '.join(sorted(fn.structured_outputs))})"
            )
        try:
            outputs = fn(**inputs)
        except (tf.errors.OpError, ValueError, TypeError) as err:
            raise _invalid(
                f"model '{model.name}' signature '{signature_name}' failed on these inputs "
                f"({', '.join(f'{k}: {v.dtype.name}{v.shape.as_list()}' for k, v in inputs.items())}): "
                f"{_error_summary(err)}"
            ) from err
        response = predict_pb2.PredictResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = model.version
        response.model_spec.signature_name = signature_name
        for name in wanted or sorted(outputs):
            response.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name].numpy()))
        return response

    def GetModelMetadata(  # noqa: N802 (gRPC method name)
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        try:
            model = find_model(self.models, request.model_spec)
            fields = list(request.metadata_field)
            if fields != ["signature_def"]:
                raise _invalid(
                    f"metadata_field must be ['signature_def'] (the only field TF Serving supports), got {fields}"
                )
        except RequestError as err:
            logger.info("GetModelMetadata %s: %s", err.code.name, err)
            context.abort(err.code, str(err))
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = model.version
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, value in model.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(value)
        response.metadata["signature_def"].Pack(signature_map)
        return response


def start_server(
    export_dirs: Mapping[str, str | Path | ServedModel], port: int = 0, host: str = "127.0.0.1", max_workers: int = 4
) -> tuple[grpc.Server, int]:
    """Loads the models and starts serving on host:port; returns (server, bound_port). Stop with server.stop(0).

    Args:
        export_dirs: {model name: version dir or base dir}, or {name: ServedModel} (already loaded).
        port: TCP port; 0 picks a free one (returned).
        host: interface to bind, 127.0.0.1 (loopback only) by default; "0.0.0.0" for every interface.
        max_workers: threads answering requests concurrently.
    """
    models = {
        name: value if isinstance(value, ServedModel) else ServedModel(name, value)
        for name, value in export_dirs.items()
    }
    if not models:
        raise ConfigError("no model to serve: export_dirs is empty")
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers),
        options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(models), server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as err:  # grpcio raises on a port it cannot bind
        raise ConfigError(f"cannot listen on {host}:{port}: {err}") from err
    if not bound:
        raise ConfigError(f"cannot listen on {host}:{port} (port in use?)")
    server.start()
    logger.info("test gRPC server (not TF Serving) on %s:%d serving %s", host, bound, sorted(models))
    return server, bound


# -+
# A TF Serving model config file (the CLI's --model_config_file: tf_faceedit/cli/grpc_server.py)


def models_from_config_file(config_file: str | Path, models_root: str | Path | None = None) -> dict[str, str]:
    """{name: base_path} from a TF Serving model config (text proto); base paths /models/<x> move to models_root."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    path = Path(config_file)
    if not path.is_file():
        raise ConfigError(f"--model_config_file {path} does not exist")
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(path.read_text(), config)
    except text_format.ParseError as err:
        raise ConfigError(f"--model_config_file {path} is not a valid ModelServerConfig text proto: {err}") from err
    result = {}
    for entry in config.model_config_list.config:
        base = entry.base_path
        if models_root is not None and base.startswith("/models/"):
            base = str(Path(models_root) / base[len("/models/") :])
        result[entry.name] = base
    return result
