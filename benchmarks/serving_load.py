"""`trainpipe serve` under load over loopback HTTP: single-example :predict requests from keep-alive clients.

Runs, each for --seconds: unbatched with one client (latency), unbatched with --clients concurrent clients, the same
with --enable-batching, and batched while a new version is pushed (copy to a temp folder + rename) in the middle,
counting failed requests (must be 0). Aims on 2 cores: p50 <= 5 ms for one client unbatched, >= 1000 requests/s
batched. The servers serve a temporary copy of the model (the version serving under --model-base-path), so the push
never touches it. The clients are separate processes (--client-procs) of http.client threads, so the client is not
the bottleneck of a GIL.

    # after `make demo`:
    .venv/bin/python benchmarks/serving_load.py --model-base-path $TRAINPIPE_HOME/serving/trips_model
"""

import argparse
import base64
import glob
import gzip
import http.client
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve()


def read_tfrecords(paths: list[str]):
    """Records of gzipped TFRecord files (length, crc, data, crc), without TensorFlow."""
    for path in paths:
        with gzip.open(path, "rb") as f:
            while header := f.read(12):
                (length,) = struct.unpack("<Q", header[:8])
                yield f.read(length)
                f.read(4)


def client_worker(url: str, threads: int, start_at: float, seconds: float, bodies_file: str) -> None:
    """One client process: `threads` keep-alive connections sending bodies round-robin; prints JSON results."""
    bodies = [json.dumps(b).encode() for b in json.loads(Path(bodies_file).read_text())]
    parts = urlsplit(url)
    results = []  # per thread: (latencies, failures, errors)

    def run(offset: int):
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        latencies, failures, errors, i = [], 0, [], offset
        while time.time() < start_at:
            time.sleep(0.001)
        end = start_at + seconds
        while time.time() < end:
            body = bodies[i % len(bodies)]
            i += threads
            began = time.perf_counter()
            try:
                connection.request("POST", parts.path, body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as e:
                failures, errors = failures + 1, errors + [repr(e)]
                connection.close()
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                continue
            if response.status != 200:
                failures, errors = failures + 1, errors + [f"{response.status} {data[:200]!r}"]
            else:
                latencies.append(time.perf_counter() - began)
        results.append((latencies, failures, errors))

    workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(
        json.dumps(
            {
                "latencies": [x for r in results for x in r[0]],
                "failures": sum(r[1] for r in results),
                "errors": [e for r in results for e in r[2]][:5],
            }
        )
    )


def load(url: str, clients: int, procs: int, seconds: float, bodies_file: str, during=None) -> dict:
    """Run `clients` connections spread over `procs` processes for `seconds`; `during(start_at)` runs meanwhile."""
    procs = max(1, min(procs, clients))
    start_at = time.time() + 0.5
    children = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE),
                "--client-worker",
                url,
                str(clients // procs + (k < clients % procs)),
                str(start_at),
                str(seconds),
                bodies_file,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in range(procs)
    ]
    extra = during(start_at) if during else None
    results = [json.loads(c.communicate()[0]) for c in children]
    latencies = sorted(x for r in results for x in r["latencies"])

    def pick(q):
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")

    return {
        "rps": len(latencies) / seconds,
        "p50": pick(0.50),
        "p99": pick(0.99),
        "ok": len(latencies),
        "failed": sum(r["failures"] for r in results),
        "errors": [e for r in results for e in r["errors"]][:5],
        "extra": extra,
    }


def start_server(name: str, base: Path, *args: str) -> tuple[subprocess.Popen, str]:
    from trainpipe_assets.core.net import free_port

    port = free_port()
    trainpipe = Path(sys.executable).parent / "trainpipe"
    proc = subprocess.Popen(
        [
            str(trainpipe),
            "serve",
            "--model-name",
            name,
            "--model-base-path",
            str(base),
            "--port",
            str(port),
            "--poll-seconds",
            "0.5",
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, f"http://127.0.0.1:{port}"


def get(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())
    except OSError:
        return {}


def wait_healthy(roots: list[str], seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not all(get(f"{root}/healthz").get("status") == "ok" for root in roots):
        if time.monotonic() > deadline:
            sys.exit(f"servers not healthy after {seconds} s")
        time.sleep(0.25)


def line(label: str, r: dict) -> str:
    return (
        f"{label:<44} {r['rps']:>8.0f} req/s   p50 {r['p50']:6.2f} ms   p99 {r['p99']:7.2f} ms   "
        f"ok {r['ok']:>6}   failed {r['failed']}"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client-worker":
        url, threads, start_at, seconds, bodies_file = sys.argv[2:7]
        return client_worker(url, int(threads), float(start_at), float(seconds), bodies_file)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model-base-path", required=True, type=Path, help="TF Serving layout: <path>/<version>/saved_model.pb"
    )
    parser.add_argument("--model-name", default="trips_model")
    parser.add_argument(
        "--examples",
        help="gzipped TFRecords of tf.Examples (default: <home>/artifacts/examples/*/Split-eval/*.gz, "
        "else the instances of <home>/predict_request.json, home = base path's grandparent)",
    )
    parser.add_argument("--clients", type=int, default=32, help="concurrent keep-alive connections")
    parser.add_argument("--client-procs", type=int, default=2, help="client processes the connections are spread over")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-timeout-micros", type=int, default=1000)
    args = parser.parse_args()

    sys.path.insert(0, str(HERE.parents[1]))
    from trainpipe_assets.core.serving_layout import serving_version

    source = args.model_base_path
    version = serving_version(source)
    if version is None:
        sys.exit(f"no version under {source}")
    home = source.parent.parent
    files = sorted(glob.glob(args.examples or str(home / "artifacts/examples/*/Split-eval/*.gz")))
    if files:
        instances = [{"b64": base64.b64encode(r).decode()} for _, r in zip(range(2000), read_tfrecords(files))]
    else:
        instances = json.loads((home / "predict_request.json").read_text())["instances"]
    work = Path(tempfile.mkdtemp(prefix="serving-load-"))
    try:
        base = work / args.model_name
        shutil.copytree(source / str(version), base / "1")
        bodies_file = work / "bodies.json"
        bodies_file.write_text(json.dumps([{"instances": [i]} for i in instances]))
        print(
            f"model {args.model_name} version {version} of {source}; "
            f"{len(instances)} distinct single-example requests; "
            f"{args.clients} clients in {args.client_procs} processes; {args.seconds:g} s per run; "
            f"{os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f} before the servers start"
        )
        plain, plain_root = start_server(args.model_name, base)
        batched, batched_root = start_server(
            args.model_name,
            base,
            "--enable-batching",
            "--max-batch-size",
            str(args.max_batch_size),
            "--batch-timeout-micros",
            str(args.batch_timeout_micros),
        )
        try:
            wait_healthy([plain_root, batched_root])
            predict = "/v1/models/" + args.model_name + ":predict"
            for root in (plain_root, batched_root):  # warm-up
                load(root + predict, 2, 1, 1.0, str(bodies_file))
            single = load(plain_root + predict, 1, 1, args.seconds, str(bodies_file))
            print(line("unbatched, 1 client", single))
            unbatched = load(plain_root + predict, args.clients, args.client_procs, args.seconds, str(bodies_file))
            print(line(f"unbatched, {args.clients} clients", unbatched))
            batching = load(batched_root + predict, args.clients, args.client_procs, args.seconds, str(bodies_file))
            print(
                line(
                    f"batched (max {args.max_batch_size}, {args.batch_timeout_micros} us), {args.clients} clients",
                    batching,
                )
            )
            metrics = urllib.request.urlopen(batched_root + "/metrics").read().decode()
            rows = {
                k: float(v)
                for k, v in (line.split() for line in metrics.splitlines() if line.startswith("trainpipe_batch_size_"))
            }
            print(
                f"{'':<44} mean batch "
                f"{rows['trainpipe_batch_size_sum'] / max(1, rows['trainpipe_batch_size_count']):.1f} rows "
                f"over {rows['trainpipe_batch_size_count']:.0f} model calls (all runs on this server)"
            )

            plain.terminate()  # not needed any more: leave the CPUs to the server under test

            def push(start_at: float) -> float:
                time.sleep(max(0.0, start_at + min(2.0, args.seconds / 3) - time.time()))
                tmp = base / ".tmp-push"
                shutil.copytree(base / "1", tmp)
                os.rename(tmp, base / "2")
                pushed = time.time()
                while get(batched_root + "/healthz").get("serving_version") != 2 and time.time() < pushed + 120:
                    time.sleep(0.05)
                return time.time() - pushed

            seconds = max(args.seconds, 10.0)
            swap = load(batched_root + predict, args.clients, args.client_procs, seconds, str(bodies_file), during=push)
            print(line("batched, version pushed mid-run", swap))
            print(f"{'':<44} version 2 serving {swap['extra']:.2f} s after the push; failed requests: {swap['failed']}")
            for errors in (single, unbatched, batching, swap):
                for e in errors["errors"]:
                    print("  error:", e)
            print(
                f"ratios: batched/unbatched req/s {batching['rps'] / unbatched['rps']:.2f}; "
                f"unbatched {args.clients} clients / 1 client req/s {unbatched['rps'] / single['rps']:.2f}"
            )
            ok = (
                single["p50"] <= 5
                and batching["rps"] >= 1000
                and swap["failed"] == 0
                and not any(r["failed"] for r in (single, unbatched, batching))
            )
            print(f"aims (p50 <= 5 ms unbatched single, >= 1000 req/s batched, 0 failed): {'met' if ok else 'NOT met'}")
        finally:
            for proc in (plain, batched):
                proc.terminate()
                proc.wait(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
