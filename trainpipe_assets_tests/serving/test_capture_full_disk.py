"""Issue 27, finding 6, on a real `trainpipe serve` process: a capture onto a full filesystem (a 256 KiB tmpfs, mounted
here: needs root) drops whole records, counts them and stays line-parseable while /healthz says `capture: degraded`
and /metrics counts the failures; bodies the server reads (a UTF-8 byte-order mark, UTF-16) are captured as valid
lines; files are 0600 and folders 0700."""

import json
import os
import stat
import subprocess
import urllib.request

import pytest

from trainpipe_assets.serving.capture import read_day
from trainpipe_assets.serving.client import http_json
from trainpipe_assets_tests.serving.helpers import Server, sample, wait_for, wait_healthy
from trainpipe_assets_tests.serving.hostile_models import save_shapes


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs at tmp_path/disk, unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def post_bytes(url: str, data: bytes, request_id: str) -> int:
    request = urllib.request.Request(url, data, {"x-request-id": request_id, "content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status


def test_a_full_disk_drops_whole_records_and_health_says_so(tmp_path, small_disk):
    save_shapes(tmp_path / "shapes" / "1")
    capture = small_disk / "capture"
    server = Server(tmp_path / "shapes", "--capture-dir", str(capture), name="shapes")
    try:
        wait_healthy(server)
        predict = f"{server.root}/v1/models/shapes:predict"
        body = {"instances": ["héllo"]}
        assert post_bytes(predict, b"\xef\xbb\xbf" + json.dumps(body).encode(), "bom") == 200
        assert post_bytes(predict, json.dumps(body, ensure_ascii=False).encode("utf-16"), "utf16") == 200
        assert http_json(f"{server.root}/healthz")[1]["capture"] == "ok"
        sent = 2
        for i in range(150):  # ~600 KB of records onto 256 KiB
            assert post_bytes(predict, json.dumps({"instances": ["x" * 4000]}).encode(), f"fill-{i}") == 200
            sent += 1
        wait_for(lambda: http_json(f"{server.root}/healthz")[1].get("capture") == "degraded", "capture degraded")
        code, health = http_json(f"{server.root}/healthz")
        assert code == 200 and health["status"] == "degraded" and "not written" in health["capture_error"], health
        lines = lambda: sum(p.read_bytes().count(b"\n") for p in (capture / "shapes").glob("*.jsonl*"))  # noqa: E731
        dropped = lambda: sample(server.metrics(), "trainpipe_capture_dropped_total")  # noqa: E731
        wait_for(lambda: lines() + dropped() == sent, "every record written whole or counted as dropped")
        metrics = server.metrics()
        assert sample(metrics, "trainpipe_capture_degraded") == 1
        failed = sample(metrics, "trainpipe_capture_write_failed_total")
        assert failed == dropped() > 0 and lines() == sent - failed
    finally:
        server.stop()
    day = next((capture / "shapes").glob("*.jsonl*")).name.split(".")[0]
    entries, facts = read_day(capture, "shapes", day)
    assert facts["bad_lines"] == [] and facts["open_files"] == [], facts
    files = list((capture / "shapes").glob("*.jsonl*"))
    assert all(p.read_bytes().endswith(b"\n") for p in files if p.stat().st_size)
    by_id = {e["request_id"]: e for e in entries}
    assert by_id["bom"]["request"] == body and by_id["utf16"]["request"] == body
    assert len(entries) == sent - failed  # every record: written whole, or counted
    assert stat.S_IMODE(os.stat(capture / "shapes").st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}
    assert "Traceback" not in server.output()
