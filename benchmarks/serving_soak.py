"""A soak of `trainpipe serve`: --minutes of mixed REST and gRPC :predict load while a new version is pushed (copy +
rename, as the pusher does) and the oldest deleted every --cycle-seconds, through the one-model shortcut with its
--model-version-policy (latest:1 by default, so the number of loaded versions stays constant).

The model (trainpipe_assets_tests/serving/tagged_model.py, --weights float32 variables to give it some size) answers
the version it was loaded from, so every answer says which version gave it. Printed at the end, with each aim marked
met or NOT met:
* failed requests (aim: 0);
* versions answered, and whether every answer came from a complete version (one pushed whole) and, for gRPC, the
  version the response names is the one that answered (aim: yes);
* resident memory once per cycle, just before the push, when the previous push has been swapped in and its
  predecessor unloaded (so at a constant number of loaded versions); the slope per cycle after --warmup-cycles by
  least squares, with its standard error (aim: within noise, i.e. under 2 standard errors or under 0.5 MB per cycle);
* threads and file descriptors at the same moments (aim: flat after warm-up: the last no more than 2 above the first).

    .venv/bin/python benchmarks/serving_soak.py [--minutes 2] [--cycle-seconds 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))

from trainpipe_assets_tests.serving.tagged_model import push, save_tagged  # noqa: E402


def proc_figures(pid: int) -> tuple[float, int, int]:
    """(resident MB, threads, open file descriptors) of the server process."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    rss = int(status["VmRSS"].split()[0]) / 1024
    return rss, int(status["Threads"]), len(os.listdir(f"/proc/{pid}/fd"))


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = {"rest": 0, "grpc": 0}
        self.failed: list[str] = []
        self.versions: dict[int, int] = {}
        self.mismatched = 0  # gRPC answers whose model_spec.version is not the version that answered

    def answered(self, kind: str, version: int, named: int | None = None) -> None:
        with self.lock:
            self.ok[kind] += 1
            self.versions[version] = self.versions.get(version, 0) + 1
            if named is not None and named != version:
                self.mismatched += 1

    def fail(self, what: str) -> None:
        with self.lock:
            self.failed.append(what[:300])


def rest_client(port: int, stop: threading.Event, tally: Tally) -> None:
    body = json.dumps({"instances": ["abc", "de"]})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while not stop.is_set():
        try:
            connection.request("POST", "/v1/models/m:predict", body, {"content-type": "application/json"})
            response = connection.getresponse()
            answer = json.loads(response.read())
            if response.status != 200:
                tally.fail(f"REST {response.status}: {answer}")
                continue
            tally.answered("rest", answer["predictions"][0]["version"])
        except Exception as e:  # a dropped connection is a failure too
            tally.fail(f"REST {type(e).__name__}: {e}")
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.close()


def grpc_client(port: int, stop: threading.Event, tally: Tally) -> None:
    import grpc
    import numpy as np
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=2)])
    request.inputs["examples"].CopyFrom(
        tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=shape, string_val=[b"abc", b"de"])
    )
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        while not stop.is_set():
            try:
                response = stub.Predict(request, timeout=30)
                tensor = response.outputs["version"]
                values = tensor.int64_val or np.frombuffer(tensor.tensor_content, np.int64)
                tally.answered("grpc", int(values[0]), response.model_spec.version.value)
            except grpc.RpcError as e:
                tally.fail(f"gRPC {e.code().name}: {e.details()}")


def slope(values: list[float]) -> tuple[float, float]:
    """Least-squares slope per step and its standard error."""
    n = len(values)
    if n < 3:
        return float("nan"), float("nan")
    xs = range(n)
    mx, my = (n - 1) / 2, statistics.fmean(values)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, values)) / sxx
    residuals = [y - (my + b * (x - mx)) for x, y in zip(xs, values)]
    se = (sum(r * r for r in residuals) / (n - 2) / sxx) ** 0.5
    return b, se


def serving_version(root: str) -> int | None:
    try:
        with urllib.request.urlopen(f"{root}/healthz", timeout=10) as response:
            return json.loads(response.read()).get("serving_version")
    except OSError:
        return None


def loaded_versions(root: str) -> list[str]:
    try:
        with urllib.request.urlopen(f"{root}/v1/models/m", timeout=10) as response:
            return [s["version"] for s in json.loads(response.read())["model_version_status"]]
    except OSError:
        return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--cycle-seconds", type=float, default=10.0, help="a push and a deletion this often")
    parser.add_argument("--warmup-cycles", type=int, default=3)
    parser.add_argument("--keep", type=int, default=2, help="versions left on disk after each deletion")
    parser.add_argument("--policy", default="latest:1", help="--model-version-policy of the server")
    parser.add_argument("--weights", type=int, default=2_000_000, help="float32 weights per version (8 MB)")
    parser.add_argument("--rest-clients", type=int, default=2)
    parser.add_argument("--grpc-clients", type=int, default=2)
    args = parser.parse_args()
    from trainpipe_assets.serving.client import free_port

    root_dir = Path(tempfile.mkdtemp(prefix="serving-soak-"))
    template, base = save_tagged(root_dir / "template", args.weights), root_dir / "m"
    for version in range(1, args.keep + 1):
        push(template, base, version)
    complete = set(range(1, args.keep + 1))
    port, grpc_port = free_port(), free_port()
    command = [str(Path(sys.executable).parent / "trainpipe"), "serve", "--model-name", "m", "--model-base-path"]
    command += [str(base), "--port", str(port), "--grpc-port", str(grpc_port), "--poll-seconds", "0.5"]
    command += ["--model-version-policy", args.policy]
    log = open(root_dir / "serve.log", "wb")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    root = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while serving_version(root) != args.keep:
        if server.poll() is not None or time.monotonic() > deadline:
            sys.exit("server did not start: " + (root_dir / "serve.log").read_text()[-2000:])
        time.sleep(0.25)
    tally, stop = Tally(), threading.Event()
    clients = [threading.Thread(target=rest_client, args=(port, stop, tally)) for _ in range(args.rest_clients)]
    clients += [threading.Thread(target=grpc_client, args=(grpc_port, stop, tally)) for _ in range(args.grpc_clients)]
    for client in clients:
        client.start()
    samples, version, started = [], args.keep, time.monotonic()
    pushes = deletions = 0
    policy = args.policy.split(":")
    expected = int(policy[1]) if policy[0] == "latest" and len(policy) > 1 else 1 if policy == ["latest"] else None
    try:
        while time.monotonic() - started < args.minutes * 60:
            cycle_end = time.monotonic() + args.cycle_seconds
            while time.monotonic() < cycle_end:  # the last push serving and the version before it unloaded
                if serving_version(root) == version and expected in (None, len(loaded_versions(root))):
                    break
                time.sleep(0.2)
            time.sleep(1.5)  # a few polls: the store releases memory again at the poll after an unload
            samples.append((*proc_figures(server.pid), len(loaded_versions(root))))
            version += 1
            push(template, base, version)
            complete.add(version)
            pushes += 1
            on_disk = sorted(int(p.name) for p in base.iterdir() if p.name.isdigit())
            for old in on_disk[: -args.keep]:
                shutil.rmtree(base / str(old))
                deletions += 1
            time.sleep(max(0.0, cycle_end - time.monotonic()))
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=60)
        server.terminate()
        code = server.wait(timeout=60)
        log.close()
    report(args, tally, samples, complete, pushes, deletions, code, time.monotonic() - started)
    shutil.rmtree(root_dir, ignore_errors=True)
    return 0


def report(args, tally: Tally, samples: list, complete: set, pushes: int, deletions: int, code: int, seconds: float):
    mark = {True: "met", False: "NOT met"}
    after = samples[args.warmup_cycles :]
    rss = [s[0] for s in after]
    b, se = slope(rss)
    threads, fds = [s[1] for s in after], [s[2] for s in after]
    answered = sorted(tally.versions)
    incomplete = [v for v in answered if v not in complete]
    total = sum(tally.ok.values())
    model = f"{args.weights * 4 >> 20} MB model"
    print(f"serving soak: {seconds / 60:.1f} min, --model-version-policy {args.policy}, {model}")
    clients = f"{args.rest_clients} REST + {args.grpc_clients} gRPC clients"
    print(f"{clients}; every {args.cycle_seconds:g} s a push and a deletion")
    print(f"pushes, deletions     {pushes}, {deletions}")
    print(f"requests answered     {total} (REST {tally.ok['rest']}, gRPC {tally.ok['grpc']}), {total / seconds:.0f}/s")
    print(f"failed requests       {len(tally.failed)}  [{mark[not tally.failed]}]")
    for failure in tally.failed[:5]:
        print(f"    {failure}")
    ok = not incomplete and not tally.mismatched
    span = f"{answered[0]}..{answered[-1]}" if answered else "-"
    print(f"versions answered     {len(answered)}: {span}")
    print(
        f"from complete versions {'all' if ok else f'NO: {incomplete} not pushed whole, {tally.mismatched} mismatched'}"
        f"  [{mark[ok]}]"
    )
    print("cycle  loaded  rss_mb  threads  fds")
    for i, (mb, th, fd, loaded) in enumerate(samples):
        print(f"{i:5d}  {loaded:6d}  {mb:6.1f}  {th:7d}  {fd:4d}{'  (warm-up)' if i < args.warmup_cycles else ''}")
    flat_memory = b == b and (b < 2 * se or b < 0.5)
    print(f"memory slope          {b:+.2f} MB/cycle (standard error {se:.2f}) after warm-up  [{mark[flat_memory]}]")
    flat_threads = bool(threads) and threads[-1] - threads[0] <= 2
    flat_fds = bool(fds) and fds[-1] - fds[0] <= 2
    for what, values, flat in (("threads", threads, flat_threads), ("file descriptors", fds, flat_fds)):
        print(f"{what:21} {values[0] if values else '-'} -> {values[-1] if values else '-'}  [{mark[flat]}]")
    print(f"exit status on SIGTERM {code}  [{mark[code == 0]}]")


if __name__ == "__main__":
    sys.exit(main())
