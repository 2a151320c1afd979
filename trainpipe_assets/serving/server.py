"""TF Serving's REST API (status, metadata, :predict) over a ModelStore, on starlette + uvicorn. No pickle anywhere:
JSON in, JSON out; bytes travel as {"b64": ...} as TF Serving does."""
from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Optional

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from .model_store import LoadedVersion, ModelStore

MODEL_PATH = re.compile(
    r"^(?P<name>[A-Za-z0-9_.-]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[A-Za-z0-9_.-]+))?"
    r"(?P<suffix>/metadata|:predict|:classify|:regress)?$"
)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


class Metrics:
    def __init__(self):
        self.requests: Counter = Counter()
        self.latency: Counter = Counter()
        self.latency_sum = 0.0
        self.lock = threading.Lock()

    def observe(self, route: str, code: int, seconds: float) -> None:
        with self.lock:
            self.requests[(route, code)] += 1
            self.latency_sum += seconds
            for bound in LATENCY_BUCKETS:
                if seconds <= bound:
                    self.latency[bound] += 1
            self.latency["+Inf"] += 1

    def text(self, store: ModelStore) -> str:
        lines = ["# TYPE trainpipe_requests_total counter"]
        lines += [f'trainpipe_requests_total{{route="{r}",code="{c}"}} {n}' for (r, c), n in sorted(self.requests.items())]
        lines.append("# TYPE trainpipe_request_seconds histogram")
        lines += [f'trainpipe_request_seconds_bucket{{le="{b}"}} {self.latency[b]}' for b in (*LATENCY_BUCKETS, "+Inf")]
        lines += [f"trainpipe_request_seconds_sum {self.latency_sum}", f"trainpipe_request_seconds_count {self.latency['+Inf']}"]
        serving = store.serving()
        lines += ["# TYPE trainpipe_serving_version gauge", f'trainpipe_serving_version{{model="{store.name}"}} {serving.version if serving else -1}']
        return "\n".join(lines) + "\n"


def _signature_json(signature) -> dict:
    def spec(s) -> dict:
        dims = [{"size": str(-1 if d is None else d)} for d in s.shape]
        return {"dtype": f"DT_{s.dtype.name.upper()}", "tensor_shape": {"dim": dims, "unknown_rank": False}, "name": s.name or ""}

    inputs = {k: spec(v) for k, v in signature.structured_input_signature[1].items()}
    outputs = {k: spec(v) for k, v in signature.structured_outputs.items()}
    return {"inputs": inputs, "outputs": outputs, "method_name": "tensorflow/serving/predict"}


def predict(loaded: LoadedVersion, body: dict) -> dict:
    import tensorflow as tf

    if ("instances" in body) == ("inputs" in body):
        raise ApiError(400, "the request must have exactly one of 'instances' (row format) or 'inputs' (columnar)")
    name = body.get("signature_name", "serving_default")
    if name not in loaded.model.signatures:
        raise ApiError(400, f"serving signature name {name!r} not found (has {sorted(loaded.model.signatures)})")
    signature = loaded.model.signatures[name]
    specs = signature.structured_input_signature[1]
    if "instances" in body:
        instances = _decode(body["instances"])
        if not isinstance(instances, list) or not instances:
            raise ApiError(400, "'instances' must be a non-empty list")
        if len(specs) == 1 and not (isinstance(instances[0], dict) and set(instances[0]) == set(specs)):
            columns = {next(iter(specs)): instances}
        else:
            if not all(isinstance(i, dict) for i in instances):
                raise ApiError(400, f"each instance must be an object with inputs {sorted(specs)}")
            columns = {k: [i.get(k) for i in instances] for k in specs}
    else:
        inputs = _decode(body["inputs"])
        columns = inputs if isinstance(inputs, dict) else {next(iter(specs)): inputs}
    missing = sorted(set(specs) - set(columns))
    if missing:
        raise ApiError(400, f"missing inputs {missing} for signature {name!r}")
    try:
        tensors = {k: tf.constant(columns[k], dtype=specs[k].dtype) for k in specs}
        result = signature(**tensors)
    except (ValueError, TypeError, tf.errors.InvalidArgumentError) as e:
        raise ApiError(400, f"{type(e).__name__}: {str(e).splitlines()[0][:500]}")
    outputs = {k: _encode(v.numpy().tolist()) for k, v in result.items()}
    if "inputs" in body:
        return {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}
    if len(outputs) == 1:
        return {"predictions": next(iter(outputs.values()))}
    rows = len(next(iter(outputs.values())))
    return {"predictions": [{k: v[i] for k, v in outputs.items()} for i in range(rows)]}


def build_app(store: ModelStore, max_body_bytes: int = 10 << 20) -> Starlette:
    metrics = Metrics()

    def resolve(match: re.Match) -> LoadedVersion:
        if match["name"] != store.name:
            raise ApiError(404, f"model {match['name']!r} not found (serving {store.name!r})")
        versions = store.versions()
        if match["label"]:
            labels = store.labels()
            if match["label"] not in labels:
                raise ApiError(404, f"label {match['label']!r} not found (labels: {sorted(labels)})")
            version = labels[match["label"]]
        elif match["version"]:
            version = int(match["version"])
        else:
            serving = store.serving()
            if serving is None:
                raise ApiError(503, f"no version of {store.name!r} is loaded yet")
            return serving
        if version not in versions:
            if not versions:
                raise ApiError(503, f"no version of {store.name!r} is loaded yet")
            raise ApiError(404, f"version {version} of {store.name!r} not found (loaded: {sorted(versions)})")
        return versions[version]

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
                if int(request.headers.get("content-length") or 0) > max_body_bytes:
                    raise ApiError(413, f"request body over {max_body_bytes} bytes")
                raw = await request.body()
                if len(raw) > max_body_bytes:
                    raise ApiError(413, f"request body over {max_body_bytes} bytes")
                try:
                    body = json.loads(raw)
                except ValueError as e:
                    raise ApiError(400, f"request body is not JSON: {e}")
                if not isinstance(body, dict):
                    raise ApiError(400, "request body must be a JSON object")
                if suffix != ":predict":
                    raise ApiError(400, f"{suffix[1:]} needs a classify/regress signature; this model has {sorted(resolve(match).model.signatures)}")
                payload = predict(resolve(match), body)
            elif suffix == "/metadata":
                route = "metadata"
                loaded = resolve(match)
                payload = {
                    "model_spec": {"name": store.name, "signature_name": "", "version": str(loaded.version)},
                    "metadata": {"signature_def": {"signature_def": {k: _signature_json(v) for k, v in loaded.model.signatures.items()}}},
                }
            elif suffix:
                raise ApiError(404, f"no such route: GET {request.url.path}")
            else:
                versions = [resolve(match)] if (match["version"] or match["label"]) else sorted(store.versions().values(), key=lambda v: -v.version)
                if not versions:
                    raise ApiError(503, f"no version of {store.name!r} is loaded yet")
                ok = {"error_code": "OK", "error_message": ""}
                payload = {"model_version_status": [{"version": str(v.version), "state": "AVAILABLE", "status": ok} for v in versions]}
            return JSONResponse(payload)
        except ApiError as e:
            code = e.status
            return JSONResponse({"error": e.message}, status_code=e.status)
        finally:
            metrics.observe(route, code, time.perf_counter() - started)

    async def healthz(request: Request):
        serving = store.serving()
        return JSONResponse({"status": "ok" if serving else "loading", "serving_version": serving and serving.version}, status_code=200 if serving else 503)

    async def prometheus(request: Request):
        return PlainTextResponse(metrics.text(store), media_type="text/plain; version=0.0.4")

    return Starlette(routes=[
        Route("/v1/models/{rest:path}", models, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Route("/metrics", prometheus),
    ])


def serve(name: str, base: Path, host: str = "127.0.0.1", port: int = 8501, poll_seconds: float = 2.0,
          labels_file: Optional[Path] = None, max_body_bytes: int = 10 << 20) -> None:
    import uvicorn

    store = ModelStore(name, base, labels_file)
    threading.Thread(target=lambda: (store.refresh(), store.watch(poll_seconds)), daemon=True).start()
    uvicorn.run(build_app(store, max_body_bytes), host=host, port=port, log_level="warning")
