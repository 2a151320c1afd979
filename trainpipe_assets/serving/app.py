"""TF Serving's REST API (status, metadata, :predict, :classify, :regress) on starlette: a codec over the DataPlane
(dataplane.py), which the gRPC API (grpc_service.py) shares; the server is assembled in main.py. JSON in, JSON out;
every error under /v1/models/ is JSON {"error": ...} with TF Serving's status code. A bad request (bad JSON, JSON
nested deeper than MAX_JSON_DEPTH, a field of the wrong type, too many rows, a body too big or too slow) is a 4xx
naming what is wrong and is not logged; only a real 500 logs its traceback.

A PINNED file or labels file that cannot be read never fails /healthz or /metrics: /healthz reports it (pin_error,
labels_error) and the last good value read from it stays in force (see model_store). If none was ever read well, routes
that follow the pin (/metadata, :predict, :classify, :regress without /versions/ or /labels/) answer 503 naming the file
and the fix, rather than serve the highest version: that would silently undo a rollback. Routes naming a version keep
answering; so does the status route, which lists every loaded version (as TF Serving's) whatever the pin. Label routes
answer 503 the same way while the labels file has never been read well.

With a capture, every :predict, :classify and :regress answered is offered to it (it samples); its request id (the
client's x-request-id header, else a new one) is sent back in the x-request-id header."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from typing import Optional

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trainpipe_assets.core.serving_layout import parse_version
from trainpipe_assets.serving.capture import REQUEST_ID_HEADER, Capture, RawJSON, checked_request_id
from trainpipe_assets.serving.codec import (
    OFFLOAD_BYTES,
    ApiError,
    ApiJSONResponse,
    check_columns,
    read_json,
    serialize_example,
)
from trainpipe_assets.serving.dataplane import DataPlane, ExamplesCall
from trainpipe_assets.serving.messages import metadata_json, status_json
from trainpipe_assets.serving.model_store import LoadedVersion
from trainpipe_assets.serving.predict import (
    Call,
    check_method,
    examples_json,
    parse_examples,
    parse_predict,
    predict_response,
    signature_name,
)

# One regex rather than starlette routes: starlette's {name} also matches ":predict", and a path or method that is
# not TF Serving's must still get a JSON 404 (starlette would answer a plain-text 404 or 405).
MODEL_PATH = re.compile(
    r"^(?P<name>[A-Za-z0-9_.-]+)(?:/versions/(?P<version>[0-9]+)|/labels/(?P<label>[A-Za-z0-9_.-]+))?"
    r"(?P<suffix>/metadata|:predict|:classify|:regress)?$"
)


def _named(match: re.Match) -> tuple[str, Optional[int], Optional[str]]:
    """The model, version and label a path names (/versions/N, /labels/L, or neither: the one serving)."""
    version = None
    if match["version"]:  # as TF Serving reads version folders (core/serving_layout.py): /versions/١ never matched
        version = parse_version(match["version"])
        if version is None:  # past int64, a leading zero, 4301 digits: no such version, never int()'s ValueError
            raise ApiError(404, f"version {match['version'][:40]!r} of {match['name']!r} is not a version number")
    return match["name"], version, match["label"]


def _checked_predict(loaded: LoadedVersion, body: dict, limits, body_bytes: int) -> Call:
    """The :predict body parsed and its columns checked against the signature and the limits (codec.check_columns)
    before the model call makes tensors of them."""
    call = parse_predict(loaded, body, limits.max_instances)
    check_columns(
        loaded.model.signatures[call.signature_name].structured_input_signature[1], call.columns, body_bytes, limits
    )
    return call


async def _inference(plane: DataPlane, request: Request, loaded: LoadedVersion, body: dict, method: str) -> dict:
    max_rows = plane.limits.max_instances
    if method == "predict":
        size = len(request.state.raw_body)
        if size > OFFLOAD_BYTES:  # a large body's b64 decoding and checks on a thread, not on the event loop
            call = await asyncio.to_thread(_checked_predict, loaded, body, plane.limits, size)
        else:
            call = _checked_predict(loaded, body, plane.limits, size)
        return predict_response(call, await plane.predict(call))
    name = signature_name(body)
    check_method(loaded, name, method)
    examples, context = parse_examples(body, max_rows)
    call = ExamplesCall(
        loaded,
        name,
        method,
        lambda: [serialize_example({**context, **e}) for e in examples],
        lambda result: examples_json(method, result, len(examples)),
    )
    return await plane.classify_or_regress(call)


def rest_routes(plane: DataPlane) -> list[Route]:
    """/v1/models/..., /healthz and /metrics over `plane`."""

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
                request_id = plane.request_id(checked_request_id(request.headers.get(REQUEST_ID_HEADER)))
                headers = {REQUEST_ID_HEADER: request_id} if request_id else None
                body = await read_json(request, plane.limits.max_body_bytes, plane.limits.body_timeout_seconds)
                loaded = plane.resolve(*_named(match))
                answer = ApiJSONResponse(await _inference(plane, request, loaded, body, route), headers=headers)
                if plane.capture is not None:  # the body as it came and the answer as it goes: references
                    signature = body.get("signature_name") or "serving_default"
                    raw, sent = RawJSON(request.state.raw_body), RawJSON(answer.body)
                    plane.capture_later(match["name"], loaded.version, signature, route, raw, sent, request_id)
                return answer
            elif suffix == "/metadata":
                route = "metadata"
                name, version, label = _named(match)
                payload = metadata_json(plane.metadata(name, plane.resolve(name, version, label)))
            elif suffix:
                raise ApiError(404, f"no such route: GET {request.url.path}")
            else:
                payload = status_json(plane.status(*_named(match)))
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
            plane.observe(route, code, time.perf_counter() - started)

    async def healthz(request: Request):
        """200 while every model has a version loaded, with what the pin picks and any problem (see
        ModelRegistry.health). Reads only what the stores hold in memory, so it cannot fail on a file."""
        ready, body = plane.health()
        if plane.capture is not None:  # a capture losing lines degrades the server, which still answers
            capture = plane.capture.health()
            if capture["capture"] != "ok" and body.get("status") == "ok":
                body = {**body, "status": "degraded"}
            body = {**body, **capture}
        return ApiJSONResponse({**body, "pid": os.getpid()}, status_code=200 if ready else 503)

    async def prometheus(request: Request):
        return Response(plane.render_metrics(), media_type=CONTENT_TYPE_LATEST)

    if plane.capture is not None:
        plane.metrics.registry.register(_CaptureHealth(plane.capture))
    return [
        Route("/v1/models/{rest:path}", models, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Route("/metrics", prometheus),
    ]


class _CaptureHealth(Collector):
    """trainpipe_capture_degraded (1 while capture writes lose lines) and trainpipe_capture_write_failed_total."""

    def __init__(self, capture: Capture):
        self.capture = capture

    def describe(self):
        return []

    def collect(self):
        yield GaugeMetricFamily(
            "trainpipe_capture_degraded",
            "1 while the traffic capture's writes lose lines (a full disk, a file size limit), else 0",
            value=1 if self.capture.error else 0,
        )
        yield CounterMetricFamily(
            "trainpipe_capture_write_failed",
            "captured requests the disk refused (dropped whole: the files stay at line boundaries)",
            value=self.capture.write_failed,
        )


def rest_app(plane: DataPlane, lifespan=None) -> Starlette:
    return Starlette(routes=rest_routes(plane), lifespan=lifespan)
