"""The REST API's JSON conventions, as TF Serving's: errors as {"error": ...} with a status, bytes as {"b64": ...},
features of :classify / :regress as tf.Examples, signatures described as in GetModelMetadata. No pickle anywhere."""

from __future__ import annotations

import base64
from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


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
        if bytes in kinds:
            feature.bytes_list.value.extend(v.encode() if isinstance(v, str) else v for v in values)
        elif float in kinds:
            feature.float_list.value.extend(values)
        else:
            feature.int64_list.value.extend(values)
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
