"""`trainpipe serve` as a real server process, over real HTTP, on the pipeline's pushed model."""
import base64
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from trainpipe_assets.feature_stats import read_records
from trainpipe_assets_tests.conftest import DAYS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url, body=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def server(pipeline, tmp_path_factory):
    base = tmp_path_factory.mktemp("serving") / "trips_model"
    shutil.copytree(pipeline["home"] / "serving" / "trips_model" / "1", base / "1")
    (base.parent / "labels.json").write_text(json.dumps({"stable": 1}))
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "trainpipe"), "serve", "--model-name", "trips_model", "--model-base-path", str(base),
         "--port", str(port), "--poll-seconds", "0.5", "--labels-file", str(base.parent / "labels.json"), "--max-body-bytes", "200000"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    root = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if call(f"{root}/healthz")[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.25)
    else:
        proc.kill()
        pytest.fail("server did not become healthy: " + proc.stdout.read().decode()[-2000:])
    yield {"root": root, "base": base, "examples": read_records([str(pipeline["home"] / "artifacts/examples" / DAYS[0] / "Split-eval" / "*.gz")])[:5]}
    proc.terminate()
    proc.wait(timeout=30)


def b64(records):
    return [{"b64": base64.b64encode(r).decode()} for r in records]


def test_status_and_metadata(server):
    code, status = call(f"{server['root']}/v1/models/trips_model")
    assert code == 200 and status["model_version_status"][0] == {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    code, meta = call(f"{server['root']}/v1/models/trips_model/versions/1/metadata")
    signature = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert code == 200 and signature["inputs"]["examples"]["dtype"] == "DT_STRING" and "outputs" in signature["outputs"]


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


def test_a_new_version_is_picked_up_and_the_pin_is_honoured(server):
    shutil.copytree(server["base"] / "1", server["base"] / ".tmp-2")
    (server["base"] / ".tmp-2").rename(server["base"] / "2")
    for _ in range(120):
        if call(f"{server['root']}/healthz")[1]["serving_version"] == 2:
            break
        time.sleep(0.25)
    assert call(f"{server['root']}/v1/models/trips_model")[1]["model_version_status"][0]["version"] == "2"
    (server["base"] / "PINNED").write_text("1\n")
    assert call(f"{server['root']}/healthz")[1]["serving_version"] == 1
    metrics = urllib.request.urlopen(f"{server['root']}/metrics").read().decode()
    assert 'trainpipe_requests_total{route="predict",code="200"}' in metrics and "trainpipe_serving_version" in metrics
