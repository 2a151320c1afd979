"""TF Serving's REST API (status, metadata, :predict, :classify, :regress) over a ModelStore, on starlette + uvicorn.
JSON in, JSON out; every error under /v1/models/ is JSON {"error": ...} with TF Serving's status code. A bad request
(bad JSON, JSON nested deeper than MAX_JSON_DEPTH, a field of the wrong type, too many rows, a body too big or too
slow) is a 4xx naming what is wrong and is not logged; only a real 500 logs its traceback.

A PINNED file or labels file that cannot be read never fails /healthz or /metrics: /healthz reports it (pin_error,
labels_error) and the last good value read from it stays in force (see model_store). If none was ever read well,
routes that follow the pin (/metadata, :predict, :classify, :regress without /versions/ or /labels/) answer 503
naming the file and the fix, rather than serve the highest version: that would silently undo a rollback. Routes
naming a version keep answering; so does the status route, which lists every loaded version (as TF Serving's)
whatever the pin. Label routes answer 503 the same way while the labels file has never been read well."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from trainpipe_assets.serving.batching import Batcher
from trainpipe_assets.serving.codec import (
    MAX_JSON_DEPTH,
    ApiError,
    ApiJSONResponse,
    nested_deeper_than,
    signature_json,
)
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


def resolve(store: ModelStore, match: re.Match) -> LoadedVersion:
    """The version a path names: /versions/N, /labels/L, or (neither) the one serving."""
    if match["name"] != store.name:
        raise ApiError(404, f"model {match['name']!r} not found (serving {store.name!r})")
    versions = store.versions()
    if match["label"]:
        problem = store.labels_problem()
        if problem:
            raise ApiError(503, f"labels cannot be resolved: {problem}")
        labels = store.labels()
        if match["label"] not in labels:
            raise ApiError(404, f"label {match['label']!r} not found (labels: {sorted(labels)})")
        version = labels[match["label"]]
    elif match["version"]:
        version = int(match["version"])
    else:
        serving = store.serving()
        if serving is None:
            problem = store.pin_problem()
            if problem:
                raise ApiError(503, f"the rollback pin cannot be read: {problem}")
            raise ApiError(503, f"no version of {store.name!r} is loaded yet")
        return serving
    if version not in versions:
        if not versions:
            raise ApiError(503, f"no version of {store.name!r} is loaded yet")
        raise ApiError(404, f"version {version} of {store.name!r} not found (loaded: {sorted(versions)})")
    return versions[version]


async def read_body(request: Request, max_body_bytes: int) -> bytes:
    length = request.headers.get("content-length") or "0"
    if not length.isdigit():
        raise ApiError(400, f"bad content-length header {length!r}")
    if int(length) > max_body_bytes:
        raise ApiError(413, f"request body over {max_body_bytes} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():  # a chunked body has no content-length: count as it comes
        size += len(chunk)
        if size > max_body_bytes:
            raise ApiError(413, f"request body over {max_body_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limits: Limits) -> dict:
    try:
        raw = await asyncio.wait_for(read_body(request, limits.max_body_bytes), limits.body_timeout_seconds)
    except asyncio.TimeoutError:
        seconds = limits.body_timeout_seconds
        raise ApiError(408, f"request body not received within {seconds:g} s (--body-timeout-seconds)") from None
    except ClientDisconnect:
        raise ApiError(400, "the client disconnected before sending the whole body") from None
    too_deep = ApiError(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        body = json.loads(raw)
    except RecursionError:  # nested deeper than the parser's own limit (about 1000 levels)
        raise too_deep from None
    except ValueError as e:
        raise ApiError(400, f"request body is not JSON: {e}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    # counting brackets (in C) spares most bodies the walk: fewer brackets than levels cannot nest that deep
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and nested_deeper_than(body, MAX_JSON_DEPTH):
        raise too_deep
    return body


def metadata(store: ModelStore, loaded: LoadedVersion) -> dict:
    signatures = {k: signature_json(v, loaded.methods.get(k)) for k, v in loaded.model.signatures.items()}
    return {
        "model_spec": {"name": store.name, "signature_name": "", "version": str(loaded.version)},
        "metadata": {"signature_def": {"signature_def": signatures}},
    }


def status(store: ModelStore, match: re.Match) -> dict:
    if match["version"] or match["label"]:
        versions = [resolve(store, match)]
    else:
        versions = sorted(store.versions().values(), key=lambda v: -v.version)
    if not versions:
        raise ApiError(503, f"no version of {store.name!r} is loaded yet")
    ok = {"error_code": "OK", "error_message": ""}
    return {"model_version_status": [{"version": str(v.version), "state": "AVAILABLE", "status": ok} for v in versions]}


def build_app(store: ModelStore, limits: Limits = Limits(), batching: Optional[BatchingOptions] = None) -> Starlette:
    """Model calls run on worker threads, never on the event loop, so concurrent requests overlap. With batching,
    :predict requests are merged per LoadedVersion + signature (a hot swap leaves queued requests on their version)."""
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

    async def models(request: Request):
        started = time.perf_counter()
        route, code = "status", 200
        try:
            match = MODEL_PATH.match(request.path_params["rest"])
            if not match:
                raise ApiError(404, f"no such route: {request.url.path}")
            suffix = match["suffix"] or ""
            if request.method == "POST":
                route = suffix.lstrip(":") or "post"
                if suffix not in (":predict", ":classify", ":regress"):
                    raise ApiError(404, f"no such route: POST {request.url.path}")
                body = await read_json(request, limits)
                loaded = resolve(store, match)
                if suffix == ":predict":
                    call = parse_predict(loaded, body, limits.max_instances)
                    payload = predict_response(call, await run_predict(call))
                else:
                    payload = await asyncio.get_running_loop().run_in_executor(
                        executor, classify_or_regress, loaded, body, suffix[1:], limits.max_instances
                    )
            elif suffix == "/metadata":
                route = "metadata"
                payload = metadata(store, resolve(store, match))
            elif suffix:
                raise ApiError(404, f"no such route: GET {request.url.path}")
            else:
                payload = status(store, match)
            return ApiJSONResponse(payload)
        except ApiError as e:
            code = e.status
            # a body not (all) read: close rather than leave the rest to be read and thrown away
            close = {"connection": "close"} if e.status in (408, 413) else None
            return ApiJSONResponse({"error": e.message}, status_code=e.status, headers=close)
        except Exception as e:  # a bug or an unexpected TensorFlow error: still JSON, and counted as a 500
            code = 500
            logging.getLogger(__name__).exception("%s %s failed", request.method, request.url.path)
            return ApiJSONResponse({"error": f"internal error: {type(e).__name__}: {str(e)[:300]}"}, status_code=500)
        finally:
            metrics.observe(route, code, time.perf_counter() - started)

    async def healthz(request: Request):
        """200 while a version is loaded (so while some route answers), with what the pin picks (serving_version,
        None if the pin was never read well) and any problem: versions that failed to load, pin_error, labels_error.
        Reads only what the store holds in memory, so it cannot fail on a file."""
        serving, versions = store.serving(), store.versions()
        pin_error, labels_error = store.pin_error, store.labels_error
        status = "loading" if not versions else "ok" if serving and not (pin_error or labels_error) else "degraded"
        body = {"status": status, "serving_version": serving and serving.version}
        if store.errors:  # versions that failed to load, e.g. for the infra validator to stop waiting
            body["errors"] = {str(v): e for v, e in dict(store.errors).items()}
        if pin_error:
            body["pin_error"] = pin_error
        if labels_error:
            body["labels_error"] = labels_error
        return ApiJSONResponse(body, status_code=200 if versions else 503)

    async def prometheus(request: Request):
        return Response(metrics.render(store), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/v1/models/{rest:path}", models, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/metrics", prometheus),
        ]
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
) -> None:
    import uvicorn

    from trainpipe_assets.serving.timeouts import guarded_protocol

    store = ModelStore(name, base, labels_file)
    threading.Thread(target=lambda: (store.refresh(), store.watch(poll_seconds)), daemon=True).start()
    uvicorn.run(
        build_app(store, limits, batching),
        host=host,
        port=port,
        log_level="warning",
        http=guarded_protocol(limits.header_timeout_seconds, limits.body_timeout_seconds),
    )
