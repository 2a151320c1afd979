"""`trainpipe serve` as a real server process, over real HTTP, on the pipeline's pushed model."""
import json
import shutil
import time
import urllib.request

import pytest

from trainpipe_assets.feature_stats import read_records
from trainpipe_assets_tests.conftest import DAYS
from trainpipe_assets_tests.serving.helpers import Server, b64, call, wait_healthy


@pytest.fixture(scope="module")
def server(pipeline, tmp_path_factory):
    base = tmp_path_factory.mktemp("serving") / "trips_model"
    shutil.copytree(pipeline["home"] / "serving" / "trips_model" / "1", base / "1")
    (base.parent / "labels.json").write_text(json.dumps({"stable": 1}))
    server = Server(base, "--poll-seconds", "0.5", "--labels-file", str(base.parent / "labels.json"), "--max-body-bytes", "200000")
    wait_healthy(server)
    yield {"root": server.root, "base": base, "examples": read_records([str(pipeline["home"] / "artifacts/examples" / DAYS[0] / "Split-eval" / "*.gz")])[:5]}
    server.stop()


def test_status_and_metadata(server):
    code, status = call(f"{server['root']}/v1/models/trips_model")
    assert code == 200 and status["model_version_status"][0] == {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    code, meta = call(f"{server['root']}/v1/models/trips_model/versions/1/metadata")
    signature = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert code == 200 and signature["inputs"]["examples"]["dtype"] == "DT_STRING" and "outputs" in signature["outputs"]
    assert signature["method_name"] == "tensorflow/serving/predict"  # read from saved_model.pb


def test_predict_row_and_columnar_with_b64_examples(server):
    code, body = call(f"{server['root']}/v1/models/trips_model:predict", {"instances": b64(server["examples"])})
    assert code == 200 and len(body["predictions"]) == 5 and all(0 <= p[0] <= 1 for p in body["predictions"])
    code, columnar = call(f"{server['root']}/v1/models/trips_model/labels/stable:predict", {"inputs": {"examples": b64(server["examples"])}})
    assert code == 200 and columnar["outputs"] == body["predictions"]


def test_error_codes(server):
    root = server["root"]
    assert call(f"{root}/v1/models/trips_model:predict", raw=b"{not json")[0] == 400
    both = call(f"{root}/v1/models/trips_model:predict", {"instances": [], "inputs": []})
    assert both[0] == 400 and "exactly one" in both[1]["error"]
    assert call(f"{root}/v1/models/trips_model:predict", {"instances": [[1.0, 2.0]]})[0] == 400  # wrong type/shape
    assert call(f"{root}/v1/models/other:predict", {"instances": []})[0] == 404
    assert call(f"{root}/v1/models/trips_model/versions/9")[0] == 404
    assert call(f"{root}/v1/models/trips_model/labels/canary")[0] == 404
    assert call(f"{root}/v1/models/trips_model:predict", raw=b" " * 300_000)[0] == 413
    bad_b64 = call(f"{root}/v1/models/trips_model:predict", {"instances": [{"b64": "not base64!"}]})
    assert bad_b64[0] == 400 and "b64" in bad_b64[1]["error"]
    assert chunked_post(f"{root}/v1/models/trips_model:predict", [b" " * 100_000] * 3)[0] == 413  # no content-length
    for method in ("classify", "regress"):  # the model has only a predict signature
        code, body = call(f"{root}/v1/models/trips_model:{method}", {"examples": [{"trip_miles": 1.5}]})
        assert code == 400 and f"method_name tensorflow/serving/{method}" in body["error"]


def chunked_post(url, chunks):
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    connection.request("POST", parts.path, body=iter(chunks), encode_chunked=True)
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def test_a_new_version_is_picked_up_and_the_pin_is_honoured(server):
    shutil.copytree(server["base"] / "1", server["base"] / ".tmp-2")
    (server["base"] / ".tmp-2").rename(server["base"] / "2")
    for _ in range(360):  # up to 90 s to load and warm up version 2 on a busy machine
        if call(f"{server['root']}/healthz")[1]["serving_version"] == 2:
            break
        time.sleep(0.25)
    assert call(f"{server['root']}/v1/models/trips_model")[1]["model_version_status"][0]["version"] == "2"
    (server["base"] / "PINNED").write_text("1\n")
    assert call(f"{server['root']}/healthz")[1]["serving_version"] == 1
    metrics = urllib.request.urlopen(f"{server['root']}/metrics").read().decode()
    assert 'trainpipe_requests_total{route="predict",code="200"}' in metrics and "trainpipe_serving_version" in metrics


def test_a_version_that_fails_to_load_is_reported_and_the_old_one_keeps_serving(server):
    root, base = server["root"], server["base"]
    before = call(f"{root}/healthz")[1]["serving_version"]
    (base / ".tmp-7").mkdir()
    (base / ".tmp-7" / "saved_model.pb").write_bytes(b"not a SavedModel")
    (base / ".tmp-7").rename(base / "7")
    for _ in range(360):
        code, health = call(f"{root}/healthz")
        if "7" in health.get("errors", {}):
            break
        time.sleep(0.25)
    assert code == 200 and "7" in health["errors"] and health["serving_version"] == before
    assert call(f"{root}/v1/models/trips_model:predict", {"instances": b64(server["examples"][:1])})[0] == 200
    assert call(f"{root}/v1/models/trips_model/versions/7")[0] == 404
