"""`trainpipe serve` under load over loopback: single-example :predict requests from keep-alive clients, side by side
with a bare handler, in one run.

Servers, all started at once and measured in turn (--repeats interleaved rounds of --seconds; each ratio is the median
of its per-round ratios, the two servers of a round measured a few seconds apart, and each table row is its median
round, so a machine busy with something else for a while does not tilt one server against another): a bare
starlette app calling the same SavedModel's serving_default on a thread (the floor: HTTP + JSON + the model and
nothing else), `trainpipe serve --disable-batching`, `trainpipe serve` (batching is the default), `--workers 2
--disable-batching`, gRPC (Predict through TF Serving's PredictionServiceStub, on a batched server) and
`--capture-dir`; then a version
pushed (copy + rename) mid-run on the batched server, counting failed requests (must be 0). Per round: requests/s,
p50/p99 latency, the server's CPU ms per request (its process tree, clients excluded), rows per model call (from
/metrics) and resident memory. The clients (benchmarks/serving_clients.py) are separate processes (--client-procs)
of threads, each thread one connection (HTTP keep-alive on a raw socket, or a gRPC channel of its own).

    # after `make demo` (the model serving under the base path is copied; the base path is not touched):
    .venv/bin/python benchmarks/serving_load.py --model-base-path .trainpipe/serving/trips_model
"""

import argparse
import base64
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE.parent))

from serving_clients import load, read_tfrecords  # noqa: E402


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

    def __init__(self, key: str, command: list[str], grpc: bool, rounds: list[int]):
        from trainpipe_assets.core.net import free_port

        self.key, self.rounds, self.port, self.grpc_port = key, rounds, free_port(), free_port() if grpc else 0
        command = [c.replace("{port}", str(self.port)).replace("{grpc_port}", str(self.grpc_port)) for c in command]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.root, self.kind = f"http://127.0.0.1:{self.port}", "grpc" if grpc else "http"
        self.target = f"127.0.0.1:{self.grpc_port or self.port}"

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + 300
        while get(f"{self.root}/healthz").get("status") != "ok":
            if time.monotonic() > deadline or self.proc.poll() is not None:
                sys.exit(f"server {self.key} not healthy")
            time.sleep(0.25)

    def batch_rows(self) -> tuple[float, float]:
        """(rows, model calls) so far, from /metrics; (0, 0) where there are none (the bare handler, workers)."""
        if self.key == "bare" or "workers" in self.key:
            return 0.0, 0.0
        text = urllib.request.urlopen(f"{self.root}/metrics", timeout=10).read().decode()
        values = dict(line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("trainpipe_batch_size_"))
        return float(values["trainpipe_batch_size_sum"]), float(values["trainpipe_batch_size_count"])

    def measure(self, clients: int, args, bodies_file: str, during=None) -> dict:
        cpu, (rows, calls) = cpu_seconds(self.proc.pid), self.batch_rows()
        r = load(self.kind, self.target, clients, args.client_procs, args.seconds, bodies_file, during)
        rows_after, calls_after = self.batch_rows()
        done = max(1.0, r["rps"] * args.seconds + r["failed"])
        r["cpu_ms"] = (cpu_seconds(self.proc.pid) - cpu) * 1000 / done
        r["rows_per_call"] = (rows_after - rows) / max(1.0, calls_after - calls) if calls_after else float("nan")
        r["rss"] = rss_mb(self.proc.pid)
        return r

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def line(label: str, r: dict) -> str:
    rows = "-" if r["rows_per_call"] != r["rows_per_call"] else f"{r['rows_per_call']:.1f}"  # NaN: not reported
    return (
        f"| {label:<38} | {r['rps']:>6.0f} | {r['p50']:6.2f} | {r['p99']:6.2f} | {r['cpu_ms']:10.2f} | {rows:>9} "
        f"| {r['rss']:6.0f} | {r['failed']:>6} |"
    )


def main() -> None:
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
    parser.add_argument("--repeats", type=int, default=3, help="rounds per server, interleaved; the median counts")
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
        instances = json.loads((home / "predict_request.json").read_text())["instances"]
        records = [base64.b64decode(i["b64"]) for i in instances]
    work = Path(tempfile.mkdtemp(prefix="serving-load-"))
    name, n, servers = args.model_name, args.clients, []
    try:
        base = work / name
        shutil.copytree(args.model_base_path / str(version), base / "1")
        trainpipe = [str(Path(sys.executable).parent / "trainpipe"), "serve", "--model-name", name]
        trainpipe += ["--model-base-path", str(base), "--port", "{port}", "--poll-seconds", "0.5"]
        runs = [  # (key, server command, gRPC, connections of its rounds): all running at once, measured in turn
            ("bare", [sys.executable, str(HERE), "--bare-server", "{port}", str(base / "1")], False, [1, n]),
            ("unbatched", trainpipe + ["--disable-batching"], False, [1, n]),
            ("batched", trainpipe, False, [1, n]),
            ("workers 2 unbatched", trainpipe + ["--workers", "2", "--disable-batching"], False, [n]),
            ("gRPC batched", trainpipe + ["--grpc-port", "{grpc_port}"], True, [1, n]),
            ("capture on, batched", trainpipe + ["--capture-dir", str(work / "capture")], False, [n]),
        ]
        servers = [Server(*run) for run in runs]
        for server in servers:
            server.wait_healthy()
        bodies_file = str(work / "bodies.json")
        spec = {"records": [base64.b64encode(r).decode() for r in records], "model": name}
        Path(bodies_file).write_text(json.dumps({**spec, "input": get(f"{servers[0].root}/healthz")["input"]}))
        print(
            f"model {name} version {version} of {args.model_base_path}; {len(records)} distinct single-example "
            f"requests; {args.client_procs} client processes; {args.seconds:g} s per round, median of {args.repeats} "
            f"interleaved rounds; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} with the servers idle"
        )
        print(f"| {'server, connections':<38} | req/s  | p50 ms | p99 ms | CPU ms/req | rows/call | RSS MB | failed |")
        print(f"|{'-' * 40}|-------:|-------:|-------:|-----------:|----------:|-------:|-------:|")
        for server in servers:  # warm-up
            load(server.kind, server.target, 2, 1, 1.0, bodies_file)
        rounds: dict = {}  # (server, connections) -> one result per round
        for _ in range(args.repeats):
            for server in servers:
                for clients in server.rounds:
                    rounds.setdefault((server.key, clients), []).append(server.measure(clients, args, bodies_file))
        results = {}
        for (key, clients), measured in rounds.items():
            middle = sorted(measured, key=lambda r: r["rps"])[len(measured) // 2]
            results[key, clients] = {**middle, "failed": sum(r["failed"] for r in measured)}
            print(line(f"{key}, {clients}", results[key, clients]), flush=True)
        batched = servers[2]
        for server in servers:
            if server is not batched:
                server.stop()
        servers = [batched]

        def push(start_at: float) -> float:
            time.sleep(max(0.0, start_at + args.seconds / 3 - time.time()))
            shutil.copytree(base / "1", base / ".tmp-push")
            os.rename(base / ".tmp-push", base / "2")
            pushed = time.time()
            while get(batched.root + "/healthz").get("serving_version") != 2 and time.time() < pushed + 120:
                time.sleep(0.05)
            return time.time() - pushed

        results["push", n] = swap = batched.measure(n, args, bodies_file, during=push)
        print(line(f"batched, {n}, a version pushed mid-run", swap))
        print(f"version 2 serving {swap['extra']:.2f} s after the push; failed requests: {swap['failed']}")
        for r in [r for measured in rounds.values() for r in measured] + [swap]:
            for e in r["errors"]:
                print("  error:", e)

        def ratio(a, b, what, aim=None):
            """The median of the per-round ratios of a to b (rounds pair measurements taken seconds apart)."""
            per_round = sorted(x["rps"] / max(y["rps"], 1e-9) for x, y in zip(rounds[a], rounds[b]))
            value = per_round[len(per_round) // 2]
            verdict = f"(aim >= {aim}: {'met' if value >= aim else 'NOT met'})" if aim else ""
            spread = ", ".join(f"{x:.2f}" for x in per_round)
            print(f"{what:<58} {value:5.2f}  {verdict:<24} rounds: {spread}")

        ratio(("unbatched", 1), ("bare", 1), "unbatched / bare handler req/s, 1 connection", 0.9)
        ratio(("unbatched", n), ("bare", n), f"unbatched / bare handler req/s, {n} connections", 0.9)
        ratio(("batched", n), ("bare", n), f"batched / best peer (bare handler) req/s, {n} connections", 2)
        ratio(("batched", 1), ("unbatched", 1), "batched / unbatched req/s, 1 connection", 0.9)
        ratio(("capture on, batched", n), ("batched", n), f"capture on / off req/s, {n} connections", 0.95)
        ratio(("gRPC batched", 1), ("batched", 1), "gRPC / REST (batched) req/s, 1 connection", 1.2)
        ratio(("gRPC batched", n), ("batched", n), f"gRPC / REST (batched) req/s, {n} connections", 1.0)
        ratio(("workers 2 unbatched", n), ("unbatched", n), f"workers 2 / 1 (unbatched) req/s, {n} connections")
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
