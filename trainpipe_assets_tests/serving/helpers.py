"""Real `trainpipe serve` processes for the serving tests: start several at once, then wait for all of them."""

import base64
import http.client
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from prometheus_client.parser import text_string_to_metric_families

from trainpipe_assets.serving.client import free_port, http_json


def post_raw(url: str, body) -> tuple[int, dict]:
    """POST bytes as they are, which http_json cannot (it sends JSON): malformed or oversized bodies. A list of
    chunks goes with chunked transfer encoding, so without a content-length."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        chunked = isinstance(body, list)
        connection.request("POST", parts.path, body=iter(body) if chunked else body, encode_chunked=chunked)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text exposition, e.g. sample(text, "trainpipe_batch_size_count")."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    raise KeyError(f"no sample {name}{labels or ''} in:\n{text}")


def b64(records):
    return [{"b64": base64.b64encode(r).decode()} for r in records]


class Server:
    def __init__(self, base: Path, *args: str, name: str = "trips_model"):
        port = free_port()
        self.root = f"http://127.0.0.1:{port}"
        # Output to a file, not a pipe nobody reads (a full pipe would block the server).
        self.log = Path(tempfile.mkstemp(prefix=f"trainpipe-serve-{port}-", suffix=".log")[1])
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "trainpipe"),
                    "serve",
                    "--model-name",
                    name,
                    "--model-base-path",
                    str(base),
                    "--port",
                    str(port),
                    *args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def metrics(self) -> str:
        return urllib.request.urlopen(f"{self.root}/metrics", timeout=30).read().decode()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_healthy(*servers: Server, seconds: float = 90) -> None:
    pending, deadline = list(servers), time.monotonic() + seconds
    while pending and time.monotonic() < deadline and all(s.proc.poll() is None for s in pending):
        for server in list(pending):
            if http_json(f"{server.root}/healthz")[0] == 200:  # 0 while nothing listens yet
                pending.remove(server)
        time.sleep(0.25)
    if pending:
        for server in servers:
            server.stop()
        pytest.fail("server did not become healthy: " + pending[0].output()[-2000:])
