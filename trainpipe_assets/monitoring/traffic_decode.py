"""The features and predictions of captured requests (serving/capture.py's lines), whatever API they came through:

* REST :predict: `instances` (rows) or `inputs` (columns), each row a serialized tf.Example as {"b64": ...} (alone or
  under its input's name) or an object of features; answers `predictions` (rows) or `outputs` (columns);
* REST :classify / :regress: `examples` (objects of features) merged over `context`; answers `result` ([label, score]
  per class) or `results`;
* gRPC, as the server records it (json_format with proto field names): PredictRequest `inputs` of TensorProtos (one
  DT_STRING tensor of serialized tf.Examples, or a tensor per feature), Classify/Regress `input.example_list` (with
  `context`) of tf.Examples as JSON; answers PredictResponse `outputs`, `result.classifications` / `regressions`.

A row's features are {name: [values]} (int, float or bytes); a row's prediction is a list of floats (one score, or one
per class). A request whose features or answer cannot be read is counted with the reason, never guessed at."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

Row = dict[str, list]


class Unreadable(ValueError):
    pass


@dataclass
class Traffic:
    """Rows of a day's captured requests, in order; `rows[i]` is None when its request's features were unreadable."""

    rows: list[Optional[Row]] = field(default_factory=list)
    predictions: list[Optional[list[float]]] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    keys: list[tuple[str, int]] = field(default_factory=list)  # (request_id, position in the request)
    skipped: dict[str, int] = field(default_factory=dict)  # why -> requests

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


def _b64(text: Any) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (TypeError, ValueError) as e:
        raise Unreadable(f"bad base64: {e}") from None


def _flat(value: Any) -> list:
    """A JSON feature value as a flat list of int, float or bytes (strings as UTF-8, {"b64": ...} decoded)."""
    if isinstance(value, list):
        return [v for item in value for v in _flat(item)]
    if isinstance(value, dict) and set(value) == {"b64"}:
        return [_b64(value["b64"])]
    if isinstance(value, str):
        return [value.encode()]
    if isinstance(value, bool):
        return [int(value)]
    if isinstance(value, (int, float)):
        return [value]
    if value is None:
        return []
    raise Unreadable(f"a feature value is {type(value).__name__}")


def parse_example(serialized: bytes) -> Optional[Row]:
    """A serialized tf.Example as a row; None when it is not one (or has no feature)."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.example import example_pb2

    try:
        example = example_pb2.Example.FromString(serialized)
    except (DecodeError, RuntimeError, ValueError):
        return None
    row = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        row[name] = list(getattr(feature, kind).value) if kind else []
    return row or None


def _examples(values: list) -> Optional[list[Row]]:
    """Values that are all serialized tf.Examples, as rows; None otherwise."""
    rows = [parse_example(v) if isinstance(v, bytes) else None for v in values]
    return rows if rows and all(r is not None for r in rows) else None


def _rows_of_instances(instances: list) -> list[Row]:
    values = [_flat(i)[0] if isinstance(i, dict) and set(i) == {"b64"} else i for i in instances]
    if all(isinstance(i, dict) and len(i) == 1 for i in values):  # {"examples": {"b64": ...}} per row
        inner = [_flat(next(iter(i.values()))) for i in values]
        rows = _examples([v[0] if len(v) == 1 else None for v in inner])
        if rows is not None:
            return rows
    rows = _examples(values)
    if rows is not None:
        return rows
    if not all(isinstance(i, dict) for i in values):
        raise Unreadable("instances are tensors, not features")
    return [{k: _flat(v) for k, v in i.items()} for i in values]


def _rows_of_columns(inputs: Any) -> list[Row]:
    if isinstance(inputs, list):
        return _rows_of_instances(inputs)
    if not isinstance(inputs, dict) or not inputs:
        raise Unreadable("'inputs' is neither a list nor an object of columns")
    if len(inputs) == 1 and isinstance(column := next(iter(inputs.values())), list):
        rows = _examples([_flat(v)[0] if isinstance(v, dict) else v for v in column])
        if rows is not None:
            return rows
    columns = {k: v if isinstance(v, list) else [v] for k, v in inputs.items()}
    n = {len(v) for v in columns.values()}
    if len(n) != 1:
        raise Unreadable("columns of different lengths")
    return [{k: _flat(v[i]) for k, v in columns.items()} for i in range(n.pop())]


DTYPES = {"DT_FLOAT": "<f4", "DT_DOUBLE": "<f8", "DT_INT32": "<i4", "DT_INT64": "<i8", "DT_HALF": "<f2"}
VALUE_FIELDS = ("string_val", "float_val", "double_val", "int_val", "int64_val", "bool_val", "half_val")


def tensor_rows(tensor: dict) -> list[list]:
    """A TensorProto as json_format writes it, as one flat list of values per row (its first dimension)."""
    dims = [int(d.get("size", 0)) for d in tensor.get("tensor_shape", {}).get("dim", [])]
    if "tensor_content" in tensor:
        values = np.frombuffer(_b64(tensor["tensor_content"]), dtype=DTYPES[tensor["dtype"]]).tolist()
    else:
        found = next((f for f in VALUE_FIELDS if f in tensor), None)
        raw = tensor.get(found, [])
        values = [_b64(v) for v in raw] if found == "string_val" else [float(v) for v in raw]
        if found in ("int_val", "int64_val", "bool_val"):
            values = [int(v) for v in values]
    n = dims[0] if dims else 1
    size = int(np.prod(dims)) if dims else 1
    if len(values) == 1 and size > 1:  # one value fills the tensor, as TensorFlow reads it
        values = values * size
    if n <= 0 or len(values) != size:
        raise Unreadable(f"a tensor of shape {dims} holds {len(values)} values")
    width = size // n
    return [values[i * width : (i + 1) * width] for i in range(n)]


def _is_tensor(value: Any) -> bool:
    return isinstance(value, dict) and "dtype" in value


def _example_json(example: dict) -> Row:
    row = {}
    for name, feature in example.get("features", {}).get("feature", {}).items():
        kind, values = next(iter(feature.items()), (None, {}))
        values = values.get("value", [])
        row[name] = (
            [_b64(v) for v in values]
            if kind == "bytes_list"
            else [int(v) if kind == "int64_list" else float(v) for v in values]
        )
    return row


def request_rows(request: dict) -> list[Row]:
    """The feature rows of one captured request body (REST or gRPC)."""
    inputs = request.get("inputs")
    tensors = isinstance(inputs, dict) and any(_is_tensor(t) for t in inputs.values())
    if "model_spec" in request or "input" in request or tensors:  # gRPC
        if "input" in request:
            given = request["input"]
            listed = given.get("example_list_with_context") or given.get("example_list") or {}
            context = _example_json(listed.get("context", {}))
            return [{**context, **_example_json(e)} for e in listed.get("examples", [])]
        columns = {k: tensor_rows(t) for k, t in request.get("inputs", {}).items()}
        if len(columns) == 1:
            [column] = columns.values()
            rows = _examples([v[0] if len(v) == 1 else None for v in column])
            if rows is not None:
                return rows
        n = {len(c) for c in columns.values()}
        if len(n) != 1:
            raise Unreadable("input tensors of different first dimensions")
        return [{k: c[i] for k, c in columns.items()} for i in range(n.pop())]
    if "examples" in request:
        context = {k: _flat(v) for k, v in (request.get("context") or {}).items()}
        return [{**context, **{k: _flat(v) for k, v in e.items()}} for e in request["examples"]]
    if "instances" in request:
        return _rows_of_instances(request["instances"])
    if "inputs" in request:
        return _rows_of_columns(request["inputs"])
    raise Unreadable("no instances, inputs or examples")


def _pick(outputs: dict, key: Optional[str]) -> Any:
    if key is not None:
        if key not in outputs:
            raise Unreadable(f"no output {key!r} (evaluation.prediction_key) among {sorted(outputs)}")
        return outputs[key]
    return next(iter(outputs.values()))


def _scores(value: Any) -> list[float]:
    scores = [float(v) for v in _flat(value) if not isinstance(v, bytes)]
    if not scores:
        raise Unreadable("a prediction without a number")
    return scores


def response_predictions(response: dict, key: Optional[str] = None) -> list[list[float]]:
    """One list of scores per row of a captured answer (REST or gRPC)."""
    if "predictions" in response:
        rows = response["predictions"]
        return [_scores(_pick(r, key) if isinstance(r, dict) else r) for r in rows]
    if "outputs" in response:
        outputs = response["outputs"]
        if (
            isinstance(outputs, dict)
            and outputs
            and all(isinstance(t, dict) and "dtype" in t for t in outputs.values())
        ):
            return [_scores(r) for r in tensor_rows(_pick(outputs, key))]  # gRPC PredictResponse
        return [_scores(r) for r in (_pick(outputs, key) if isinstance(outputs, dict) else outputs)]
    if "results" in response:
        return [_scores(r) for r in response["results"]]
    result = response.get("result")
    if isinstance(result, list):  # REST classify: [[label, score], ...] per row
        return [[float(pair[1]) for pair in row] for row in result]
    if isinstance(result, dict) and "classifications" in result:
        return [[float(c.get("score", 0.0)) for c in r.get("classes", [])] for r in result["classifications"]]
    if isinstance(result, dict) and "regressions" in result:
        return [[float(r.get("value", 0.0))] for r in result["regressions"]]
    raise Unreadable("no predictions, outputs, result or results in the answer")


UNREADABLE = (ValueError, KeyError, TypeError, AttributeError, IndexError, StopIteration)


def decode_traffic(entries: list[dict], prediction_key: Optional[str] = None) -> Traffic:
    """Every row of every captured request, with its prediction when the answer has one per row."""
    traffic = Traffic()
    for entry in entries:
        try:
            rows: list[Optional[Row]] = list(request_rows(entry.get("request") or {}))
        except UNREADABLE as e:
            traffic.skip(f"features unreadable: {e}")
            rows = []
        try:
            predictions: list[Optional[list[float]]] = list(
                response_predictions(entry.get("response") or {}, prediction_key)
            )
        except UNREADABLE as e:
            traffic.skip(f"predictions unreadable: {e}")
            predictions = [None] * len(rows)
        if rows and len(predictions) != len(rows):
            traffic.skip(f"{len(rows)} rows but {len(predictions)} predictions")
            predictions = [None] * len(rows)
        rows = rows or [None] * len(predictions)
        for i, (row, prediction) in enumerate(zip(rows, predictions)):
            traffic.rows.append(row)
            traffic.predictions.append(prediction)
            traffic.versions.append(int(entry.get("version") or 0))
            traffic.keys.append((str(entry.get("request_id", "")), i))
    return traffic
