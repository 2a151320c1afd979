"""TF Serving's gRPC API (tensorflow.serving.PredictionService: Predict, Classify, Regress, GetModelMetadata; and
ModelService.GetModelStatus): a codec over the DataPlane (dataplane.py) that the REST API shares. grpcio's threads take
the calls off the network and the servicers run on the REST server's event loop (started and stopped by the app's
lifespan, see main.py), so both share the model registry, the
version labels and pin, the micro-batcher, the worker threads and the capture. Messages are checked and decoded in
tensors.py (whole tensors, no loop over elements).

Errors are raised as ApiError with the REST status and sent as the gRPC code of GRPC_CODES, TF Serving's codes:
INVALID_ARGUMENT for a bad request, NOT_FOUND for an unknown model, version or label, UNAVAILABLE while nothing is
loaded (or the pin was never read well), RESOURCE_EXHAUSTED for too many rows (a tensor that claims more elements
or decoded bytes than the limits is INVALID_ARGUMENT, see tensors.py); a message over
--max-body-bytes is refused by gRPC itself with RESOURCE_EXHAUSTED. Each call's request id (the client's x-request-id
metadata, else a new one when capturing) is sent back in the trailing metadata, and Predict, Classify and Regress are
offered to the traffic capture."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Awaitable, Callable

import grpc
import tensorflow  # noqa: F401  (before TF Serving's protos: imported first, they hit a circular import in TF's)
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from trainpipe_assets.serving.capture import REQUEST_ID_HEADER, checked_request_id
from trainpipe_assets.serving.codec import OFFLOAD_BYTES, ApiError
from trainpipe_assets.serving.dataplane import DataPlane, ExamplesCall
from trainpipe_assets.serving.tensors import declared_elements, decode_predict, examples_response, serialized_examples

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
OFFLOAD_ELEMENTS = (
    4096  # a request claiming more elements than this (or larger than OFFLOAD_BYTES) is decoded on a thread
)
RECORDED = {"Predict": "predict", "Classify": "classify", "Regress": "regress"}


def named(spec) -> tuple[str, int | None, str | None]:
    """The model, version and label a ModelSpec names."""
    if not spec.name:
        raise ApiError(400, "Missing ModelSpec: model_spec.name is required")
    choice = spec.WhichOneof("version_choice")
    return (
        spec.name,
        spec.version.value if choice == "version" else None,
        spec.version_label if choice == "version_label" else None,
    )


class _Service:
    def __init__(self, plane: DataPlane):
        self.plane = plane

    async def _serve(self, method: str, request, context, handle: Callable[[], Awaitable[tuple]]):
        """Run handle() -> (response, loaded); count it, return the request id (trailing metadata), offer it to
        the capture, or abort with the code."""
        started, plane = time.perf_counter(), self.plane
        sent = None
        for key, value in context.invocation_metadata() or ():
            if key == REQUEST_ID_HEADER:
                sent = value
        code, message = grpc.StatusCode.OK, ""
        try:
            request_id = plane.request_id(checked_request_id(sent and str(sent)))  # a bad one is neither echoed
            if request_id:  # trailing, not initial, metadata: initial metadata costs an extra operation per call
                context.set_trailing_metadata(((REQUEST_ID_HEADER, request_id),))
            response, loaded = await handle()
        except ApiError as e:
            code, message = GRPC_CODES.get(e.status, grpc.StatusCode.UNKNOWN), e.message
        except Exception as e:  # a bug or an unexpected TensorFlow error: INTERNAL, logged
            log.exception("gRPC %s failed", method)
            code, message = grpc.StatusCode.INTERNAL, f"internal error: {type(e).__name__}: {str(e)[:300]}"
        finally:
            plane.observe(method, code.name, time.perf_counter() - started)
        if code is not grpc.StatusCode.OK:
            await context.abort(code, message)
        if plane.capture is not None and method in RECORDED:  # the messages themselves, encoded by the writer
            signature = request.model_spec.signature_name or "serving_default"
            model = request.model_spec.name
            plane.capture_later(model, loaded.version, signature, RECORDED[method], request, response, request_id)
        return response


class PredictionService(_Service, prediction_service_pb2_grpc.PredictionServiceServicer):
    async def Predict(self, request, context):
        async def handle():
            plane = self.plane
            loaded = plane.resolve(*named(request.model_spec))
            if declared_elements(request) > OFFLOAD_ELEMENTS or request.ByteSize() > OFFLOAD_BYTES:
                call = await asyncio.to_thread(decode_predict, loaded, request, plane.limits)  # off the loop
            else:
                call = decode_predict(loaded, request, plane.limits)
            return await plane.predict(call), loaded

        return await self._serve("Predict", request, context, handle)

    async def Classify(self, request, context):
        return await self._serve("Classify", request, context, lambda: self._examples(request, "classify"))

    async def Regress(self, request, context):
        return await self._serve("Regress", request, context, lambda: self._examples(request, "regress"))

    async def _examples(self, request, method: str):
        plane = self.plane
        loaded = plane.resolve(*named(request.model_spec))
        serialized = serialized_examples(request, plane.limits.max_instances)  # checked before a thread is taken
        name = request.model_spec.signature_name or "serving_default"
        call = ExamplesCall(
            loaded,
            name,
            method,
            lambda: serialized,
            lambda result: examples_response(request, loaded, method, result, len(serialized)),
        )
        return await plane.classify_or_regress(call), loaded

    async def GetModelMetadata(self, request, context):
        async def handle():
            loaded = self.plane.resolve(*named(request.model_spec))
            return self.plane.metadata(request.model_spec.name, loaded, tuple(request.metadata_field)), loaded

        return await self._serve("GetModelMetadata", request, context, handle)


class ModelService(_Service, model_service_pb2_grpc.ModelServiceServicer):
    async def GetModelStatus(self, request, context):
        async def handle():
            return self.plane.status(*named(request.model_spec)), None

        return await self._serve("GetModelStatus", request, context, handle)


class _Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str):
        self.code, self.details = code, details


class _LoopContext:
    """What the servicers ask of their context, over a gRPC thread's context, for a servicer run on the loop."""

    def __init__(self, context):
        self.context = context

    def invocation_metadata(self):
        return self.context.invocation_metadata()

    def set_trailing_metadata(self, metadata) -> None:
        self.context.set_trailing_metadata(metadata)

    async def abort(self, code: grpc.StatusCode, details: str):
        raise _Aborted(code, details)


def _on_loop(method, loop: asyncio.AbstractEventLoop):
    """A gRPC thread's handler that runs the servicer's `method` on the loop (where the batcher and the rest of
    the data plane live) and waits for its answer."""

    def handle(request, context):
        try:
            return asyncio.run_coroutine_threadsafe(method(request, _LoopContext(context)), loop).result()
        except _Aborted as e:
            context.abort(e.code, e.details)

    return handle


def start_grpc_server(plane: DataPlane, host: str, port: int, max_message_bytes: int, reuse_port: bool, threads: int):
    """A started gRPC server on host:port whose `threads` threads (enough to fill every batch: see main.py) take the
    calls off the network and hand them to the servicers on the running loop; a port that cannot be bound is a
    ValueError. grpcio's thread-pool server costs less per call here than grpc.aio's, and lets calls reach the
    batcher together, so more of them merge."""
    loop = asyncio.get_running_loop()
    server = grpc.server(
        ThreadPoolExecutor(threads, thread_name_prefix="grpc"),
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 1 if reuse_port else 0),  # only --workers share a port; no stranger may join it
        ],
    )
    predictions, models = PredictionService(plane), ModelService(plane)
    handlers = {
        name: _on_loop(getattr(predictions, name), loop)
        for name in ("Predict", "Classify", "Regress", "GetModelMetadata")
    }
    threaded_predictions = prediction_service_pb2_grpc.PredictionServiceServicer()
    threaded_models = model_service_pb2_grpc.ModelServiceServicer()
    for name, handler in handlers.items():
        setattr(threaded_predictions, name, handler)
    threaded_models.GetModelStatus = _on_loop(models.GetModelStatus, loop)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(threaded_predictions, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(threaded_models, server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as e:
        bound, error = 0, e
    else:
        error = None
    if not bound:
        raise ValueError(f"cannot listen for gRPC on {host}:{port}: {error or 'address in use?'}")
    server.start()
    return server
