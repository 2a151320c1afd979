"""What one request may ask of a real `trainpipe serve` process: rows (--max-instances-per-request) and time to send
its headers (--header-timeout-seconds) and its body (--body-timeout-seconds). A slow or half-sent request gets a 408
and its connection closed instead of being held open forever, and the server keeps answering others meanwhile."""

import json
import shutil
import socket
import time
from urllib.parse import urlsplit

import pytest

from trainpipe_assets.core.example_reader import read_records
from trainpipe_assets.serving.client import http_json
from trainpipe_assets_tests.conftest import DAYS
from trainpipe_assets_tests.serving.helpers import Server, b64, wait_healthy

WAIT_SECONDS = 30  # what "held open forever" means here: far above the 1 s limits, for a busy machine


@pytest.fixture(scope="module")
def server(pipeline, tmp_path_factory):
    base = tmp_path_factory.mktemp("limits") / "trips_model"
    shutil.copytree(pipeline["home"] / "serving" / "trips_model" / "1", base / "1")
    limits = ("--max-instances-per-request", "3", "--header-timeout-seconds", "1", "--body-timeout-seconds", "1")
    server = Server(base, "--poll-seconds", "0.5", *limits)
    wait_healthy(server)
    examples = read_records([str(pipeline["home"] / "artifacts/examples" / DAYS[0] / "Split-eval" / "*.gz")])[:4]
    yield {"server": server, "examples": b64(examples)}
    server.stop()


def test_more_instances_than_the_limit_is_a_413_naming_it(server):
    predict = f"{server['server'].root}/v1/models/trips_model:predict"
    examples = server["examples"]
    for body in ({"instances": examples}, {"inputs": {"examples": examples}}, {"inputs": examples}):
        code, answer = http_json(predict, body)
        assert code == 413 and "4 " in answer["error"] and "limit of 3" in answer["error"], answer
        assert "--max-instances-per-request" in answer["error"]
    assert http_json(predict, {"instances": examples[:3]})[0] == 200


def exchange(root: str, send: bytes, trickle: bytes = b"") -> tuple[bytes, float]:
    """Connect, send `send`, then send `trickle` a byte every 0.3 s (while the server keeps the connection); return
    everything the server sent until it closed the connection, and the seconds that took. Fails after WAIT_SECONDS."""
    parts = urlsplit(root)
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=WAIT_SECONDS) as sock:
        sock.sendall(send)
        sock.settimeout(0.3 if trickle else WAIT_SECONDS)
        received, sent = b"", 0
        while time.monotonic() - started < WAIT_SECONDS:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                if not trickle:
                    continue
                try:
                    sock.sendall(trickle[sent % len(trickle) :][:1])
                except OSError:  # closed under our feet
                    return received, time.monotonic() - started
                sent += 1
                continue
            except ConnectionResetError:
                return received, time.monotonic() - started
            if not chunk:
                return received, time.monotonic() - started
            received += chunk
    pytest.fail(f"connection still open after {WAIT_SECONDS} s, received {received[:300]!r}")


def status_and_error(response: bytes) -> tuple[int, str]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)["error"]


def test_a_half_sent_body_is_a_408_within_the_body_timeout(server):
    root = server["server"].root
    head = b"POST /v1/models/trips_model:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    response, seconds = exchange(root, head + b"Content-Length: 100\r\n\r\n" + b'{"instanc')
    assert status_and_error(response) == (408, "request body not received within 1 s (--body-timeout-seconds)")
    assert seconds < WAIT_SECONDS
    response, _ = exchange(root, head + b"Transfer-Encoding: chunked\r\n\r\n64\r\n[1, 2", trickle=b"3")
    assert status_and_error(response)[0] == 408
    assert http_json(f"{root}/healthz")[0] == 200


def test_half_sent_headers_are_a_408_within_the_header_timeout(server):
    root = server["server"].root
    for send, trickle in [
        (b"", b""),  # connects and sends nothing
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b""),  # never ends its headers
        (b"GET /healthz HTTP/1.1\r\n", b"X-Slow: 1\r\n"),  # sends them forever, a byte at a time
    ]:
        response, _ = exchange(root, send, trickle)
        expected = "request headers not received within 1 s (--header-timeout-seconds)"
        assert status_and_error(response) == (408, expected), send
    # a body nobody reads (a GET answered at once), then trickled: the connection is closed, not held
    response, _ = exchange(root, b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab", trickle=b"c")
    assert response.startswith(b"HTTP/1.1 200 ")
    assert http_json(f"{root}/healthz")[0] == 200
    assert "Traceback" not in server["server"].output()
