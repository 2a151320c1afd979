"""TF Serving's gRPC API (tensorflow.serving.PredictionService: Predict, Classify, Regress, GetModelMetadata; and
ModelService.GetModelStatus) on grpc.aio, on the same event loop as the REST server (started and stopped by its
lifespan), so both share the model registry, the version labels and pin, the micro-batcher and the worker threads.

Errors are raised as ApiError with the REST status and sent as the gRPC code of GRPC_CODES, TF Serving's codes:
INVALID_ARGUMENT for a bad request, NOT_FOUND for an unknown model, version or label, UNAVAILABLE while nothing is
loaded (or the pin was never read well), RESOURCE_EXHAUSTED for too many rows; a message over --max-body-bytes is
refused by gRPC itself with RESOURCE_EXHAUSTED. Each call's request id (the client's x-request-id metadata, else a new
one) is sent back in the initial metadata, and Predict, Classify and Regress are recorded by the traffic capture."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Optional

import grpc
import tensorflow  # noqa: F401  (before TF Serving's protos: imported first, they hit a circular import in TF's)
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from trainpipe_assets.serving.capture import REQUEST_ID_HEADER, new_request_id
from trainpipe_assets.serving.codec import ApiError
from trainpipe_assets.serving.messages import fill_model_spec, metadata_response, status_response
from trainpipe_assets.serving.predict import Call, check_rows, run_examples
from trainpipe_assets.serving.registry import ModelRegistry

log = logging.getLogger(__name__)

# The REST status of an ApiError -> the gRPC code TF Serving answers with for the same failure.
GRPC_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
}
RECORDED = {"Predict": "predict", "Classify": "classify", "Regress": "regress"}


@dataclass
class Backend:
    """What REST and gRPC share: the registry, limits, metrics, the worker threads, the (batched) predict and the
    capture. run_in_executor(fn, *args) runs fn on a worker thread."""

    registry: ModelRegistry
    max_rows: int
    metrics: Any
    run_predict: Callable[[Call], Awaitable[Any]]
    run_in_executor: Callable[..., Awaitable[Any]]
    capture: Any = None


def resolve_spec(registry: ModelRegistry, spec):
    if not spec.name:
        raise ApiError(400, "Missing ModelSpec: model_spec.name is required")
    choice = spec.WhichOneof("version_choice")
    return registry.resolve(
        spec.name,
        spec.version.value if choice == "version" else None,
        spec.version_label if choice == "version_label" else None,
    )


def parse_predict_request(loaded, request, max_rows: Optional[int]) -> Call:
    """A PredictRequest checked as TF Serving checks it: the signature's inputs exactly, each of its dtype."""
    import tensorflow as tf

    name = request.model_spec.signature_name or "serving_default"
    if name not in loaded.model.signatures:
        raise ApiError(400, f'Serving signature name: "{name}" not found in signature def')
    specs = loaded.model.signatures[name].structured_input_signature[1]
    sent, expected = set(request.inputs), set(specs)
    if sent != expected:
        raise ApiError(
            400,
            f"input size does not match signature: {len(sent)}!={len(expected)} len({sorted(sent)}) != "
            f"len({sorted(expected)}). Sent extra: {sorted(sent - expected)}. "
            f"Missing but required: {sorted(expected - sent)}.",
        )
    columns = {}
    for key, spec in specs.items():
        proto = request.inputs[key]
        if proto.dtype != spec.dtype.as_datatype_enum:
            given = tf.dtypes.as_dtype(proto.dtype).name if proto.dtype else "DT_INVALID"
            raise ApiError(400, f"input {key!r} expects {spec.dtype.name} but {given} is provided")
        try:
            columns[key] = tf.make_ndarray(proto)
        except (TypeError, ValueError) as e:
            raise ApiError(400, f"input {key!r} is not a valid tensor: {e}") from None
        if columns[key].ndim:
            check_rows(f"rows of input {key!r}", len(columns[key]), max_rows)
    lengths = {len(v) if v.ndim else -1 for v in columns.values()}
    rows = lengths.pop() if len(lengths) == 1 and min(lengths) > 0 else None
    outputs = set(loaded.model.signatures[name].structured_outputs)
    wanted = list(request.output_filter)
    unknown = sorted(set(wanted) - outputs)
    if unknown:
        raise ApiError(400, f"output tensor alias not found in signature: {unknown[0]} (outputs: {sorted(outputs)})")
    return Call(loaded, name, True, columns, rows, _encoder(request.model_spec.name, loaded.version, name, wanted))


def _encoder(model: str, version: int, signature: str, wanted: list[str]):
    def encode(outputs: dict):
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        response = predict_pb2.PredictResponse()
        fill_model_spec(response.model_spec, model, version, signature)
        for key, value in outputs.items():
            if not wanted or key in wanted:
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    return encode


def serialized_examples(request, max_rows: Optional[int]) -> list[bytes]:
    """The Input of a Classify/Regress request as serialized tf.Examples; with a context, each example is the context
    merged with the example (the example's features win), as TF Serving merges them."""
    kind = request.input.WhichOneof("kind")
    if kind == "example_list_with_context":
        examples = request.input.example_list_with_context.examples
        context = request.input.example_list_with_context.context.SerializeToString()
    else:
        examples, context = request.input.example_list.examples if kind else [], b""
    if not examples:
        raise ApiError(400, "Input is empty")
    check_rows("examples", len(examples), max_rows)
    return [context + e.SerializeToString() for e in examples]


def examples_response(request, loaded, method: str, serialized: list[bytes]):
    """Classify or regress on a worker thread: the ClassificationResponse or RegressionResponse."""
    from tensorflow_serving.apis import classification_pb2, regression_pb2

    name = request.model_spec.signature_name or "serving_default"
    result = run_examples(loaded, name, method, serialized)
    if method == "regress":
        response = regression_pb2.RegressionResponse()
        response.result.regressions.extend(regression_pb2.Regression(value=float(v)) for v in result)
    else:
        response = classification_pb2.ClassificationResponse()
        classes, scores = result
        for i in range(len(serialized)):
            row = response.result.classifications.add()
            for j in range(len(classes[i]) if classes else scores.shape[1]):
                entry = row.classes.add()
                if classes:
                    entry.label = classes[i][j]
                if scores is not None:
                    entry.score = float(scores[i][j])
    fill_model_spec(response.model_spec, request.model_spec.name, loaded.version, name)
    return response


class _Service:
    def __init__(self, backend: Backend):
        self.backend = backend

    async def _serve(self, method: str, request, context, handle: Callable[[], Awaitable[tuple]]):
        """Run handle() -> (response, loaded); count it, return the request id (trailing metadata), record it,
        or abort with the code."""
        started, backend = time.perf_counter(), self.backend
        sent = dict((m.key, m.value) for m in context.invocation_metadata() or ())
        # a client's id is echoed; one is made up only when the call may be captured under it
        request_id = str(sent.get(REQUEST_ID_HEADER) or (backend.capture is not None and new_request_id()) or "")
        if request_id:  # trailing, not initial, metadata: initial metadata first costs an extra operation per call
            context.set_trailing_metadata(((REQUEST_ID_HEADER, request_id),))
        code, message = grpc.StatusCode.OK, ""
        try:
            response, loaded = await handle()
        except ApiError as e:
            code, message = GRPC_CODES.get(e.status, grpc.StatusCode.UNKNOWN), e.message
        except Exception as e:  # a bug or an unexpected TensorFlow error: INTERNAL, logged
            log.exception("gRPC %s failed", method)
            code, message = grpc.StatusCode.INTERNAL, f"internal error: {type(e).__name__}: {str(e)[:300]}"
        finally:
            backend.metrics.observe(method, code.name, time.perf_counter() - started)
        if code is not grpc.StatusCode.OK:
            await context.abort(code, message)
        if backend.capture is not None and method in RECORDED:  # the messages, encoded on the capture's thread
            backend.capture.record(
                request.model_spec.name,
                loaded.version,
                request.model_spec.signature_name or "serving_default",
                RECORDED[method],
                request,
                response,
                request_id,
            )
        return response


class PredictionService(_Service, prediction_service_pb2_grpc.PredictionServiceServicer):
    async def Predict(self, request, context):
        async def handle():
            loaded = resolve_spec(self.backend.registry, request.model_spec)
            return await self.backend.run_predict(parse_predict_request(loaded, request, self.backend.max_rows)), loaded

        return await self._serve("Predict", request, context, handle)

    async def Classify(self, request, context):
        return await self._serve("Classify", request, context, lambda: self._examples(request, "classify"))

    async def Regress(self, request, context):
        return await self._serve("Regress", request, context, lambda: self._examples(request, "regress"))

    async def _examples(self, request, method: str):
        loaded = resolve_spec(self.backend.registry, request.model_spec)
        serialized = serialized_examples(request, self.backend.max_rows)  # checked before a worker thread is taken
        return await self.backend.run_in_executor(examples_response, request, loaded, method, serialized), loaded

    async def GetModelMetadata(self, request, context):
        async def handle():
            loaded = resolve_spec(self.backend.registry, request.model_spec)
            return metadata_response(request.model_spec.name, loaded, tuple(request.metadata_field)), loaded

        return await self._serve("GetModelMetadata", request, context, handle)


class ModelService(_Service, model_service_pb2_grpc.ModelServiceServicer):
    async def GetModelStatus(self, request, context):
        async def handle():
            spec = request.model_spec
            if not spec.name:
                raise ApiError(400, "Missing ModelSpec: model_spec.name is required")
            choice = spec.WhichOneof("version_choice")
            versions = self.backend.registry.status_versions(
                spec.name,
                spec.version.value if choice == "version" else None,
                spec.version_label if choice == "version_label" else None,
            )
            return status_response(versions), None

        return await self._serve("GetModelStatus", request, context, handle)


async def start_grpc_server(backend: Backend, host: str, port: int, max_message_bytes: int, reuse_port: bool):
    """A started grpc.aio server on host:port (on the running loop); a port that cannot be bound is a ValueError."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 1 if reuse_port else 0),  # only --workers share a port; no stranger may join it
        ]
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(backend), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(backend), server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as e:
        bound, error = 0, e
    else:
        error = None
    if not bound:
        raise ValueError(f"cannot listen for gRPC on {host}:{port}: {error or 'address in use?'}")
    await server.start()
    return server
