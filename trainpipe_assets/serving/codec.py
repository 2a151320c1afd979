"""The REST API's JSON conventions, as TF Serving's: errors as {"error": ...} with a status, bytes as {"b64": ...},
features of :classify / :regress as tf.Examples, signatures described as in GetModelMetadata. No pickle anywhere.
Non-finite floats are written NaN, Infinity and -Infinity, as TF Serving writes them (and Python's json reads them)."""

from __future__ import annotations

import base64
import json
from typing import Any

from starlette.responses import JSONResponse

MAX_JSON_DEPTH = 100


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class ApiJSONResponse(JSONResponse):
    """starlette's JSONResponse, but a NaN or infinite output is written as TF Serving writes it (NaN, Infinity,
    -Infinity) instead of failing the request with "Out of range float values are not JSON compliant"."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=True, separators=(",", ":")).encode("utf-8")


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


def encode_b64(value: Any) -> Any:
    """An output (from numpy's tolist()) made JSON: bytes, however deeply nested in lists, as {"b64": ...}."""
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()}
    if isinstance(value, list):
        return [encode_b64(v) for v in value]
    return value


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


def signature_json(signature, method_name: str) -> dict:
    """One signature as TF Serving's metadata describes it (a SignatureDef as JSON); method_name comes from
    saved_model.pb, since a loaded signature does not carry it."""

    def spec(s) -> dict:
        dims = [{"size": str(-1 if d is None else d)} for d in s.shape]
        return {
            "dtype": f"DT_{s.dtype.name.upper()}",
            "tensor_shape": {"dim": dims, "unknown_rank": False},
            "name": s.name or "",
        }

    inputs = {k: spec(v) for k, v in signature.structured_input_signature[1].items()}
    outputs = {k: spec(v) for k, v in signature.structured_outputs.items()}
    return {"inputs": inputs, "outputs": outputs, "method_name": method_name or "tensorflow/serving/predict"}
