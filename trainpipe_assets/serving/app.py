"""TF Serving's REST API (status, metadata, :predict, :classify, :regress) over the models of a ModelRegistry, on
starlette + uvicorn, and (with a gRPC port) TF Serving's gRPC API beside it on the same event loop (grpc_service.py).
JSON in, JSON out; every error under /v1/models/ is JSON {"error": ...} with TF Serving's status code. A bad request
(bad JSON, JSON nested deeper than MAX_JSON_DEPTH, a field of the wrong type, too many rows, a body too big or too
slow) is a 4xx naming what is wrong and is not logged; only a real 500 logs its traceback.

A PINNED file or labels file that cannot be read never fails /healthz or /metrics: /healthz reports it (pin_error,
labels_error) and the last good value read from it stays in force (see model_store). If none was ever read well,
routes that follow the pin (/metadata, :predict, :classify, :regress without /versions/ or /labels/) answer 503
naming the file and the fix, rather than serve the highest version: that would silently undo a rollback. Routes
naming a version keep answering; so does the status route, which lists every loaded version (as TF Serving's)
whatever the pin. Label routes answer 503 the same way while the labels file has never been read well.

With a capture, every :predict, :classify and :regress answered is offered to it (it samples); its request id (the
client's x-request-id header, else a new one) is sent back in the x-request-id header."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trainpipe_assets.serving.batching import Batcher
from trainpipe_assets.serving.capture import REQUEST_ID_HEADER, RawJSON, new_request_id
from trainpipe_assets.serving.codec import ApiError, ApiJSONResponse, read_json
from trainpipe_assets.serving.messages import metadata_json, metadata_response, status_json, status_response
from trainpipe_assets.serving.metrics import Metrics
from trainpipe_assets.serving.model_store import LoadedVersion, ModelStore
from trainpipe_assets.serving.predict import (
    Call,
    classify_or_regress,
    parse_predict,
    predict_response,
    run_alone,
    run_merged,
)
from trainpipe_assets.serving.registry import ModelRegistry

# One regex rather than starlette routes: starlette's {name} also matches ":predict", and a path or method that is
# not TF Serving's must still get a JSON 404 (starlette would answer a plain-text 404 or 405).
MODEL_PATH = re.compile(
    r"^(?P<name>[A-Za-z0-9_.-]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[A-Za-z0-9_.-]+))?"
    r"(?P<suffix>/metadata|:predict|:classify|:regress)?$"
)


@dataclass(frozen=True)
class Limits:
    """What one request may ask: body size, seconds to send the body (and headers, see timeouts.py), rows."""

    max_body_bytes: int = 10 << 20
    max_instances: int = 10_000
    body_timeout_seconds: float = 30.0
    header_timeout_seconds: float = 30.0


@dataclass(frozen=True)
class BatchingOptions:
    """TF Serving's --enable_batching parameters."""

    max_batch_size: int = 32
    batch_timeout_micros: int = 1000
    num_batch_threads: int = os.cpu_count() or 1


@dataclass(frozen=True)
class GrpcOptions:
    """Where the gRPC API listens (--grpc-port); reuse_port for --workers, which share it."""

    host: str = "127.0.0.1"
    port: int = 8500
    reuse_port: bool = False


def resolve(registry: ModelRegistry, match: re.Match) -> LoadedVersion:
    """The version a path names: /versions/N, /labels/L, or (neither) the one serving."""
    return registry.resolve(match["name"], int(match["version"]) if match["version"] else None, match["label"])


def status(registry: ModelRegistry, match: re.Match) -> dict:
    version = int(match["version"]) if match["version"] else None
    return status_json(status_response(registry.status_versions(match["name"], version, match["label"])))


def build_app(
    models: ModelRegistry | ModelStore,
    limits: Limits = Limits(),
    batching: Optional[BatchingOptions] = None,
    grpc: Optional[GrpcOptions] = None,
    capture=None,
) -> Starlette:
    """Model calls run on worker threads, never on the event loop, so concurrent requests overlap. With batching,
    :predict requests (REST and gRPC alike) are merged per LoadedVersion + signature (a hot swap leaves queued
    requests on their version). With `grpc`, the gRPC API starts and stops with the app (its lifespan)."""
    registry = models if isinstance(models, ModelRegistry) else ModelRegistry([models])
    metrics = Metrics()
    executor = ThreadPoolExecutor(
        batching.num_batch_threads if batching else os.cpu_count(), thread_name_prefix="model"
    )
    batcher = batching and Batcher(
        lambda calls: run_merged(calls, metrics),
        executor,
        batching.max_batch_size,
        batching.batch_timeout_micros / 1e6,
        batching.num_batch_threads,
    )

    async def run_predict(call: Call) -> dict:
        if batcher and call.rows and call.rows <= batcher.max_batch_size:
            return await batcher.submit((call.loaded, call.signature_name), call, call.rows)
        metrics.observe_batch(call.rows or 1)
        return await asyncio.get_running_loop().run_in_executor(executor, run_alone, call)

    async def in_executor(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    async def models(request: Request):
        started = time.perf_counter()
        route, code, headers = "status", 200, None
        try:
            match = MODEL_PATH.match(request.path_params["rest"])
            if not match:
                raise ApiError(404, f"no such route: {request.url.path}")
            suffix = match["suffix"] or ""
            if request.method == "POST":
                route = suffix.lstrip(":") or "post"
                if suffix not in (":predict", ":classify", ":regress"):
                    raise ApiError(404, f"no such route: POST {request.url.path}")
                # a client's id is echoed; one is made up only when the request may be captured under it
                request_id = request.headers.get(REQUEST_ID_HEADER) or (capture is not None and new_request_id())
                headers = {REQUEST_ID_HEADER: request_id} if request_id else None
                body = await read_json(request, limits.max_body_bytes, limits.body_timeout_seconds)
                loaded = resolve(registry, match)
                if suffix == ":predict":
                    call = parse_predict(loaded, body, limits.max_instances)
                    payload = predict_response(call, await run_predict(call))
                else:
                    payload = await in_executor(classify_or_regress, loaded, body, suffix[1:], limits.max_instances)
                if capture is not None:  # the body as it came and the answer as it goes: no encoding here
                    answer = ApiJSONResponse(payload, headers=headers)
                    signature = body.get("signature_name") or "serving_default"
                    raw = RawJSON(request.state.raw_body)
                    capture.record(
                        match["name"], loaded.version, signature, route, raw, RawJSON(answer.body), request_id
                    )
                    return answer
            elif suffix == "/metadata":
                route = "metadata"
                payload = metadata_json(metadata_response(match["name"], resolve(registry, match)))
            elif suffix:
                raise ApiError(404, f"no such route: GET {request.url.path}")
            else:
                payload = status(registry, match)
            return ApiJSONResponse(payload, headers=headers)
        except ApiError as e:
            code = e.status
            # a body not (all) read: close rather than leave the rest to be read and thrown away
            close = {"connection": "close"} if e.status in (408, 413) else {}
            return ApiJSONResponse({"error": e.message}, status_code=e.status, headers={**(headers or {}), **close})
        except Exception as e:  # a bug or an unexpected TensorFlow error: still JSON, and counted as a 500
            code = 500
            logging.getLogger(__name__).exception("%s %s failed", request.method, request.url.path)
            error = {"error": f"internal error: {type(e).__name__}: {str(e)[:300]}"}
            return ApiJSONResponse(error, status_code=500, headers=headers)
        finally:
            metrics.observe(route, code, time.perf_counter() - started)

    async def healthz(request: Request):
        """200 while every model has a version loaded, with what the pin picks and any problem (see
        ModelRegistry.health). Reads only what the stores hold in memory, so it cannot fail on a file."""
        ready, body = registry.health()
        return ApiJSONResponse({**body, "pid": os.getpid()}, status_code=200 if ready else 503)

    async def prometheus(request: Request):
        return Response(metrics.render(registry, capture), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        server = None
        if grpc is not None:  # imported only then: grpc and TF Serving's protos are not needed otherwise
            from trainpipe_assets.serving.grpc_service import Backend, start_grpc_server

            backend = Backend(registry, limits.max_instances, metrics, run_predict, in_executor, capture)
            server = await start_grpc_server(backend, grpc.host, grpc.port, limits.max_body_bytes, grpc.reuse_port)
        try:
            yield
        finally:
            if server is not None:
                await server.stop(grace=5)
            if capture is not None:  # here, not after uvicorn returns: on SIGTERM it re-raises the signal and dies
                await asyncio.to_thread(capture.close)

    return Starlette(
        routes=[
            Route("/v1/models/{rest:path}", models, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/metrics", prometheus),
        ],
        lifespan=lifespan,
    )


def serve(
    name: str,
    base: Path,
    host: str = "127.0.0.1",
    port: int = 8501,
    poll_seconds: float = 2.0,
    labels_file: Optional[Path] = None,
    limits: Limits = Limits(),
    batching: Optional[BatchingOptions] = None,
    sock: Optional[socket.socket] = None,
    *,
    registry: Optional[ModelRegistry] = None,
    config_poll_seconds: float = 0.0,
    grpc: Optional[GrpcOptions] = None,
    capture=None,
) -> None:
    """Serve until stopped, on (host, port) or on `sock`, a listening socket (a --workers worker's). The models:
    `registry` (from a model config file, reread every config_poll_seconds if more than 0), else `name` at `base`
    with every version and `labels_file`. With `grpc`, the gRPC API too; with `capture`, closed on the way out."""
    import uvicorn

    from trainpipe_assets.serving.timeouts import guarded_protocol

    registry = registry or ModelRegistry([ModelStore(name, base, labels_file)])
    registry.start(poll_seconds, config_poll_seconds)
    config = uvicorn.Config(
        build_app(registry, limits, batching, grpc, capture),
        host=host,
        port=port,
        log_level="warning",
        http=guarded_protocol(limits.header_timeout_seconds, limits.body_timeout_seconds),
    )
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock] if sock else None)
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it shut down on; uvicorn.run() swallows it the same way
        pass
    finally:
        if capture is not None:
            capture.close()
    if not server.started:  # e.g. the gRPC port taken: uvicorn logged why and returned
        raise SystemExit(1)
