"""Issue 27, finding 2, on a real capturing `trainpipe serve` process: headers over --max-header-bytes get a 431 (the
client reads it, no reset) while /healthz keeps answering; an x-request-id over its limit is refused, never echoed or
captured, over REST and gRPC; a request id within it is echoed as before."""

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import grpc
import pytest
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from trainpipe_assets.serving.capture import MAX_REQUEST_ID_CHARS
from trainpipe_assets.serving.client import http_json
from trainpipe_assets_tests.serving.helpers import Server, wait_healthy
from trainpipe_assets_tests.serving.hostile_models import save_shapes


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("http")
    save_shapes(root / "shapes" / "1")
    server = Server(root / "shapes", "--capture-dir", str(root / "capture"), name="shapes", grpc=True)
    wait_healthy(server)
    yield {"server": server, "capture": root / "capture"}
    server.stop()


def post(url: str, body: dict, headers: dict) -> tuple[int, dict, dict]:
    """(status, JSON body, response headers) of a POST with `headers`."""
    request = urllib.request.Request(url, json.dumps(body).encode(), headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)


def raw_exchange(root: str, data: bytes) -> bytes:
    """Send `data` on a connection of its own and read until the server closes it."""
    parts = urlsplit(root)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        try:
            sock.sendall(data)
        except OSError:  # the server may stop reading once it has refused
            pass
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
        return received


def test_a_1_mb_header_is_a_431_and_the_server_keeps_answering(served):
    root = served["server"].root
    slowest, done = [0.0], threading.Event()

    def probe():
        while not done.is_set():
            started = time.monotonic()
            assert http_json(f"{root}/healthz")[0] == 200
            slowest[0] = max(slowest[0], time.monotonic() - started)
            time.sleep(0.02)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        for name in (b"X-Big", b"x-request-id"):
            head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + name + b": " + b"a" * (1 << 20) + b"\r\n\r\n"
            response = raw_exchange(root, head)
            assert response.startswith(b"HTTP/1.1 431 "), response[:200]
            assert b"--max-header-bytes" in response and b"aaaa" not in response
        many = b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 100) for i in range(1000))  # 100 KB in small headers
        response = raw_exchange(root, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
        assert response.startswith(b"HTTP/1.1 431 "), response[:200]
    finally:
        done.set()
        prober.join()
    print(f"slowest /healthz while the 431s were sent: {slowest[0]:.2f} s")  # reported, not asserted (shared cores)
    ok = raw_exchange(
        root, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Fine: " + b"c" * 60000 + b"\r\nConnection: close\r\n\r\n"
    )
    assert ok.startswith(b"HTTP/1.1 200 "), ok[:200]


def test_an_overlong_request_id_is_refused_never_echoed_or_captured(served):
    server = served["server"]
    predict = f"{server.root}/v1/models/shapes:predict"
    long_id = "z" * (MAX_REQUEST_ID_CHARS + 1)
    for bad in (long_id, "id with spaces\tand tabs"):
        code, answer, headers = post(predict, {"instances": ["a"]}, {"x-request-id": bad})
        assert code == 400 and f"at most {MAX_REQUEST_ID_CHARS}" in answer["error"], answer
        assert "x-request-id" not in {k.lower() for k in headers}
    code, _, headers = post(predict, {"instances": ["a"]}, {"x-request-id": "fine-id"})
    assert code == 200 and headers["x-request-id"] == "fine-id"
    channel = grpc.insecure_channel(server.grpc)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    message = predict_pb2.PredictRequest()
    message.model_spec.name = "shapes"
    message.inputs["examples"].dtype = 7  # DT_STRING
    message.inputs["examples"].tensor_shape.dim.add(size=1)
    message.inputs["examples"].string_val.append(b"a")
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(message, timeout=60, metadata=[("x-request-id", long_id)])
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert not any(key == "x-request-id" for key, _ in error.value.trailing_metadata() or ())
    _, call = stub.Predict.with_call(message, timeout=60, metadata=[("x-request-id", "fine-grpc")])
    assert ("x-request-id", "fine-grpc") in tuple(call.trailing_metadata())
    channel.close()
    server.stop()
    captured = b"".join(p.read_bytes() for p in (served["capture"] / "shapes").glob("*.jsonl"))
    assert b"fine-id" in captured and b"fine-grpc" in captured and b"zzzz" not in captured
