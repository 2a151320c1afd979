"""Real `trainpipe serve` processes for the serving tests: start several at once, then wait for all of them."""
import base64
import json
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from trainpipe_assets.serving.client import free_port


def call(url, body=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


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
                [str(Path(sys.executable).parent / "trainpipe"), "serve", "--model-name", name, "--model-base-path", str(base),
                 "--port", str(port), *args],
                stdout=out, stderr=subprocess.STDOUT,
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
            try:
                if call(f"{server.root}/healthz")[0] == 200:
                    pending.remove(server)
            except OSError:
                pass
        time.sleep(0.25)
    if pending:
        for server in servers:
            server.stop()
        pytest.fail("server did not become healthy: " + pending[0].output()[-2000:])
