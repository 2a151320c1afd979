"""A PINNED file or labels file that cannot be read, on a real `trainpipe serve` process: /healthz and /metrics keep
answering and report it, routes that need the file answer 503 naming it (and the fix) until it has been read well
once, and from then on the last good value stays in force while the file is broken. Never a 500, never a traceback."""

import json
import shutil
import time
import urllib.request

import pytest

from trainpipe_assets.core.example_reader import read_records
from trainpipe_assets.serving.client import http_json
from trainpipe_assets_tests.conftest import DAYS
from trainpipe_assets_tests.serving.helpers import Server, b64, sample


@pytest.fixture(scope="module")
def garbled(pipeline, tmp_path_factory):
    """Versions 1 and 2, started with PINNED holding "abc" and a labels file whose one label names no number."""
    base = tmp_path_factory.mktemp("garbled") / "trips_model"
    for version in ("1", "2"):
        shutil.copytree(pipeline["home"] / "serving" / "trips_model" / "1", base / version)
    (base / "PINNED").write_text("abc\n")
    labels = base.parent / "labels.json"
    labels.write_text(json.dumps({"stable": "one"}))
    # every version: a pin never read well names none to load beside the latest (--model-version-policy latest:1)
    server = Server(base, "--poll-seconds", "0.5", "--labels-file", str(labels), "--model-version-policy", "all")
    try:  # not wait_healthy: /healthz is under test here
        wait_for(lambda: http_json(f"{server.root}/v1/models/trips_model/versions/2")[0] == 200, "version 2 loaded")
        examples = read_records([str(pipeline["home"] / "artifacts/examples" / DAYS[0] / "Split-eval" / "*.gz")])[:2]
        yield {"server": server, "base": base, "labels": labels, "body": {"instances": b64(examples)}}
    finally:
        server.stop()


def wait_for(condition, what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds} s: {what}")
        time.sleep(0.2)


def health(root: str) -> dict:
    code, body = http_json(f"{root}/healthz")
    assert code == 200, body
    return body


def test_a_garbled_pin_is_reported_and_the_last_good_pin_stays(garbled):
    server, base, body = garbled["server"], garbled["base"], garbled["body"]
    root, model = server.root, f"{garbled['server'].root}/v1/models/trips_model"
    # Never read well since the start: nothing to fall back on, and serving the highest would undo a rollback.
    state = health(root)
    assert "PINNED" in state["pin_error"] and "'abc'" in state["pin_error"], state
    assert state["serving_version"] is None and state["status"] == "degraded"
    text = urllib.request.urlopen(f"{root}/metrics", timeout=30).read().decode()
    assert sample(text, "trainpipe_serving_version", model="trips_model") == -1
    assert sample(text, "trainpipe_file_error", model="trips_model", file="pin") == 1
    for code, answer in (http_json(f"{model}:predict", body), http_json(f"{model}/metadata")):
        assert code == 503 and str(base / "PINNED") in answer["error"], answer
        assert "trainpipe rollback --clear" in answer["error"]
    assert http_json(f"{model}/versions/1:predict", body)[0] == 200  # a route naming its version still answers
    status = http_json(model)  # the status lists every loaded version, as TF Serving's, whatever the pin
    assert status[0] == 200 and [s["version"] for s in status[1]["model_version_status"]] == ["2", "1"]

    (base / "PINNED").write_text("1\n")
    wait_for(lambda: health(root)["serving_version"] == 1, "the pin read")
    assert "pin_error" not in health(root) and http_json(f"{model}:predict", body)[0] == 200
    (base / "PINNED").write_text("2x\n")  # garbled while running: the last good pin (1) stays in force
    wait_for(lambda: "pin_error" in health(root), "the garbled pin reported")
    state = health(root)
    assert state["serving_version"] == 1 and "'2x'" in state["pin_error"] and state["status"] == "degraded"
    assert http_json(f"{model}:predict", body)[0] == 200
    assert http_json(f"{model}/metadata")[1]["model_spec"]["version"] == "1"
    text = urllib.request.urlopen(f"{root}/metrics", timeout=30).read().decode()
    assert sample(text, "trainpipe_serving_version", model="trips_model") == 1
    assert sample(text, "trainpipe_file_error", model="trips_model", file="pin") == 1

    (base / "PINNED").unlink()  # `trainpipe rollback --clear`: the highest serves again
    wait_for(lambda: health(root)["serving_version"] == 2, "the pin cleared")
    assert "pin_error" not in health(root)
    assert "Traceback" not in server.output()
    assert server.output().count("should hold a version number") == 2  # each new error logged once, not per poll


def test_a_broken_labels_file_is_reported_and_the_last_good_labels_stay(garbled):
    server, labels, body = garbled["server"], garbled["labels"], garbled["body"]
    root, stable = server.root, f"{server.root}/v1/models/trips_model/labels/stable"

    def refused(*needles: str) -> None:
        for code, answer in (http_json(f"{stable}:predict", body), http_json(stable)):
            assert code == 503 and str(labels) in answer["error"], answer
            assert all(n in answer["error"] for n in needles), answer

    refused("'stable'", '"one"')
    assert "'stable'" in health(root)["labels_error"]
    labels.write_text('{"stable": 1,')
    wait_for(lambda: "not JSON" in health(root).get("labels_error", ""), "bad JSON reported")
    refused("not JSON")
    assert http_json(f"{root}/v1/models/trips_model/versions/1:predict", body)[0] == 200

    labels.write_text(json.dumps({"stable": 1}))
    wait_for(lambda: "labels_error" not in health(root), "the labels read")
    assert http_json(f"{stable}:predict", body)[0] == 200
    labels.write_text(json.dumps({"stable": 1.5}))  # broken while running: the last good labels stay
    wait_for(lambda: "labels_error" in health(root), "the bad entry reported")
    assert "'stable'" in health(root)["labels_error"] and "1.5" in health(root)["labels_error"]
    assert http_json(f"{stable}:predict", body)[0] == 200
    assert http_json(f"{root}/v1/models/trips_model/labels/canary")[0] == 404
    labels.write_text(json.dumps({"stable": 1}))
    assert "Traceback" not in server.output()
