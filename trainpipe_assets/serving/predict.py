""":predict, :classify and :regress on a LoadedVersion: requests checked into signature calls, and the calls' outputs
shaped into TF Serving's answers. REST bodies are parsed here; gRPC requests in tensors.py, into the same Call
(so both share the batcher) and the same classify/regress core. Model calls run on worker threads, never on the
event loop (the DataPlane's threads)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from trainpipe_assets.serving.codec import ApiError, decode_b64, json_tensor, json_type, serialize_example
from trainpipe_assets.serving.model_store import LoadedVersion

if TYPE_CHECKING:
    from trainpipe_assets.serving.metrics import Metrics


def json_outputs(outputs: dict) -> dict:
    return {k: json_tensor(k, v) for k, v in outputs.items()}


@dataclass(eq=False)
class Call:
    """One :predict request, parsed and checked: the columns to feed (lists from JSON, numpy arrays from gRPC) and,
    when they can be merged with other requests', their row count. `encode` turns the call's numpy outputs into its
    answer on the worker thread: JSON values for REST, a PredictResponse for gRPC."""

    loaded: LoadedVersion
    signature_name: str
    columnar: bool
    columns: dict[str, Any]
    rows: Optional[int]
    encode: Callable[[dict], Any] = json_outputs


def signature_name(body: dict, default: str = "serving_default") -> str:
    name = body.get("signature_name", default)
    if not isinstance(name, str):
        raise ApiError(400, f"'signature_name' must be a string, is {json_type(name)}")
    return name


def check_rows(what: str, rows: int, max_rows: Optional[int]) -> None:
    if max_rows is not None and rows > max_rows:
        raise ApiError(413, f"{rows} {what} in one request, over the limit of {max_rows} (--max-instances-per-request)")


def parse_predict(loaded: LoadedVersion, body: dict, max_rows: Optional[int] = None) -> Call:
    """Every wrong type in the body is a 400 naming the field; more than `max_rows` rows a 413."""
    if ("instances" in body) == ("inputs" in body):
        raise ApiError(400, "the request must have exactly one of 'instances' (row format) or 'inputs' (columnar)")
    name = signature_name(body)
    if name not in loaded.model.signatures:
        raise ApiError(400, f"serving signature name {name!r} not found (has {sorted(loaded.model.signatures)})")
    specs = loaded.model.signatures[name].structured_input_signature[1]
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise ApiError(400, f"'instances' must be a non-empty array, is {json_type(instances)}")
        check_rows("instances", len(instances), max_rows)
        instances = decode_b64(instances)  # {"b64": ...} is a value, not an object of inputs, from here on
        if len(specs) == 1 and not isinstance(instances[0], dict):
            columns = {next(iter(specs)): instances}
        else:
            if not all(isinstance(i, dict) for i in instances):
                raise ApiError(400, f"each instance must be an object {{input: value}}; {takes(name, specs)}")
            for i, instance in enumerate(instances):
                check_names(instance, "instances", name, specs)
                missing = [k for k in specs if k not in instance]
                if missing:
                    raise ApiError(400, f"instance {i} has no input {missing[0]!r}; {takes(name, specs)}")
            columns = {k: [i[k] for i in instances] for k in specs}
    else:
        inputs = decode_b64(body["inputs"])
        if not isinstance(inputs, dict) and len(specs) != 1:
            raise ApiError(400, f"'inputs' must be an object {{input: value}}; {takes(name, specs)}")
        columns = inputs if isinstance(inputs, dict) else {next(iter(specs)): inputs}
        check_names(columns, "inputs", name, specs)
        for key, value in columns.items():
            if isinstance(value, list):
                check_rows(f"rows of input {key!r}", len(value), max_rows)
    missing = sorted(set(specs) - set(columns))
    if missing:
        raise ApiError(400, f"missing inputs {missing} for signature {name!r}")
    columns = {k: columns[k] for k in specs}
    lengths = {len(v) if isinstance(v, list) else -1 for v in columns.values()}
    rows = lengths.pop() if len(lengths) == 1 and min(lengths) > 0 else None
    return Call(loaded, name, "inputs" in body, columns, rows)


def takes(name: str, specs: dict) -> str:
    """What a signature takes, e.g. "signature 'serving_default' takes 'examples'", for errors naming it."""
    names = [repr(k) for k in specs]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"signature {name!r} takes {listed}"


def check_names(given: dict, where: str, name: str, specs: dict) -> None:
    """A 400 for an input the signature does not take: "unknown input 'w' in instances; signature ... takes ..."."""
    unknown = [k for k in given if k not in specs]
    if unknown:
        raise ApiError(400, f"unknown input {str(unknown[0])[:100]!r} in {where}; {takes(name, specs)}")


def _invoke(loaded: LoadedVersion, signature_name: str, columns: dict[str, Any]) -> dict:
    """The signature call (on a worker thread): numpy outputs, or a 400 for inputs the signature rejects."""
    import tensorflow as tf

    signature = loaded.model.signatures[signature_name]
    specs = signature.structured_input_signature[1]
    tensors = {}
    for key, spec in specs.items():
        try:
            tensors[key] = tf.constant(columns[key], dtype=spec.dtype)
        except (ValueError, TypeError) as e:  # TF's message repeats the values (raw bytes, cut off): say the input's
            shape = [d if d is not None else -1 for d in spec.shape.as_list()] if spec.shape.rank is not None else "?"
            wanted = f"input {key!r} of signature {signature_name!r} takes {spec.dtype.name} of shape {shape}"
            raise ApiError(400, f"{wanted}; cannot convert its value: {type(e).__name__}: {_value_error(e)}")
    try:
        return {k: v.numpy() for k, v in signature(**tensors).items()}
    except (ValueError, TypeError, tf.errors.InvalidArgumentError) as e:
        raise ApiError(400, f"{type(e).__name__}: {_error_line(e)}")


def _value_error(e: Exception) -> str:
    """A conversion error without the value TF repeats in it ("Attempt to convert a value ({...}) with ...")."""
    text = _error_line(e)
    if text.startswith("Attempt to convert a value ("):
        return "a value" + text[text.rfind(") with ") + 1 :][:200] if ") with " in text else "a value it cannot take"
    return text[:200]


def _error_line(e: Exception) -> str:
    """The telling line of a TensorFlow error: not "Graph execution error:", the traceback or the node name."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    telling = [
        line for line in lines if not line.startswith(("Graph execution error", "Detected at node", "File ", "[["))
    ]
    return (telling or lines or [""])[-1][:500]


def run_alone(call: Call) -> Any:
    return call.encode(_invoke(call.loaded, call.signature_name, call.columns))


def _merge(parts: list) -> Any:
    """One input's rows from several requests, end to end."""
    import numpy as np

    if all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts)
    return [row for part in parts for row in part]


def run_merged(calls: Sequence[Call], metrics: Optional[Metrics] = None) -> list:
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
        merged = {k: _merge([c.columns[k] for c in calls]) for k in first.columns}
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
        answers.append(call.encode({k: v[start : start + call.rows] for k, v in outputs.items()}))
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


def classify_or_regress(loaded: LoadedVersion, body: dict, method: str, max_rows: Optional[int] = None) -> dict:
    """TF Serving's REST :classify / :regress, on the calling thread: {"signature_name"?, "context"?, "examples":
    [{feature: value}]} -> {"results": [[[label, score], ...], ...]} or {"results": [value, ...]}."""
    name = signature_name(body)
    check_method(loaded, name, method)
    examples, context = parse_examples(body, max_rows)
    result = run_examples(loaded, name, method, [serialize_example({**context, **e}) for e in examples])
    return examples_json(method, result, len(examples))


def parse_examples(body: dict, max_rows: Optional[int] = None) -> tuple[list[dict], dict]:
    """The examples and context of a REST :classify / :regress body, checked (400, or 413 for too many)."""
    if isinstance(body.get("examples"), list):  # counted before decoding them
        check_rows("examples", len(body["examples"]), max_rows)
    examples, context = decode_b64(body.get("examples")), decode_b64(body.get("context", {}))
    if not isinstance(examples, list) or not examples or not all(isinstance(e, dict) for e in examples):
        raise ApiError(400, "'examples' must be a non-empty list of objects")
    if not isinstance(context, dict):
        raise ApiError(400, f"'context' must be an object, is {json_type(context)}")
    return examples, context


def examples_json(method: str, result: Any, n: int) -> dict:
    """run_examples' result as TF Serving's REST answer."""
    if method == "regress":
        return {"results": json_tensor("", result)}
    classes, scores = result
    scores = json_tensor("", scores) if scores is not None else None
    width = len((classes or scores)[0])
    # as TF Serving: [label, score] per class; a missing label is "", a missing score 0
    return {
        "results": [
            [[classes[i][j] if classes else "", scores[i][j] if scores else 0.0] for j in range(width)]
            for i in range(n)
        ]
    }


def check_method(loaded: LoadedVersion, name: str, method: str) -> None:
    if loaded.methods.get(name) != METHODS[method]:
        raise ApiError(
            400,
            f"{method} needs a signature with method_name {METHODS[method]}; signature {name!r} has "
            f"{loaded.methods.get(name)!r} (signatures: {loaded.methods})",
        )


def run_examples(loaded: LoadedVersion, name: str, method: str, serialized: list[bytes]) -> Any:
    """Classify or regress serialized tf.Examples through a signature whose method_name is tensorflow/serving/classify
    (or regress) and whose one input takes them. Regress: the float32 values, one per example. Classify: (labels per
    example or None, float32 scores [examples, classes] or None)."""
    check_method(loaded, name, method)
    specs = loaded.model.signatures[name].structured_input_signature[1]
    if len(specs) != 1:
        raise ApiError(400, f"signature {name!r} must have one input of serialized tf.Examples, has {sorted(specs)}")
    outputs = _invoke(loaded, name, {next(iter(specs)): serialized})
    n = len(serialized)
    if method == "regress":
        values = outputs.get("outputs", next(iter(outputs.values())))
        if values.size != n:
            raise ApiError(400, f"signature {name!r} must output one value per example, output shape {values.shape}")
        return values.reshape(n)
    if "scores" not in outputs and "classes" not in outputs:
        raise ApiError(400, f"signature {name!r} outputs neither 'classes' nor 'scores' ({sorted(outputs)})")
    scores = outputs["scores"].reshape(n, -1) if "scores" in outputs else None
    classes = None
    if "classes" in outputs:
        rows = outputs["classes"].reshape(n, -1).tolist()
        classes = [[c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c) for c in row] for row in rows]
    return classes, scores
