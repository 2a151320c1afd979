"""TF Serving's REST API (status, metadata, :predict) over a ModelStore, on starlette + uvicorn. No pickle anywhere:
JSON in, JSON out; bytes travel as {"b64": ...} as TF Serving does."""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from .batching import Batcher
from .model_store import LoadedVersion, ModelStore

MODEL_PATH = re.compile(
    r"^(?P<name>[A-Za-z0-9_.-]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[A-Za-z0-9_.-]+))?"
    r"(?P<suffix>/metadata|:predict|:classify|:regress)?$"
)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


@dataclass(frozen=True)
class BatchingOptions:
    """TF Serving's --enable_batching parameters."""
    max_batch_size: int = 32
    batch_timeout_micros: int = 1000
    num_batch_threads: int = os.cpu_count() or 1


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"b64"}:
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (TypeError, ValueError) as e:  # binascii.Error is a ValueError
            raise ApiError(400, f"bad {{\"b64\": ...}} value: {e}")
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
        self.batches: Counter = Counter()
        self.batch_rows = 0
        self.fallbacks = 0
        self.lock = threading.Lock()

    def observe(self, route: str, code: int, seconds: float) -> None:
        with self.lock:
            self.requests[(route, code)] += 1
            self.latency_sum += seconds
            for bound in LATENCY_BUCKETS:
                if seconds <= bound:
                    self.latency[bound] += 1
            self.latency["+Inf"] += 1

    def observe_batch(self, rows: int) -> None:
        with self.lock:
            self.batch_rows += rows
            for bound in BATCH_BUCKETS:
                if rows <= bound:
                    self.batches[bound] += 1
            self.batches["+Inf"] += 1

    def observe_fallback(self) -> None:
        with self.lock:
            self.fallbacks += 1

    def text(self, store: ModelStore) -> str:
        lines = ["# TYPE trainpipe_requests_total counter"]
        lines += [f'trainpipe_requests_total{{route="{r}",code="{c}"}} {n}' for (r, c), n in sorted(self.requests.items())]
        lines.append("# TYPE trainpipe_request_seconds histogram")
        lines += [f'trainpipe_request_seconds_bucket{{le="{b}"}} {self.latency[b]}' for b in (*LATENCY_BUCKETS, "+Inf")]
        lines += [f"trainpipe_request_seconds_sum {self.latency_sum}", f"trainpipe_request_seconds_count {self.latency['+Inf']}"]
        lines += ["# HELP trainpipe_batch_size rows per signature call of :predict", "# TYPE trainpipe_batch_size histogram"]
        lines += [f'trainpipe_batch_size_bucket{{le="{b}"}} {self.batches[b]}' for b in (*BATCH_BUCKETS, "+Inf")]
        lines += [f"trainpipe_batch_size_sum {self.batch_rows}", f"trainpipe_batch_size_count {self.batches['+Inf']}"]
        lines += ["# HELP trainpipe_batch_fallbacks_total merged calls that failed and ran request by request",
                  "# TYPE trainpipe_batch_fallbacks_total counter", f"trainpipe_batch_fallbacks_total {self.fallbacks}"]
        serving = store.serving()
        lines += ["# TYPE trainpipe_serving_version gauge", f'trainpipe_serving_version{{model="{store.name}"}} {serving.version if serving else -1}']
        return "\n".join(lines) + "\n"


def _signature_json(signature, method_name: str) -> dict:
    def spec(s) -> dict:
        dims = [{"size": str(-1 if d is None else d)} for d in s.shape]
        return {"dtype": f"DT_{s.dtype.name.upper()}", "tensor_shape": {"dim": dims, "unknown_rank": False}, "name": s.name or ""}

    inputs = {k: spec(v) for k, v in signature.structured_input_signature[1].items()}
    outputs = {k: spec(v) for k, v in signature.structured_outputs.items()}
    return {"inputs": inputs, "outputs": outputs, "method_name": method_name or "tensorflow/serving/predict"}


@dataclass(eq=False)
class Call:
    """One :predict request, parsed and checked: the columns to feed and, when they can be merged with other
    requests', their row count."""
    loaded: LoadedVersion
    signature_name: str
    columnar: bool
    columns: dict[str, Any]
    rows: Optional[int]


def parse_predict(loaded: LoadedVersion, body: dict) -> Call:
    if ("instances" in body) == ("inputs" in body):
        raise ApiError(400, "the request must have exactly one of 'instances' (row format) or 'inputs' (columnar)")
    name = body.get("signature_name", "serving_default")
    if name not in loaded.model.signatures:
        raise ApiError(400, f"serving signature name {name!r} not found (has {sorted(loaded.model.signatures)})")
    specs = loaded.model.signatures[name].structured_input_signature[1]
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
    columns = {k: columns[k] for k in specs}
    lengths = {len(v) if isinstance(v, list) else -1 for v in columns.values()}
    rows = lengths.pop() if len(lengths) == 1 and min(lengths) > 0 else None
    return Call(loaded, name, "inputs" in body, columns, rows)


def _invoke(loaded: LoadedVersion, signature_name: str, columns: dict[str, Any]) -> dict:
    """The signature call (on a worker thread): numpy outputs, or a 400 for inputs the signature rejects."""
    import tensorflow as tf

    signature = loaded.model.signatures[signature_name]
    specs = signature.structured_input_signature[1]
    try:
        tensors = {k: tf.constant(columns[k], dtype=specs[k].dtype) for k in specs}
        return {k: v.numpy() for k, v in signature(**tensors).items()}
    except (ValueError, TypeError, tf.errors.InvalidArgumentError) as e:
        raise ApiError(400, f"{type(e).__name__}: {_error_line(e)}")


def _error_line(e: Exception) -> str:
    """The telling line of a TensorFlow error: not "Graph execution error:", the traceback or the node name."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    telling = [line for line in lines if not line.startswith(("Graph execution error", "Detected at node", "File ", "[["))]
    return (telling or lines or [""])[-1][:500]


def run_alone(call: Call) -> dict:
    return {k: _encode(v.tolist()) for k, v in _invoke(call.loaded, call.signature_name, call.columns).items()}


def run_merged(calls: Sequence[Call], metrics: Optional["Metrics"] = None) -> list:
    """One signature call for requests of the same version + signature, split back per request. If the merged call
    fails or an output has no batch dimension, each request runs alone, so each gets its own answer or error."""
    def alone(call: Call):
        if metrics:
            metrics.observe_batch(call.rows or 1)
        try:
            return run_alone(call)
        except Exception as e:
            return e

    if len(calls) == 1:
        return [alone(calls[0])]
    first, total = calls[0], sum(c.rows for c in calls)
    try:
        merged = {k: [row for c in calls for row in c.columns[k]] for k in first.columns}
        outputs = _invoke(first.loaded, first.signature_name, merged)
        if not all(v.ndim and len(v) == total for v in outputs.values()):
            raise ValueError("an output has no batch dimension")
    except Exception:
        if metrics:
            metrics.observe_fallback()
        return [alone(c) for c in calls]
    if metrics:
        metrics.observe_batch(total)
    answers, start = [], 0
    for call in calls:
        answers.append({k: _encode(v[start:start + call.rows].tolist()) for k, v in outputs.items()})
        start += call.rows
    return answers


def predict_response(call: Call, outputs: dict) -> dict:
    if call.columnar:
        return {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}
    if len(outputs) == 1:
        return {"predictions": next(iter(outputs.values()))}
    rows = len(next(iter(outputs.values())))
    return {"predictions": [{k: v[i] for k, v in outputs.items()} for i in range(rows)]}


def predict(loaded: LoadedVersion, body: dict) -> dict:
    """A :predict request answered on the calling thread (no batching)."""
    call = parse_predict(loaded, body)
    return predict_response(call, run_alone(call))


METHODS = {"classify": "tensorflow/serving/classify", "regress": "tensorflow/serving/regress"}


def _example(features: dict) -> bytes:
    """A JSON object of features as a serialized tf.Example: ints -> int64_list, floats -> float_list,
    strings and {"b64": ...} -> bytes_list; a value may be one item or a list."""
    import tensorflow as tf

    def kind(v):
        if isinstance(v, (str, bytes)):
            return bytes
        return float if isinstance(v, float) else int if isinstance(v, int) and not isinstance(v, bool) else None

    example = tf.train.Example()
    for key, value in features.items():
        values = value if isinstance(value, list) else [value]
        kinds = {kind(v) for v in values}
        if None in kinds or (bytes in kinds and len(kinds) > 1):
            raise ApiError(400, f"feature {key!r}: values must be all numbers or all strings/{{'b64': ...}}")
        feature = example.features.feature[key]
        if bytes in kinds:
            feature.bytes_list.value.extend(v.encode() if isinstance(v, str) else v for v in values)
        elif float in kinds:
            feature.float_list.value.extend(values)
        else:
            feature.int64_list.value.extend(values)
    return example.SerializeToString()


def classify_or_regress(loaded: LoadedVersion, body: dict, method: str) -> dict:
    """TF Serving's :classify / :regress: {"signature_name"?, "context"?, "examples": [{feature: value}]} run through a
    signature whose method_name is tensorflow/serving/classify (or regress) and whose one input takes tf.Examples."""
    name = body.get("signature_name", "serving_default")
    if loaded.methods.get(name) != METHODS[method]:
        raise ApiError(400, f":{method} needs a signature with method_name {METHODS[method]}; signature {name!r} has "
                            f"{loaded.methods.get(name)!r} (signatures: {loaded.methods})")
    examples, context = _decode(body.get("examples")), _decode(body.get("context", {}))
    if not isinstance(examples, list) or not examples or not all(isinstance(e, dict) for e in examples):
        raise ApiError(400, "'examples' must be a non-empty list of objects")
    if not isinstance(context, dict):
        raise ApiError(400, "'context' must be an object")
    specs = loaded.model.signatures[name].structured_input_signature[1]
    if len(specs) != 1:
        raise ApiError(400, f"signature {name!r} must have one input of serialized tf.Examples, has {sorted(specs)}")
    outputs = _invoke(loaded, name, {next(iter(specs)): [_example({**context, **e}) for e in examples]})
    n = len(examples)
    if method == "regress":
        values = outputs.get("outputs", next(iter(outputs.values())))
        if values.size != n:
            raise ApiError(400, f"signature {name!r} must output one value per example, output shape {values.shape}")
        return {"results": values.reshape(n).tolist()}
    if "scores" not in outputs and "classes" not in outputs:
        raise ApiError(400, f"signature {name!r} outputs neither 'classes' nor 'scores' ({sorted(outputs)})")
    scores = outputs["scores"].reshape(n, -1).tolist() if "scores" in outputs else None
    classes = [[c.decode() for c in row] for row in outputs["classes"].reshape(n, -1).tolist()] if "classes" in outputs else None
    width = len((classes or scores)[0])
    # as TF Serving: [label, score] per class; a missing label is "", a missing score 0
    return {"result": [[[classes[i][j] if classes else "", scores[i][j] if scores else 0.0] for j in range(width)] for i in range(n)]}


def build_app(store: ModelStore, max_body_bytes: int = 10 << 20, batching: Optional[BatchingOptions] = None) -> Starlette:
    """Model calls run on worker threads, never on the event loop, so concurrent requests overlap. With batching,
    :predict requests are merged per LoadedVersion + signature (a hot swap leaves queued requests on their version)."""
    metrics = Metrics()
    executor = ThreadPoolExecutor(batching.num_batch_threads if batching else os.cpu_count(), thread_name_prefix="model")
    batcher = batching and Batcher(lambda calls: run_merged(calls, metrics), executor, batching.max_batch_size,
                                   batching.batch_timeout_micros / 1e6, batching.num_batch_threads)

    async def run_predict(call: Call) -> dict:
        if batcher and call.rows and call.rows <= batcher.max_batch_size:
            return await batcher.submit((call.loaded, call.signature_name), call, call.rows)
        metrics.observe_batch(call.rows or 1)
        return await asyncio.get_running_loop().run_in_executor(executor, run_alone, call)

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
                raw = b"".join(chunks)
                try:
                    body = json.loads(raw)
                except ValueError as e:
                    raise ApiError(400, f"request body is not JSON: {e}")
                if not isinstance(body, dict):
                    raise ApiError(400, "request body must be a JSON object")
                loaded = resolve(match)
                if suffix == ":predict":
                    call = parse_predict(loaded, body)
                    payload = predict_response(call, await run_predict(call))
                else:
                    payload = await asyncio.get_running_loop().run_in_executor(executor, classify_or_regress, loaded, body, suffix[1:])
            elif suffix == "/metadata":
                route = "metadata"
                loaded = resolve(match)
                payload = {
                    "model_spec": {"name": store.name, "signature_name": "", "version": str(loaded.version)},
                    "metadata": {"signature_def": {"signature_def": {k: _signature_json(v, loaded.methods.get(k)) for k, v in loaded.model.signatures.items()}}},
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
        except Exception as e:  # a bug or an unexpected TensorFlow error: still JSON, and counted as a 500
            code = 500
            logging.getLogger(__name__).exception("%s %s failed", request.method, request.url.path)
            return JSONResponse({"error": f"internal error: {type(e).__name__}: {str(e)[:300]}"}, status_code=500)
        finally:
            metrics.observe(route, code, time.perf_counter() - started)

    async def healthz(request: Request):
        serving = store.serving()
        body = {"status": "ok" if serving else "loading", "serving_version": serving and serving.version}
        if store.errors:  # versions that failed to load, e.g. for the infra validator to stop waiting
            body["errors"] = {str(v): e for v, e in dict(store.errors).items()}
        return JSONResponse(body, status_code=200 if serving else 503)

    async def prometheus(request: Request):
        return PlainTextResponse(metrics.text(store), media_type="text/plain; version=0.0.4")

    return Starlette(routes=[
        Route("/v1/models/{rest:path}", models, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Route("/metrics", prometheus),
    ])


def serve(name: str, base: Path, host: str = "127.0.0.1", port: int = 8501, poll_seconds: float = 2.0,
          labels_file: Optional[Path] = None, max_body_bytes: int = 10 << 20, batching: Optional[BatchingOptions] = None) -> None:
    import uvicorn

    store = ModelStore(name, base, labels_file)
    threading.Thread(target=lambda: (store.refresh(), store.watch(poll_seconds)), daemon=True).start()
    uvicorn.run(build_app(store, max_body_bytes, batching), host=host, port=port, log_level="warning")
