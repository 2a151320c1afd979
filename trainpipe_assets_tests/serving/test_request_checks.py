"""Real `trainpipe serve` processes: requests read the pin and the labels from memory (the watch thread rereads the
files), a malformed or mistyped request body is a 400 naming what is wrong (never a 500 with a traceback), and outputs
that are not finite are written NaN / Infinity / -Infinity, as TF Serving writes them."""

import json
import math
import shutil
import urllib.request

import pytest

from trainpipe_assets.core.example_reader import read_records
from trainpipe_assets.serving.client import http_json
from trainpipe_assets_tests.conftest import DAYS
from trainpipe_assets_tests.serving.helpers import Server, b64, post_raw, wait_healthy


@pytest.fixture(scope="module")
def server(pipeline, tmp_path_factory):
    """Version 1 and a labels file, with a poll so long that the files are read only at the start."""
    base = tmp_path_factory.mktemp("checks") / "trips_model"
    shutil.copytree(pipeline["home"] / "serving" / "trips_model" / "1", base / "1")
    labels = base.parent / "labels.json"
    labels.write_text(json.dumps({"stable": 1}))
    server = Server(base, "--poll-seconds", "3600", "--labels-file", str(labels))
    wait_healthy(server)
    examples = read_records([str(pipeline["home"] / "artifacts/examples" / DAYS[0] / "Split-eval" / "*.gz")])[:2]
    yield {"server": server, "base": base, "labels": labels, "examples": b64(examples)}
    server.stop()


def test_requests_do_not_read_the_pin_or_labels_files(server):
    root, body = server["server"].root, {"instances": server["examples"]}
    (server["base"] / "PINNED").write_text("abc\n")
    server["labels"].write_text("{not json")
    try:
        code, state = http_json(f"{root}/healthz")
        assert code == 200 and state["serving_version"] == 1 and "pin_error" not in state, state
        assert http_json(f"{root}/v1/models/trips_model:predict", body)[0] == 200
        assert http_json(f"{root}/v1/models/trips_model/labels/stable:predict", body)[0] == 200
        assert urllib.request.urlopen(f"{root}/metrics", timeout=30).status == 200
    finally:
        (server["base"] / "PINNED").unlink()
        server["labels"].write_text(json.dumps({"stable": 1}))


def test_bad_bodies_are_400s_naming_the_field(server):
    root, examples = server["server"].root, server["examples"]
    predict, classify = f"{root}/v1/models/trips_model:predict", f"{root}/v1/models/trips_model:classify"
    for depth in (150, 5000):
        code, answer = post_raw(predict, ('{"instances": ' + "[" * depth + "]" * depth + "}").encode())
        assert code == 400 and answer["error"] == "JSON nested deeper than 100 levels", answer
    cases = [
        (predict, {"signature_name": [], "instances": examples}, "'signature_name' must be a string, is an array"),
        (predict, {"signature_name": {"a": 1}, "inputs": examples}, "'signature_name' must be a string, is an object"),
        (classify, {"signature_name": 7, "examples": [{"x": 1.0}]}, "'signature_name' must be a string, is a number"),
        (predict, {"instances": "abc"}, "'instances' must be a non-empty array, is a string"),
        (predict, {"instances": {"examples": examples}}, "'instances' must be a non-empty array, is an object"),
        (predict, {"instances": [{"examples": [[]]}]}, None),
        (predict, {"inputs": {"examples": [None]}}, None),
        (predict, {"inputs": {"examples": [1, "a"]}}, None),
        (predict, {"inputs": {"examples": 2**70}}, None),
    ]
    for url, body, message in cases:
        code, answer = http_json(url, body)
        assert code == 400 and (message is None or message in answer["error"]), (body, answer)
    assert http_json(predict, {"instances": examples})[0] == 200
    assert "Traceback" not in server["server"].output()


@pytest.fixture(scope="module")
def not_finite(tmp_path_factory):
    """A tiny SavedModel whose serving_default returns x / 0: Infinity, -Infinity or NaN."""
    import tensorflow as tf

    class Divide(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x):
            return {"y": x / tf.zeros_like(x)}

    base = tmp_path_factory.mktemp("not_finite") / "divide"
    module = Divide()
    tf.saved_model.save(module, str(base / "1"), signatures={"serving_default": module.serve})
    server = Server(base, name="divide")
    wait_healthy(server)
    yield server
    server.stop()


def test_outputs_that_are_not_finite_are_written_as_tf_serving_writes_them(not_finite):
    url = f"{not_finite.root}/v1/models/divide:predict"
    request = urllib.request.Request(url, json.dumps({"instances": [1.0, -1.0, 0.0]}).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        assert response.read().decode() == '{"predictions":[Infinity,-Infinity,NaN]}'
    code, answer = http_json(url, {"inputs": [2.0, 0.0]})  # the client reads them back (Python's json does)
    assert code == 200 and answer["outputs"][0] == math.inf and math.isnan(answer["outputs"][1])
    assert "Traceback" not in not_finite.output()
