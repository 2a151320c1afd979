"""The REST API's JSON conventions, as TF Serving's (tensorflow_serving/util/json_tensor.cc): errors as {"error": ...}
with a status, bytes in requests as {"b64": ...}, features of :classify / :regress as tf.Examples. Outputs: a string
tensor is written {"b64": ...} only when its name ends in "_bytes", else as a plain (UTF-8) string; a float32 is written
with the fewest digits that read back as the same float32 (0.3, not 0.30000001192092896). No pickle anywhere.
Non-finite floats are written NaN, Infinity and -Infinity, as TF Serving writes them (and Python's json reads them)."""

from __future__ import annotations

import asyncio
import base64
import json
import math
from typing import Any, Optional, Sequence

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

MAX_JSON_DEPTH = 100
OFFLOAD_BYTES = 64 << 10  # bodies larger than this are parsed and checked on a thread, not on the event loop
STRING_OVERHEAD = 32  # bytes a decoded string element takes besides its own: TF's tstring (24) and a pointer (8)
JSON_ELEMENT_BYTES = 2  # the least an element takes in a JSON body ("0,")


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class ApiJSONResponse(JSONResponse):
    """starlette's JSONResponse, but a NaN or infinite output is written as TF Serving writes it (NaN, Infinity,
    -Infinity) instead of failing the request with "Out of range float values are not JSON compliant"."""

    def render(self, content: Any) -> bytes:
        return _ENCODER.encode(content).encode("utf-8")


# One encoder for every response: json.dumps with arguments builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=True, separators=(",", ":"))


def json_type(value: Any) -> str:
    """A parsed JSON value's type as JSON names it, for messages."""
    if isinstance(value, bool):
        return "a boolean"
    names = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number"}
    return names.get(type(value), "null" if value is None else type(value).__name__)


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether a parsed JSON value nests arrays/objects more than `limit` levels deep (iterative: no recursion)."""
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        container, depth = stack.pop()
        if depth > limit:
            return True
        for child in container.values() if isinstance(container, dict) else container:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return False


def decode_b64(value: Any) -> Any:
    """A JSON value with every {"b64": ...} object, however deeply nested, replaced by its bytes."""
    if isinstance(value, dict) and set(value) == {"b64"}:
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (TypeError, ValueError) as e:  # binascii.Error is a ValueError
            raise ApiError(400, f'bad {{"b64": ...}} value: {e}')
    if isinstance(value, dict):
        return {k: decode_b64(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_b64(v) for v in value]
    return value


def _map_bytes(value: Any, convert) -> Any:
    if isinstance(value, bytes):
        return convert(value)
    if isinstance(value, list):
        return [_map_bytes(v, convert) for v in value]
    return value


def json_tensor(name: str, array: Any) -> Any:
    """An output tensor (numpy) as TF Serving's JSON writes it; `name` is the output's key in the signature."""
    import numpy as np

    if array.dtype.kind in "OS":  # tf.string
        if name.endswith("_bytes"):
            return _map_bytes(array.tolist(), lambda b: {"b64": base64.b64encode(b).decode()})
        return _map_bytes(array.tolist(), lambda b: b.decode("utf-8", "replace"))
    if array.dtype == np.float32:  # numpy's str() of a float32 is its shortest round-trip form, as TF Serving's
        return array.astype(str).astype(np.float64).tolist()
    return array.tolist()


def serialize_example(features: dict) -> bytes:
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
        try:
            if bytes in kinds:
                feature.bytes_list.value.extend(v.encode() if isinstance(v, str) else v for v in values)
            elif float in kinds:
                feature.float_list.value.extend(values)
            else:
                feature.int64_list.value.extend(values)
        except ValueError as e:  # e.g. an integer out of int64's range
            raise ApiError(400, f"feature {key!r}: {e}")
    return example.SerializeToString()


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


async def read_json(request: Request, max_body_bytes: int, timeout_seconds: float) -> dict:
    """The body as a JSON object; every way it can be wrong is an ApiError naming it (408, 413, 400)."""
    try:
        async with asyncio.timeout(timeout_seconds):  # not wait_for: no task of its own per request
            raw = await read_body(request, max_body_bytes)
    except TimeoutError:
        raise ApiError(
            408, f"request body not received within {timeout_seconds:g} s (--body-timeout-seconds)"
        ) from None
    except ClientDisconnect:
        raise ApiError(400, "the client disconnected before sending the whole body") from None
    too_deep = ApiError(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    request.state.raw_body = raw  # for the capture, which writes the body as it came
    try:  # a large body is parsed on a thread: the event loop keeps answering others meanwhile
        body = json.loads(raw) if len(raw) <= OFFLOAD_BYTES else await asyncio.to_thread(json.loads, raw)
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


# Bounded decoding, shared by REST (check_columns) and gRPC (tensors.py): a request's inputs are checked against the
# signature's rank and dimensions and against the element and decoded-byte limits before any array is made of them.


def check_shape(key: str, dims: Sequence[int], expected: Optional[Sequence[Optional[int]]]) -> None:
    """A 400 unless `dims` has the rank and the known dimensions of the signature's `expected` (None: any shape)."""
    if expected is None:
        return
    if len(dims) != len(expected) or any(e is not None and e != d for d, e in zip(dims, expected)):
        wanted = [-1 if e is None else e for e in expected]
        raise ApiError(400, f"input {key!r} has shape {list(dims)}, the signature takes {wanted} (rank {len(wanted)})")


def check_elements(key: str, dims: Sequence[int], elements: int, per_element: int, max_body_bytes: int) -> None:
    """A 400 if the shape claims more elements than a body (message) of --max-body-bytes can carry."""
    if elements * per_element > max_body_bytes:
        raise ApiError(
            400,
            f"input {key!r} of shape {list(dims)} claims {elements} elements, over the limit of "
            f"{max_body_bytes // per_element} that a request of at most {max_body_bytes} bytes can carry "
            "(--max-body-bytes)",
        )


class DecodedBytes:
    """The memory one request's inputs take once decoded, counted input by input against --max-decoded-bytes."""

    def __init__(self, limit: int):
        self.limit, self.total = limit, 0

    def add(self, key: str, dims: Sequence[int], size: int) -> None:
        self.total += size
        if self.total > self.limit:
            raise ApiError(
                400,
                f"input {key!r} of shape {list(dims)} would take {size} bytes decoded, the request {self.total}, "
                f"over the limit of {self.limit} bytes (--max-decoded-bytes)",
            )


def json_shape(value: Any) -> tuple[list[int], Any]:
    """The shape of a JSON value (lists of lists) read along its first elements, and its first leaf: what the
    checks need, without a walk over every element (a ragged value is refused later, by the signature call)."""
    dims = []
    while isinstance(value, list):
        dims.append(len(value))
        if not value:
            return dims, None
        value = value[0]
    return dims, value


def check_columns(specs: dict, columns: dict, body_bytes: int, limits) -> None:
    """A REST request's columns (JSON values, bytes decoded) checked against the signature's `specs` (TensorSpecs):
    the kind of value (strings for a string input, numbers otherwise), rank and dimensions, elements and the memory
    they take decoded (a string: at most the body's bytes, plus STRING_OVERHEAD each). A 400 naming input and limit."""
    decoded = DecodedBytes(limits.decoded_bytes)
    strings_counted = False
    for key, spec in specs.items():
        dims, leaf = json_shape(columns[key])
        is_string = spec.dtype.name == "string"
        if leaf is not None and isinstance(leaf, (str, bytes)) != is_string:
            raise ApiError(400, f"input {key!r} expects {spec.dtype.name} but {json_type(leaf)} is given")
        rank = spec.shape.rank
        check_shape(key, dims, None if rank is None else spec.shape.as_list())
        elements = math.prod(dims)
        check_elements(key, dims, elements, JSON_ELEMENT_BYTES, limits.max_body_bytes)
        item = STRING_OVERHEAD if is_string else max(spec.dtype.size, 1)
        size = elements * item + (0 if strings_counted or not is_string else body_bytes)
        strings_counted = strings_counted or is_string
        decoded.add(key, dims, size)
