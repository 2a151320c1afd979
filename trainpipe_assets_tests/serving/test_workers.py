"""`trainpipe serve --workers 2`: two processes answer on one port (told apart by the pid /healthz reports), each
serving the model; they end with their parent, whether it is stopped or killed, and one that ends stops the others
and the parent."""

import os
import signal
import time
from pathlib import Path

import pytest

from trainpipe_assets.serving.client import http_json
from trainpipe_assets_tests.serving.helpers import Server


@pytest.fixture(scope="module")
def doubler(tmp_path_factory) -> Path:
    """A tiny SavedModel (y = 2x), quick to load, in TF Serving's layout."""
    import tensorflow as tf

    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def serve(self, x):
            return {"y": 2.0 * x}

    base = tmp_path_factory.mktemp("workers") / "doubler"
    module = Doubler()
    tf.saved_model.save(module, str(base / "1"), signatures={"serving_default": module.serve})
    return base


def running(pid: int) -> bool:
    """Whether a process is alive (a zombie waiting for init to reap it is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def worker_pids(server: Server, seconds: float = 120) -> set[int]:
    """The pids answering /healthz with 200, each ask on a new connection (a new source port, which SO_REUSEPORT
    hashes over the workers' sockets), until two differ."""
    pids, deadline = set(), time.monotonic() + seconds
    while len(pids) < 2 and time.monotonic() < deadline and server.proc.poll() is None:
        code, body = http_json(f"{server.root}/healthz")
        if code == 200:
            pids.add(body["pid"])
        else:
            time.sleep(0.1)  # not listening or still loading
    assert len(pids) == 2, (pids, server.output()[-2000:])
    return pids


def ended(pids: set[int], seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(running(pid) for pid in pids)


def test_two_workers_answer_on_one_port_and_stop_with_the_parent(doubler):
    server = Server(doubler, "--workers", "2", "--disable-batching", name="doubler")
    try:
        pids = worker_pids(server)
        assert server.proc.pid not in pids  # the parent holds no model and answers nothing
        answers = [http_json(f"{server.root}/v1/models/doubler:predict", {"instances": [1.0, 2.5]}) for _ in range(40)]
        assert answers == [(200, {"predictions": [2.0, 5.0]})] * 40
    finally:
        server.stop()  # SIGTERM to the parent
    assert server.proc.returncode == 0, server.output()[-2000:]
    assert ended(pids), [running(p) for p in pids]


def test_workers_end_when_the_parent_is_killed(doubler):
    server = Server(doubler, "--workers", "2", name="doubler")
    try:
        pids = worker_pids(server)
        os.kill(server.proc.pid, signal.SIGKILL)  # no chance to stop them itself: the kernel tells them
        server.proc.wait()
        assert ended(pids), [running(p) for p in pids]
    finally:
        server.stop()


def test_a_worker_that_ends_stops_the_others_and_the_parent(doubler):
    server = Server(doubler, "--workers", "2", name="doubler")
    try:
        first, second = sorted(worker_pids(server))
        os.kill(first, signal.SIGKILL)  # e.g. the kernel's OOM killer
        assert server.proc.wait(timeout=60) == 1  # for a supervisor to restart the whole
        assert ended({second}), server.output()[-2000:]
        assert f"worker {first} ended (code -9)" in server.output()
    finally:
        server.stop()
