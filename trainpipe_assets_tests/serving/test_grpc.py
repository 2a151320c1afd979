"""TF Serving's gRPC API on a real `trainpipe serve` process (one config file: the pipeline's model, a TF1 classify /
regress model, a model with string outputs and a model with no version yet), called with tensorflow-serving-api's
stock stubs exactly as TF Serving's client examples call them, and checked against the REST answers of the same
process, which are in turn checked against TF Serving's own JSON (parsed back into its protos). The server captures
traffic; the last test stops it and reads what was captured."""

import json
import re
import shutil
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from trainpipe_assets.core.example_reader import read_records
from trainpipe_assets.serving.capture import read_day
from trainpipe_assets.serving.client import http_json
from trainpipe_assets_tests.conftest import DAYS
from trainpipe_assets_tests.serving.helpers import (
    Server,
    b64,
    model_config,
    sample,
    save_echo,
    save_scorer,
    wait_healthy,
)


@pytest.fixture(scope="module")
def served(pipeline, tmp_path_factory):
    root = tmp_path_factory.mktemp("grpc")
    shutil.copytree(pipeline["home"] / "serving" / "trips_model" / "1", root / "trips_model" / "1")
    save_scorer(root / "scorer" / "1")
    save_echo(root / "echo" / "1")
    (root / "empty").mkdir()
    config = root / "models.config"
    stable = 'version_labels { key: "stable" value: 1 }'
    models = {"trips_model": stable, "scorer": "", "echo": "", "empty": ""}
    config.write_text(model_config({name: (root / name, extra) for name, extra in models.items()}))
    limits = ("--max-body-bytes", "300000", "--max-instances-per-request", "20")
    capture = ("--capture-dir", str(root / "capture"))
    server = Server(None, "--model-config-file", str(config), *limits, *capture, grpc=True)
    wait_healthy(server)
    channel = grpc.insecure_channel(server.grpc)
    examples = read_records([str(pipeline["home"] / "artifacts/examples" / DAYS[0] / "Split-eval" / "*.gz")])[:5]
    yield {"server": server, "channel": channel, "examples": examples, "capture": root / "capture"}
    channel.close()
    server.stop()


def predict_request(examples, name="trips_model") -> predict_pb2.PredictRequest:
    """As TF Serving's client examples build it."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = "serving_default"
    request.inputs["examples"].CopyFrom(tf.make_tensor_proto(examples, dtype=tf.string))
    return request


def test_predict_with_the_stock_client_answers_as_rest(served):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(served["channel"])
    request = predict_request(served["examples"])
    response, call = stub.Predict.with_call(request, timeout=60, metadata=[("x-request-id", "grpc-1")])
    assert ("x-request-id", "grpc-1") in [(m.key, m.value) for m in call.trailing_metadata()]
    assert (response.model_spec.name, response.model_spec.version.value) == ("trips_model", 1)
    assert response.model_spec.signature_name == "serving_default"
    outputs = tf.make_ndarray(response.outputs["outputs"])
    assert outputs.shape == (5, 1) and outputs.dtype == np.float32

    root = served["server"].root
    request_json = json.dumps({"instances": b64(served["examples"])}).encode()
    rest = urllib.request.Request(f"{root}/v1/models/trips_model:predict", request_json, {"x-request-id": "rest-1"})
    with urllib.request.urlopen(rest, timeout=60) as answer:
        assert answer.headers["x-request-id"] == "rest-1"
        predictions = json.loads(answer.read())["predictions"]
    assert (np.array(predictions, dtype=np.float32) == outputs).all()  # the shortest float32 text reads back exactly

    request.model_spec.version_label = "stable"
    response, call = stub.Predict.with_call(request, timeout=60)
    generated = dict((m.key, m.value) for m in call.trailing_metadata())["x-request-id"]
    assert len(generated) == 32 and (tf.make_ndarray(response.outputs["outputs"]) == outputs).all()
    request.output_filter.append("nothing")
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(request, timeout=60)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "nothing" in error.value.details()


def test_classify_and_regress_answer_as_rest(served):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(served["channel"])
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "scorer"
    for x in (0.0, 1.0):
        request.input.example_list.examples.add().features.feature["x"].float_list.value.append(x)
    result = stub.Classify(request, timeout=60).result
    grpc_classes = [[(c.label, c.score) for c in row.classes] for row in result.classifications]
    assert [[label for label, _ in row] for row in grpc_classes] == [["no", "yes"]] * 2
    assert grpc_classes[1][1][1] == pytest.approx(0.8807971)
    code, rest = http_json(f"{served['server'].root}/v1/models/scorer:classify", {"examples": [{"x": 0.0}, {"x": 1.0}]})
    assert code == 200 and list(rest) == ["results"]
    assert [[(label, np.float32(score)) for label, score in row] for row in rest["results"]] == grpc_classes

    request = regression_pb2.RegressionRequest()
    request.model_spec.name, request.model_spec.signature_name = "scorer", "regression"
    with_context = request.input.example_list_with_context
    with_context.context.features.feature["x"].float_list.value.append(3.0)
    with_context.examples.add()
    with_context.examples.add().features.feature["x"].float_list.value.append(0.5)  # the example's own x wins
    response = stub.Regress(request, timeout=60)
    assert [r.value for r in response.result.regressions] == [6.0, 1.0]
    assert (response.model_spec.version.value, response.model_spec.signature_name) == (1, "regression")
    body = {"signature_name": "regression", "context": {"x": 3.0}, "examples": [{}, {"x": 0.5}]}
    assert http_json(f"{served['server'].root}/v1/models/scorer:regress", body) == (200, {"results": [6.0, 1.0]})


def test_metadata_and_status_are_tf_servings(served):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(served["channel"])
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "trips_model"
    request.metadata_field.append("signature_def")
    response = stub.GetModelMetadata(request, timeout=60)
    packed = response.metadata["signature_def"]
    assert packed.type_url == "type.googleapis.com/tensorflow.serving.SignatureDefMap"
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert packed.Unpack(signatures)
    serving = signatures.signature_def["serving_default"]
    assert serving.inputs["examples"].name == "serving_default_examples:0"  # saved_model.pb's own tensor names
    assert serving.method_name == "tensorflow/serving/predict" and "__saved_model_init_op" in signatures.signature_def

    # REST: as TF Serving writes it, the SignatureDefMap unpacked (no "@type"), proto field names, enum names
    code, rest = http_json(f"{served['server'].root}/v1/models/trips_model/metadata")
    assert code == 200 and set(rest) == {"model_spec", "metadata"} and set(rest["metadata"]) == {"signature_def"}
    assert rest["model_spec"] == {"name": "trips_model", "version": "1", "signature_name": ""}
    assert json_format.ParseDict(rest["model_spec"], model_pb2.ModelSpec()) == response.model_spec
    assert json_format.ParseDict(rest["metadata"]["signature_def"], get_model_metadata_pb2.SignatureDefMap()) == (
        signatures
    )
    examples = rest["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]["examples"]
    dims = [{"size": "-1", "name": ""}]
    assert examples == {
        "name": "serving_default_examples:0",
        "dtype": "DT_STRING",
        "tensor_shape": {"dim": dims, "unknown_rank": False},
    }
    outputs = rest["metadata"]["signature_def"]["signature_def"]["serving_default"]["outputs"]
    assert {o["dtype"] for o in outputs.values()} == {"DT_FLOAT"}

    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "trips_model"
    status = model_service_pb2_grpc.ModelServiceStub(served["channel"]).GetModelStatus(status_request, timeout=60)
    code, rest = http_json(f"{served['server'].root}/v1/models/trips_model")
    ok = {"error_code": "OK", "error_message": ""}
    assert code == 200 and rest == {"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": ok}]}
    assert json_format.ParseDict(rest, get_model_status_pb2.GetModelStatusResponse()) == status


def test_errors_are_tf_servings_grpc_codes(served):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(served["channel"])
    examples, codes = served["examples"], grpc.StatusCode

    def predict(mutate):
        request = predict_request(examples[:1])
        mutate(request)
        return stub.Predict, request

    def metadata(field):
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=[field])
        request.model_spec.name = "trips_model"
        return stub.GetModelMetadata, request

    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name = "trips_model"  # a predict signature only
    classify.input.example_list.examples.add()
    status = get_model_status_pb2.GetModelStatusRequest()
    status.model_spec.name = "nope"
    cases = [
        (predict(lambda r: setattr(r.model_spec, "name", "nope")), codes.NOT_FOUND, "serving ['echo', 'empty'"),
        (predict(lambda r: r.model_spec.version.__setattr__("value", 9)), codes.NOT_FOUND, "version 9"),
        (predict(lambda r: setattr(r.model_spec, "version_label", "canary")), codes.NOT_FOUND, "'canary'"),
        (predict(lambda r: setattr(r.model_spec, "name", "")), codes.INVALID_ARGUMENT, "model_spec.name"),
        (predict(lambda r: setattr(r.model_spec, "signature_name", "x")), codes.INVALID_ARGUMENT, '"x" not found'),
        (predict(lambda r: r.inputs["examples"].CopyFrom(tf.make_tensor_proto([1.0]))), codes.INVALID_ARGUMENT, ""),
        (predict(lambda r: r.inputs["other"].CopyFrom(tf.make_tensor_proto([1.0]))), codes.INVALID_ARGUMENT, "extra"),
        (predict(lambda r: setattr(r.model_spec, "name", "empty")), codes.UNAVAILABLE, "no version of 'empty'"),
        (
            predict(lambda r: r.inputs["examples"].CopyFrom(tf.make_tensor_proto(examples[:1] * 21))),
            codes.RESOURCE_EXHAUSTED,
            "limit of 20",
        ),
        (
            predict(lambda r: r.inputs["examples"].CopyFrom(tf.make_tensor_proto([b"x" * 400_000]))),
            codes.RESOURCE_EXHAUSTED,
            "larger than max",
        ),
        ((stub.Classify, classify), codes.INVALID_ARGUMENT, "method_name tensorflow/serving/classify"),
        (metadata("graph"), codes.INVALID_ARGUMENT, "graph"),
        ((model_service_pb2_grpc.ModelServiceStub(served["channel"]).GetModelStatus, status), codes.NOT_FOUND, "nope"),
    ]
    for (method, request), code, message in cases:
        with pytest.raises(grpc.RpcError) as error:
            method(request, timeout=60)
        assert error.value.code() == code and message in error.value.details(), (request, error.value)
    assert stub.Predict(predict_request(examples[:1]), timeout=60).outputs["outputs"].dtype == tf.float32
    text = served["server"].metrics()
    assert sample(text, "trainpipe_requests_total", route="Predict", code="NOT_FOUND") == 3
    assert sample(text, "trainpipe_requests_total", route="Predict", code="RESOURCE_EXHAUSTED") == 1  # gRPC refuses
    assert "Traceback" not in served["server"].output()  # the oversized one before it reaches the service


def test_rest_outputs_are_written_as_tf_serving_writes_them(served):
    url = f"{served['server'].root}/v1/models/echo:predict"
    body = json.dumps({"instances": [{"text": "héllo", "x": [0.1, 0.2]}]}).encode()
    with urllib.request.urlopen(urllib.request.Request(url, body, method="POST"), timeout=60) as answer:
        text = answer.read().decode()
    # a string tensor is base64 only when its name ends in _bytes; a float32 in its shortest form (0.1f + 0.2f)
    assert json.loads(text) == {"predictions": [{"label": "héllo", "label_bytes": {"b64": "aMOpbGxv"}, "total": 0.3}]}
    assert re.search(r'"total":0\.3[,}]', text), text  # not 0.30000001192092896, the float32 read as a double
    code, columnar = http_json(url, {"inputs": {"text": ["a", "b"], "x": [[1.0, 2.0], [0.5, 0.25]]}})
    assert code == 200 and columnar == {
        "outputs": {"label": ["a", "b"], "label_bytes": b64([b"a", b"b"]), "total": [3.0, 0.75]}
    }
    stub = prediction_service_pb2_grpc.PredictionServiceStub(served["channel"])
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "echo"
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(["héllo".encode()]))
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([[0.1, 0.2]], dtype=tf.float32))
    outputs = stub.Predict(request, timeout=60).outputs
    assert tf.make_ndarray(outputs["label"]).tolist() == ["héllo".encode()]
    assert tf.make_ndarray(outputs["total"]).tolist() == [np.float32(0.3)]


def test_requests_are_captured_with_their_ids(served):
    """Last: stops the server, so that its capture files are closed and can be read."""
    server = served["server"]
    assert sample(server.metrics(), "trainpipe_capture_dropped_total") == 0
    server.stop()
    day = next((served["capture"] / "trips_model").glob("*.jsonl")).name.split(".")[0]
    entries, facts = read_day(served["capture"], "trips_model", day)
    by_id = {e["request_id"]: e for e in entries}
    assert facts["bad_lines"] == [] and {"grpc-1", "rest-1"} <= set(by_id), facts
    assert by_id["rest-1"]["method"] == "predict" and by_id["rest-1"]["request"]["instances"][0]["b64"]
    assert len(by_id["rest-1"]["response"]["predictions"]) == 5
    grpc_entry = by_id["grpc-1"]
    assert (grpc_entry["version"], grpc_entry["signature"]) == (1, "serving_default")
    assert len(grpc_entry["request"]["inputs"]["examples"]["string_val"]) == 5 and grpc_entry["response"]["outputs"]
    scorer = read_day(served["capture"], "scorer", day)[0]
    assert sorted(e["method"] for e in scorer) == ["classify", "classify", "regress", "regress"]
