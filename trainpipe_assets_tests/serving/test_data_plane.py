"""One data plane behind REST and gRPC: the same :predict sent both ways (gRPC through tensorflow-serving-api's stock
stub) to a real capturing `trainpipe serve` process lands in the capture twice with identical predictions; a gRPC
tensor whose shape claims more than its message carries is refused before it is decoded; serving/ has no import
cycle."""

import ast
import json
import shutil
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

import trainpipe_assets.serving
from trainpipe_assets.core.example_reader import read_records
from trainpipe_assets.serving.capture import read_day
from trainpipe_assets_tests.conftest import DAYS
from trainpipe_assets_tests.serving.helpers import Server, b64, wait_healthy


@pytest.fixture(scope="module")
def served(pipeline, tmp_path_factory):
    root = tmp_path_factory.mktemp("plane")
    shutil.copytree(pipeline["home"] / "serving" / "trips_model" / "1", root / "trips_model" / "1")
    capture = ("--capture-dir", str(root / "capture"))
    server = Server(root / "trips_model", *capture, "--max-body-bytes", "100000", grpc=True)
    wait_healthy(server)
    channel = grpc.insecure_channel(server.grpc)
    examples = read_records([str(pipeline["home"] / "artifacts/examples" / DAYS[0] / "Split-eval" / "*.gz")])[:3]
    yield {"server": server, "stub": prediction_service_pb2_grpc.PredictionServiceStub(channel), "examples": examples}
    channel.close()
    server.stop()


def predict_request(examples) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "trips_model"
    request.inputs["examples"].CopyFrom(tf.make_tensor_proto(examples, dtype=tf.string))
    return request


def abort(stub, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(request, timeout=60)
    return error.value


def test_a_tensor_claiming_more_than_it_carries_is_refused_before_it_is_decoded(served):
    stub, examples = served["stub"], served["examples"]
    huge = predict_request(examples[:1])
    huge.inputs["examples"].tensor_shape.dim[0].size = 1
    huge.inputs["examples"].tensor_shape.dim.add(size=10**12)  # one string sent, a trillion claimed
    error = abort(stub, huge)  # INVALID_ARGUMENT, as TF Serving answers a tensor it cannot parse
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    assert "'examples'" in error.details() and "rank 1" in error.details()  # its rank is checked first
    negative = predict_request(examples[:1])
    negative.inputs["examples"].tensor_shape.dim[0].size = -5
    error = abort(stub, negative)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "'examples'" in error.details(), error
    assert "negative" in error.details()
    unknown = predict_request(examples[:1])
    unknown.inputs["examples"].dtype = 999  # no such DataType
    error = abort(stub, unknown)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "'examples'" in error.details(), error
    assert stub.Predict(predict_request(examples[:1]), timeout=60).outputs["outputs"].dtype == tf.float32
    assert "Traceback" not in served["server"].output()


def test_the_same_predict_through_rest_and_grpc_is_captured_twice_alike(served):
    """Last: stops the server, so that its capture files are closed and can be read."""
    server, examples = served["server"], served["examples"]
    response, call = served["stub"].Predict.with_call(
        predict_request(examples), timeout=60, metadata=[("x-request-id", "same-grpc")]
    )
    grpc_outputs = tf.make_ndarray(response.outputs["outputs"])
    body = json.dumps({"instances": b64(examples)}).encode()
    rest = urllib.request.Request(f"{server.root}/v1/models/trips_model:predict", body, {"x-request-id": "same-rest"})
    with urllib.request.urlopen(rest, timeout=60) as answer:
        rest_outputs = np.array(json.loads(answer.read())["predictions"], dtype=np.float32)
    assert (rest_outputs == grpc_outputs).all()
    server.stop()
    capture = Path(server.proc.args[server.proc.args.index("--capture-dir") + 1])
    day = next((capture / "trips_model").glob("*.jsonl")).name.split(".")[0]
    entries, facts = read_day(capture, "trips_model", day)
    by_id = {e["request_id"]: e for e in entries}
    assert facts["bad_lines"] == [] and {"same-grpc", "same-rest"} <= set(by_id), facts
    captured_rest, captured_grpc = by_id["same-rest"], by_id["same-grpc"]
    for entry in (captured_rest, captured_grpc):
        assert (entry["model"], entry["version"], entry["signature"], entry["method"]) == (
            "trips_model",
            1,
            "serving_default",
            "predict",
        )
    tensor = json_format.ParseDict(captured_grpc["response"]["outputs"]["outputs"], tensor_pb2.TensorProto())
    from_grpc = tf.make_ndarray(tensor)
    from_rest = np.array(captured_rest["response"]["predictions"], dtype=np.float32)
    assert from_grpc.shape == from_rest.shape == (3, 1) and (from_grpc == from_rest).all()
    assert (from_grpc == grpc_outputs).all()
    assert len(captured_grpc["request"]["inputs"]["examples"]["string_val"]) == 3
    assert len(captured_rest["request"]["instances"]) == 3


def serving_imports() -> dict[str, set[str]]:
    """Every serving module -> the serving modules it imports, anywhere in it (inside functions too)."""
    folder = Path(trainpipe_assets.serving.__file__).parent
    package = "trainpipe_assets.serving"
    modules = {f"{package}.{p.stem}": p for p in folder.glob("*.py") if p.stem != "__init__"}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names}  # from serving import app
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def test_serving_has_no_import_cycle():
    graph = serving_imports()
    assert "trainpipe_assets.serving.dataplane" in graph and graph["trainpipe_assets.serving.main"]
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                cycle = path[path.index(imported) :] + [imported]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if imported not in state:
                visit(imported, path + [imported])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
