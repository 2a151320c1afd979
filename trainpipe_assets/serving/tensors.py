"""TF Serving's gRPC messages <-> the data plane's Calls: a PredictRequest's TensorProtos checked and decoded into
numpy (tf.make_ndarray on the whole tensor, never a Python loop over elements), a Call's numpy outputs encoded into a
PredictResponse (tf.make_tensor_proto, on the worker thread), and a Classify/Regress request's Input as serialized
tf.Examples.

A TensorProto is checked before it is decoded, as its size is the client's to claim: tf.make_ndarray (and TensorFlow
itself, once the array is fed) fills a tensor whose values are fewer than its shape says by repeating the last one, so
a message of a few bytes could ask for gigabytes. In order, each a 400 / INVALID_ARGUMENT naming the input (TF
Serving answers a tensor it cannot parse with INVALID_ARGUMENT): a dtype that is not TensorFlow's, or not the
signature's; a negative dimension; a rank or a known dimension other than the signature's; more elements than a
message of --max-body-bytes could carry (each element takes its dtype's size on the wire, a string at least 2 bytes);
more memory decoded than --max-decoded-bytes (declared shape x element size, counted over the request's inputs; a
string takes its length, the last one's for the repeated ones, plus codec.STRING_OVERHEAD). More rows than
--max-instances-per-request stays the 413 / RESOURCE_EXHAUSTED of predict.check_rows, as for REST. Only then is an
array made, on a thread when the request is large (see grpc_service)."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from trainpipe_assets.serving.codec import STRING_OVERHEAD, ApiError, DecodedBytes, check_elements, check_shape
from trainpipe_assets.serving.messages import fill_model_spec
from trainpipe_assets.serving.model_store import LoadedVersion
from trainpipe_assets.serving.options import Limits
from trainpipe_assets.serving.predict import Call, check_rows

STRING_WIRE_BYTES = 2  # the least a string element takes in a message: its tag and length
_KNOWN = frozenset(v for v in types_pb2.DataType.values() if v != types_pb2.DT_INVALID)
_SIZES: dict[int, tuple[int, int]] = {}  # dtype enum -> (least bytes an element takes on the wire, bytes decoded)


def to_ndarray(proto, dtype: tf.DType, dims: list[int], elements: int) -> np.ndarray:
    """The TensorProto as numpy, whole: its strings or its tensor_content as they are when they hold exactly the
    elements of its shape (what tf.make_tensor_proto sends), else tf.make_ndarray (repeated fields, padding)."""
    if dtype == tf.string:
        values = proto.string_val
        if len(values) == elements and elements:
            return np.array(values, dtype=object).reshape(dims)
    elif proto.tensor_content and dtype.is_numpy_compatible:
        numpy_dtype = dtype.as_numpy_dtype
        if len(proto.tensor_content) == elements * np.dtype(numpy_dtype).itemsize:
            return np.frombuffer(proto.tensor_content, dtype=numpy_dtype).reshape(dims)
    return tf.make_ndarray(proto)


def _sizes(key: str, dtype: int) -> tuple[int, int]:
    sizes = _SIZES.get(dtype)
    if sizes is None:
        if dtype == types_pb2.DT_STRING:
            sizes = (STRING_WIRE_BYTES, STRING_OVERHEAD)
        else:
            try:
                size = max(tf.dtypes.as_dtype(dtype).size, 1)
            except TypeError:  # a dtype numpy cannot hold
                raise ApiError(400, f"input {key!r} has an unsupported dtype {dtype}") from None
            sizes = (size, size)
        _SIZES[dtype] = sizes
    return sizes


def check_tensor(key: str, proto, spec, limits: Limits, decoded: DecodedBytes) -> tuple[list[int], int]:
    """(dims, elements) of an input's TensorProto, checked against its signature `spec` (a TensorSpec) and `limits`
    before anything is allocated (see above); `decoded` counts the request's decoded bytes."""
    if proto.dtype not in _KNOWN:
        raise ApiError(400, f"input {key!r} has an unknown dtype {proto.dtype}")
    if proto.dtype != spec.dtype.as_datatype_enum:
        given = tf.dtypes.as_dtype(proto.dtype).name
        raise ApiError(400, f"input {key!r} expects {spec.dtype.name} but {given} is provided")
    dims = [d.size for d in proto.tensor_shape.dim]
    negative = [d for d in dims if d < 0]
    if negative:
        raise ApiError(400, f"input {key!r} has a negative dimension {negative[0]} in its shape {dims}")
    check_shape(key, dims, None if spec.shape.rank is None else spec.shape.as_list())
    if dims:
        check_rows(f"rows of input {key!r}", dims[0], limits.max_instances)
    elements = math.prod(dims)  # a Python int: no overflow however large the dims
    wire, item = _sizes(key, proto.dtype)
    check_elements(key, dims, elements, wire, limits.max_body_bytes)
    size = elements * item
    if proto.dtype == types_pb2.DT_STRING and elements:
        carried = len(proto.string_val)  # their bytes are within the message's; the rest repeat the last one
        size += proto.ByteSize() + (max(elements - carried, 0) * len(proto.string_val[-1]) if carried else 0)
    decoded.add(key, dims, size)
    return dims, elements


def declared_elements(request) -> int:
    """The elements a PredictRequest's shapes claim (negative dimensions count as 0): cheap, for deciding where to
    decode it."""
    return sum(math.prod(max(d.size, 0) for d in t.tensor_shape.dim) for t in request.inputs.values())


def decode_predict(loaded: LoadedVersion, request, limits: Limits) -> Call:
    """A PredictRequest checked as TF Serving checks it (the signature's inputs exactly, each of its dtype and shape)
    and within `limits` into a Call whose answer is a PredictResponse."""
    name = request.model_spec.signature_name or "serving_default"
    signatures = loaded.model.signatures
    if name not in signatures:
        raise ApiError(400, f'Serving signature name: "{name}" not found in signature def')
    signature = signatures[name]
    specs = signature.structured_input_signature[1]
    inputs = request.inputs
    if len(inputs) != len(specs) or any(key not in inputs for key in specs):
        sent, expected = set(inputs), set(specs)
        raise ApiError(
            400,
            f"input size does not match signature: {len(sent)}!={len(expected)} len({sorted(sent)}) != "
            f"len({sorted(expected)}). Sent extra: {sorted(sent - expected)}. "
            f"Missing but required: {sorted(expected - sent)}.",
        )
    decoded = DecodedBytes(limits.decoded_bytes)
    sizes = {key: check_tensor(key, inputs[key], spec, limits, decoded) for key, spec in specs.items()}
    columns, rows = {}, set()
    for key, spec in specs.items():
        dims, elements = sizes[key]
        try:
            columns[key] = to_ndarray(inputs[key], spec.dtype, dims, elements)
        except (TypeError, ValueError) as e:
            raise ApiError(400, f"input {key!r} is not a valid tensor: {e}") from None
        rows.add(dims[0] if dims else -1)
    count = rows.pop() if len(rows) == 1 else -1
    wanted = list(request.output_filter)
    if wanted:
        outputs = set(signature.structured_outputs)
        unknown = sorted(set(wanted) - outputs)
        if unknown:
            raise ApiError(
                400, f"output tensor alias not found in signature: {unknown[0]} (outputs: {sorted(outputs)})"
            )
    encode = _encoder(request.model_spec.name, loaded.version, name, wanted)
    return Call(loaded, name, True, columns, count if count > 0 else None, encode)


def _encoder(model: str, version: int, signature: str, wanted: list[str]):
    def encode(outputs: dict):
        from tensorflow_serving.apis import predict_pb2

        response = predict_pb2.PredictResponse()
        fill_model_spec(response.model_spec, model, version, signature)
        for key, value in outputs.items():
            if not wanted or key in wanted:
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    return encode


def serialized_examples(request, max_rows: Optional[int]) -> list[bytes]:
    """The Input of a Classify/Regress request as serialized tf.Examples; with a context, each example is the context
    merged with the example (the example's features win), as TF Serving merges them."""
    kind = request.input.WhichOneof("kind")
    if kind == "example_list_with_context":
        examples = request.input.example_list_with_context.examples
        context = request.input.example_list_with_context.context.SerializeToString()
    else:
        examples, context = request.input.example_list.examples if kind else [], b""
    if not examples:
        raise ApiError(400, "Input is empty")
    check_rows("examples", len(examples), max_rows)
    return [context + e.SerializeToString() for e in examples]


def examples_response(request, loaded: LoadedVersion, method: str, result, n: int):
    """run_examples' result as a ClassificationResponse or RegressionResponse."""
    from tensorflow_serving.apis import classification_pb2, regression_pb2

    name = request.model_spec.signature_name or "serving_default"
    if method == "regress":
        response = regression_pb2.RegressionResponse()
        response.result.regressions.extend(regression_pb2.Regression(value=float(v)) for v in result)
    else:
        response = classification_pb2.ClassificationResponse()
        classes, scores = result
        for i in range(n):
            row = response.result.classifications.add()
            for j in range(len(classes[i]) if classes else scores.shape[1]):
                entry = row.classes.add()
                if classes:
                    entry.label = classes[i][j]
                if scores is not None:
                    entry.score = float(scores[i][j])
    fill_model_spec(response.model_spec, request.model_spec.name, loaded.version, name)
    return response
