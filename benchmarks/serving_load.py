"""`trainpipe serve` under load over loopback: single-example :predict requests from keep-alive clients, side by side
with a bare handler, in one run.

Servers, each started, measured for --seconds per round and stopped: a bare starlette app calling the same
SavedModel's serving_default on a thread (the floor: HTTP + JSON + the model and nothing else), `trainpipe serve
--disable-batching`, `trainpipe serve` (batching is the default), `--workers 2 --disable-batching`, gRPC (Predict
through TF Serving's stubs) and `--capture-dir`; then a version pushed (copy + rename) mid-run, counting failed
requests (must be 0). Per round: requests/s, p50/p99 latency, the server's CPU ms per request (its process tree,
clients excluded) and resident memory. Clients are separate processes (--client-procs) of threads, each thread one
connection (an HTTP keep-alive connection or a gRPC channel of its own), so the client is not the bottleneck of a GIL.

    # after `make demo` (the model serving under the base path is copied; the base path is not touched):
    .venv/bin/python benchmarks/serving_load.py --model-base-path .trainpipe/serving/trips_model
"""

import argparse
import base64
import glob
import gzip
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))


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
        requests = [f"{head}Content-Length: {len(b)}\r\n\r\n".encode() + b for b in bodies]

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


def bare_app(model_dir: str):
    """The floor: starlette, the body's instances decoded, serving_default called on a thread, the outputs listed."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import tensorflow as tf
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    signature = tf.saved_model.load(model_dir).signatures["serving_default"]
    ((key, spec),) = signature.structured_input_signature[1].items()
    executor = ThreadPoolExecutor(os.cpu_count())

    def call(rows):
        outputs = signature(**{key: tf.constant(rows, dtype=spec.dtype)})
        return {"predictions": next(iter(outputs.values())).numpy().tolist()}

    async def predict(request: Request):
        rows = [base64.b64decode(i["b64"]) for i in json.loads(await request.body())["instances"]]
        return JSONResponse(await asyncio.get_running_loop().run_in_executor(executor, call, rows))

    async def healthz(request: Request):
        return JSONResponse({"status": "ok", "input": key})  # the model's one input, for the gRPC clients

    return Starlette(routes=[Route("/v1/models/{rest:path}", predict, methods=["POST"]), Route("/healthz", healthz)])


def load(kind: str, target: str, clients: int, procs: int, seconds: float, bodies_file: str, during=None) -> dict:
    """`clients` connections over `procs` client processes for `seconds`; `during(start_at)` runs meanwhile."""
    procs = max(1, min(procs, clients))
    children = [
        subprocess.Popen(
            [sys.executable, str(HERE), "--client", kind, target, str(clients // procs + (k < clients % procs))]
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

    failed = sum(r["failed"] for r in results)
    errors = [e for r in results for e in r["errors"]][:5]
    return {
        "rps": len(latencies) / seconds,
        "p50": pick(0.5),
        "p99": pick(0.99),
        "ok": len(latencies),
        "failed": failed,
        "errors": errors,
        "extra": extra,
    }


def tree(pid: int) -> list[int]:
    """pid and its descendants (a --workers parent's workers)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [pid] + [p for c in children for p in tree(int(c))]


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in tree(pid):
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return total


def rss_mb(pid: int) -> float:
    pages = sum(int(Path(f"/proc/{p}/statm").read_text().split()[1]) for p in tree(pid))
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def get(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())
    except OSError:
        return {}


class Server:
    """A server process on free ports (HTTP, and gRPC with grpc=True), healthy before it returns."""

    def __init__(self, command: list[str], grpc: bool = False):
        from trainpipe_assets.core.net import free_port

        self.port, self.grpc_port = free_port(), free_port() if grpc else 0
        command = [c.replace("{port}", str(self.port)).replace("{grpc_port}", str(self.grpc_port)) for c in command]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.root = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 180
        while get(f"{self.root}/healthz").get("status") != "ok":
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                sys.exit(f"server {command} not healthy")
            time.sleep(0.25)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def measure(server: Server, kind: str, clients: int, args, bodies_file: str, during=None) -> dict:
    target = f"127.0.0.1:{server.grpc_port if kind == 'grpc' else server.port}"
    cpu = cpu_seconds(server.proc.pid)
    r = load(kind, target, clients, args.client_procs, args.seconds, bodies_file, during)
    r["cpu_ms"] = (cpu_seconds(server.proc.pid) - cpu) * 1000 / max(1, r["ok"] + r["failed"])
    r["rss"] = rss_mb(server.proc.pid)
    return r


def line(label: str, r: dict) -> str:
    return (
        f"| {label:<40} | {r['rps']:>6.0f} | {r['p50']:6.2f} | {r['p99']:7.2f} | {r['cpu_ms']:5.2f} | {r['rss']:6.0f} "
        f"| {r['failed']} |"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        kind, target, threads, seconds, bodies_file = sys.argv[2:7]
        return client_worker(kind, target, int(threads), float(seconds), bodies_file)
    if len(sys.argv) > 1 and sys.argv[1] == "--bare-server":
        import uvicorn

        return uvicorn.run(bare_app(sys.argv[3]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-base-path", required=True, type=Path, help="TF Serving layout: <path>/<version>/")
    parser.add_argument("--model-name", default="trips_model")
    parser.add_argument(
        "--examples",
        help="gzipped TFRecords of tf.Examples (default: <home>/artifacts/examples/*/Split-eval/*.gz, "
        "else the instances of <home>/predict_request.json, home = base path's grandparent)",
    )
    parser.add_argument("--clients", type=int, default=32, help="concurrent connections of the loaded rounds")
    parser.add_argument("--client-procs", type=int, default=2, help="client processes the connections are spread over")
    parser.add_argument("--seconds", type=float, default=5.0, help="per round")
    args = parser.parse_args()

    from trainpipe_assets.core.serving_layout import serving_version

    version = serving_version(args.model_base_path)
    if version is None:
        sys.exit(f"no version under {args.model_base_path}")
    home = args.model_base_path.parent.parent
    files = sorted(glob.glob(args.examples or str(home / "artifacts/examples/*/Split-eval/*.gz")))
    if files:
        records = [r for _, r in zip(range(2000), read_tfrecords(files))]
    else:
        records = [
            base64.b64decode(i["b64"]) for i in json.loads((home / "predict_request.json").read_text())["instances"]
        ]
    work = Path(tempfile.mkdtemp(prefix="serving-load-"))
    name, n, servers = args.model_name, args.clients, []
    try:
        base = work / name
        shutil.copytree(args.model_base_path / str(version), base / "1")
        trainpipe = [str(Path(sys.executable).parent / "trainpipe"), "serve", "--model-name", name]
        trainpipe += ["--model-base-path", str(base), "--port", "{port}", "--poll-seconds", "0.5"]
        print(
            f"model {name} version {version} of {args.model_base_path}; {len(records)} distinct single-example "
            f"requests; {n} connections in {args.client_procs} client processes; {args.seconds:g} s per round; "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} before the servers start"
        )
        print(f"| {'server, connections':<40} | req/s  | p50 ms | p99 ms  | CPU ms/req | RSS MB | failed |")
        print(f"|{'-' * 42}|--------|--------|---------|-------|--------|---|")
        runs = [  # (key, server command, grpc, [(kind, connections)])
            ("bare", [sys.executable, str(HERE), "--bare-server", "{port}", str(base / "1")], False, [1, n]),
            ("unbatched", trainpipe + ["--disable-batching"], False, [1, n]),
            ("batched", trainpipe, False, [1, n]),
            ("workers 2 unbatched", trainpipe + ["--workers", "2", "--disable-batching"], False, [n]),
            ("gRPC batched", trainpipe + ["--grpc-port", "{grpc_port}"], True, [1, n]),
            ("capture on, batched", trainpipe + ["--capture-dir", str(work / "capture")], False, [n]),
        ]
        bodies_file = str(work / "bodies.json")
        results = {}
        for key, command, grpc, rounds in runs:
            server = Server(command, grpc)
            servers.append(server)
            if key == "bare":
                spec = {"records": [base64.b64encode(r).decode() for r in records], "model": name}
                Path(bodies_file).write_text(json.dumps({**spec, "input": get(f"{server.root}/healthz")["input"]}))
            kind = "grpc" if grpc else "http"
            load(kind, f"127.0.0.1:{server.grpc_port if grpc else server.port}", 2, 1, 1.0, bodies_file)  # warm-up
            for clients in rounds:
                results[key, clients] = r = measure(server, kind, clients, args, bodies_file)
                print(line(f"{key}, {clients}", r), flush=True)
            if key != "batched":
                server.stop()
                servers.remove(server)
        batched = next(s for s in servers)

        def push(start_at: float) -> float:
            time.sleep(max(0.0, start_at + args.seconds / 3 - time.time()))
            shutil.copytree(base / "1", base / ".tmp-push")
            os.rename(base / ".tmp-push", base / "2")
            pushed = time.time()
            while get(batched.root + "/healthz").get("serving_version") != 2 and time.time() < pushed + 120:
                time.sleep(0.05)
            return time.time() - pushed

        results["push", n] = swap = measure(batched, "http", n, args, bodies_file, during=push)
        print(line(f"batched, {n}, a version pushed mid-run", swap))
        print(f"version 2 serving {swap['extra']:.2f} s after the push; failed requests: {swap['failed']}")
        for r in results.values():
            for e in r["errors"]:
                print("  error:", e)

        def ratio(a, b, aim, what):
            value = results[a]["rps"] / results[b]["rps"]
            print(f"{what:<58} {value:5.2f}  (aim {aim}: {'met' if value >= float(aim[3:]) else 'NOT met'})")

        ratio(("unbatched", 1), ("bare", 1), ">= 0.9", "unbatched / bare handler req/s, 1 connection")
        ratio(("unbatched", n), ("bare", n), ">= 0.9", f"unbatched / bare handler req/s, {n} connections")
        ratio(("batched", n), ("bare", n), ">= 2", f"batched / best peer (bare handler) req/s, {n} connections")
        ratio(("batched", 1), ("unbatched", 1), ">= 0.9", "batched / unbatched req/s, 1 connection")
        ratio(("capture on, batched", n), ("batched", n), ">= 0.95", f"capture on / off req/s, {n} connections")
        print(
            f"{'workers 2 / 1 (unbatched) req/s, %d connections' % n:<58} "
            f"{results['workers 2 unbatched', n]['rps'] / results['unbatched', n]['rps']:5.2f}"
        )
        print(
            f"{'gRPC / REST (batched) req/s, %d connections' % n:<58} "
            f"{results['gRPC batched', n]['rps'] / results['batched', n]['rps']:5.2f}"
        )
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
