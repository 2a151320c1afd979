"""The load generator of benchmarks/serving_load.py: client processes of threads, each thread one connection (an
HTTP/1.1 keep-alive connection on a raw socket, or a gRPC channel of its own through TF Serving's stubs) sending
single-example :predict requests round-robin, started together once all are ready.

    python benchmarks/serving_clients.py http|grpc HOST:PORT THREADS SECONDS BODIES_FILE   (one client process)
"""

import base64
import gzip
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def read_tfrecords(paths: list[str]):
    """Records of gzipped TFRecord files (length, crc, data, crc), without TensorFlow."""
    for path in paths:
        with gzip.open(path, "rb") as f:
            while header := f.read(12):
                (length,) = struct.unpack("<Q", header[:8])
                yield f.read(length)
                f.read(4)


def client_worker(kind: str, target: str, threads: int, seconds: float, bodies_file: str) -> None:
    """One client process: `threads` connections sending requests round-robin. Says "ready" once set up, starts at
    the time read from stdin, prints JSON results."""
    spec = json.loads(Path(bodies_file).read_text())
    records, model, input_key = [base64.b64decode(r) for r in spec["records"]], spec["model"], spec["input"]
    if kind == "grpc":
        import grpc
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        requests = []
        for record in records:
            request = predict_pb2.PredictRequest()
            request.model_spec.name, request.model_spec.signature_name = model, "serving_default"
            tensor = request.inputs[input_key]
            tensor.dtype = 7  # DT_STRING
            tensor.tensor_shape.dim.add(size=1)
            tensor.string_val.append(record)
            requests.append(request)

        def connect():  # a channel with a connection of its own (channels with equal options would share one)
            channel = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            return lambda request: stub.Predict(request, timeout=30)
    else:  # HTTP/1.1 on a raw socket: http.client would cost the clients more CPU than the server spends
        host, port = target.split(":")
        head = f"POST /v1/models/{model}:predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        bodies = [json.dumps({"instances": [{"b64": base64.b64encode(r).decode()}]}).encode() for r in records]
        # each request carries its own x-request-id, as a client that joins labels to captured requests sends one
        # (without it a capturing server makes one up, and its answers carry one header more than the others')
        requests = [
            f"{head}x-request-id: r{i}\r\nContent-Length: {len(b)}\r\n\r\n".encode() + b for i, b in enumerate(bodies)
        ]

        def connect():
            sock = socket.create_connection((host, int(port)), timeout=30)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def receive() -> bytes:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed by the server")
                return chunk

            def send(request):
                sock.sendall(request)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += receive()
                headers, _, body = data.partition(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", headers)[1])
                while len(body) < length:
                    body += receive()
                if not headers.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(headers[:20] + body[:200])

            return send

    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    results = []

    def run(offset: int):
        send, latencies, errors, i = connect(), [], [], offset
        time.sleep(max(0.0, start_at - time.time()))
        end = start_at + seconds
        while time.time() < end:
            began = time.perf_counter()
            try:
                send(requests[i % len(requests)])
                latencies.append(time.perf_counter() - began)
            except Exception as e:  # refused, reset, a status other than 200 / OK
                errors.append(repr(e)[:300])
                send = connect()
            i += threads
        results.append((latencies, errors))

    workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    errors = [e for r in results for e in r[1]]
    print(json.dumps({"latencies": [x for r in results for x in r[0]], "failed": len(errors), "errors": errors[:5]}))


def load(kind: str, target: str, clients: int, procs: int, seconds: float, bodies_file: str, during=None) -> dict:
    """`clients` connections over `procs` client processes for `seconds`; `during(start_at)` runs meanwhile."""
    procs = max(1, min(procs, clients))
    children = [
        subprocess.Popen(
            [sys.executable, str(HERE), kind, target, str(clients // procs + (k < clients % procs))]
            + [str(seconds), bodies_file],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},  # the gRPC clients import TensorFlow for its protos
        )
        for k in range(procs)
    ]
    for child in children:
        assert child.stdout.readline().strip() == "ready", "a client process failed to start"
    start_at = time.time() + 0.2
    for child in children:
        child.stdin.write(f"{start_at}\n")
        child.stdin.flush()
    extra = during(start_at) if during else None
    results = [json.loads(c.communicate()[0]) for c in children]
    latencies = sorted(x for r in results for x in r["latencies"])

    def pick(q):
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")

    errors = [e for r in results for e in r["errors"]][:5]
    failed, n = sum(r["failed"] for r in results), len(latencies)
    return {"rps": n / seconds, "p50": pick(0.5), "p99": pick(0.99), "failed": failed, "errors": errors, "extra": extra}


if __name__ == "__main__":
    kind, target, threads, seconds, bodies_file = sys.argv[1:6]
    client_worker(kind, target, int(threads), float(seconds), bodies_file)
