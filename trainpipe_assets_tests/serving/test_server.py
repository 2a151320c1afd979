"""`trainpipe serve` as a real server process, over real HTTP, on the pipeline's pushed model."""

import json
import shutil
import time
import urllib.request

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from trainpipe_assets.core.example_reader import read_records
from trainpipe_assets.serving.client import http_json
from trainpipe_assets_tests.conftest import DAYS
from trainpipe_assets_tests.serving.helpers import Server, b64, post_raw, sample, wait_healthy


@pytest.fixture(scope="module")
def server(pipeline, tmp_path_factory):
    base = tmp_path_factory.mktemp("serving") / "trips_model"
    shutil.copytree(pipeline["home"] / "serving" / "trips_model" / "1", base / "1")
    (base.parent / "labels.json").write_text(json.dumps({"stable": 1}))
    server = Server(
        base, "--poll-seconds", "0.5", "--labels-file", str(base.parent / "labels.json"), "--max-body-bytes", "200000"
    )
    wait_healthy(server)
    examples = read_records([str(pipeline["home"] / "artifacts/examples" / DAYS[0] / "Split-eval" / "*.gz")])[:5]
    yield {"root": server.root, "base": base, "examples": examples}
    server.stop()


def test_status_and_metadata(server):
    code, status = http_json(f"{server['root']}/v1/models/trips_model")
    ok = {"error_code": "OK", "error_message": ""}
    assert code == 200 and status["model_version_status"][0] == {"version": "1", "state": "AVAILABLE", "status": ok}
    code, meta = http_json(f"{server['root']}/v1/models/trips_model/versions/1/metadata")
    signature = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert code == 200 and signature["inputs"]["examples"]["dtype"] == "DT_STRING" and "outputs" in signature["outputs"]
    assert signature["method_name"] == "tensorflow/serving/predict"  # read from saved_model.pb


def test_predict_row_and_columnar_with_b64_examples(server):
    code, body = http_json(f"{server['root']}/v1/models/trips_model:predict", {"instances": b64(server["examples"])})
    assert code == 200 and len(body["predictions"]) == 5 and all(0 <= p[0] <= 1 for p in body["predictions"])
    code, columnar = http_json(
        f"{server['root']}/v1/models/trips_model/labels/stable:predict",
        {"inputs": {"examples": b64(server["examples"])}},
    )
    assert code == 200 and columnar["outputs"] == body["predictions"]


def test_without_capture_a_clients_request_id_is_echoed_and_none_is_made_up(server):
    body = json.dumps({"instances": b64(server["examples"][:1])}).encode()
    url = f"{server['root']}/v1/models/trips_model:predict"
    with urllib.request.urlopen(urllib.request.Request(url, body, {"x-request-id": "abc-1"}), timeout=60) as answer:
        assert answer.status == 200 and answer.headers["x-request-id"] == "abc-1"
    with urllib.request.urlopen(urllib.request.Request(url, body), timeout=60) as answer:
        assert answer.status == 200 and "x-request-id" not in answer.headers


def test_error_codes(server):
    root = server["root"]
    assert post_raw(f"{root}/v1/models/trips_model:predict", b"{not json")[0] == 400
    both = http_json(f"{root}/v1/models/trips_model:predict", {"instances": [], "inputs": []})
    assert both[0] == 400 and "exactly one" in both[1]["error"]
    assert http_json(f"{root}/v1/models/trips_model:predict", {"instances": [[1.0, 2.0]]})[0] == 400  # wrong type/shape
    assert http_json(f"{root}/v1/models/other:predict", {"instances": []})[0] == 404
    assert http_json(f"{root}/v1/models/trips_model/versions/9")[0] == 404
    assert http_json(f"{root}/v1/models/trips_model/labels/canary")[0] == 404
    assert post_raw(f"{root}/v1/models/trips_model:predict", b" " * 300_000)[0] == 413
    bad_b64 = http_json(f"{root}/v1/models/trips_model:predict", {"instances": [{"b64": "not base64!"}]})
    assert bad_b64[0] == 400 and "b64" in bad_b64[1]["error"]
    assert post_raw(f"{root}/v1/models/trips_model:predict", [b" " * 100_000] * 3)[0] == 413  # no content-length
    for method in ("classify", "regress"):  # the model has only a predict signature
        code, body = http_json(f"{root}/v1/models/trips_model:{method}", {"examples": [{"trip_miles": 1.5}]})
        assert code == 400 and f"method_name tensorflow/serving/{method}" in body["error"]


def test_metrics_are_prometheus_text_that_counts_each_request(server):
    def scrape():
        with urllib.request.urlopen(f"{server['root']}/metrics", timeout=30) as response:
            assert response.headers["content-type"] == CONTENT_TYPE_LATEST
            families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
        ok = [
            s.value
            for s in families["trainpipe_requests"].samples
            if s.name == "trainpipe_requests_total" and s.labels == {"route": "status", "code": "200"}
        ]
        return families, sum(ok)

    _, before = scrape()
    assert http_json(f"{server['root']}/v1/models/trips_model")[0] == 200
    families, after = scrape()
    assert after == before + 1
    assert {
        "trainpipe_request_seconds",
        "trainpipe_batch_size",
        "trainpipe_batch_fallbacks",
        "trainpipe_serving_version",
    } <= set(families)
    assert families["trainpipe_request_seconds"].type == "histogram"


def test_a_new_version_is_picked_up_and_the_pin_is_honoured(server):
    shutil.copytree(server["base"] / "1", server["base"] / ".tmp-2")
    (server["base"] / ".tmp-2").rename(server["base"] / "2")
    for _ in range(360):  # up to 90 s to load and warm up version 2 on a busy machine
        if http_json(f"{server['root']}/healthz")[1]["serving_version"] == 2:
            break
        time.sleep(0.25)
    assert http_json(f"{server['root']}/v1/models/trips_model")[1]["model_version_status"][0]["version"] == "2"
    (server["base"] / "PINNED").write_text("1\n")
    for _ in range(120):  # the watch thread rereads the pin every --poll-seconds (requests never read the file)
        if http_json(f"{server['root']}/healthz")[1]["serving_version"] == 1:
            break
        time.sleep(0.25)
    assert http_json(f"{server['root']}/healthz")[1]["serving_version"] == 1
    metrics = urllib.request.urlopen(f"{server['root']}/metrics").read().decode()
    assert sample(metrics, "trainpipe_requests_total", route="predict", code="200") >= 1
    assert sample(metrics, "trainpipe_serving_version", model="trips_model") == 1


def test_a_version_that_fails_to_load_is_reported_and_the_old_one_keeps_serving(server):
    root, base = server["root"], server["base"]
    before = http_json(f"{root}/healthz")[1]["serving_version"]
    (base / ".tmp-7").mkdir()
    (base / ".tmp-7" / "saved_model.pb").write_bytes(b"not a SavedModel")
    (base / ".tmp-7").rename(base / "7")
    for _ in range(360):
        code, health = http_json(f"{root}/healthz")
        if "7" in health.get("errors", {}):
            break
        time.sleep(0.25)
    assert code == 200 and "7" in health["errors"] and health["serving_version"] == before
    assert http_json(f"{root}/v1/models/trips_model:predict", {"instances": b64(server["examples"][:1])})[0] == 200
    assert http_json(f"{root}/v1/models/trips_model/versions/7")[0] == 404
