"""`trainpipe serve --workers N`: N server processes answering on one port, for loads that are CPU-bound in Python
(JSON, HTTP) rather than in the model, which one process with its one GIL cannot spread over the cores.

The parent checks that the port is free (a plain bind, which fails on any listener), then binds N listening sockets to
it with SO_REUSEPORT (the kernel spreads new connections over them by address hash, evenly, where one shared socket
would let whichever process wakes first take a burst of connections) and starts each worker as a fresh process (`python
-m trainpipe_assets.serving.main --worker ...` with its ServeOptions as JSON, not a fork of a process that may hold
TensorFlow's threads) with its socket, then closes its own copies, so a worker that dies takes its socket out of the
group. Each worker is a whole `trainpipe serve`: its own model store (each loads every version and follows the pin and
pushes by itself), batcher, metrics (/metrics and /healthz answer for the worker the connection landed on; /healthz says
which: "pid"). The parent holds no model. It stops the workers when it is stopped (SIGTERM, SIGINT) and, if one worker
ends, stops the others and exits with that worker's code, for a supervisor to restart the whole; a worker also ends when
the parent dies, even by SIGKILL (PR_SET_PDEATHSIG)."""

from __future__ import annotations

import ctypes
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time

from trainpipe_assets.serving.options import ServeOptions

PR_SET_PDEATHSIG = 1


def reuseport_sockets(host: str, port: int, n: int) -> list[socket.socket]:
    """n listening sockets on (host, port) sharing it with SO_REUSEPORT; OSError if anything listens there already
    (port 0: a free port, the same for all)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:  # without SO_REUSEPORT: fails on any listener
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        port = probe.getsockname()[1]
    sockets = []
    for _ in range(n):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets


def run_workers(options: ServeOptions) -> int:
    """Start options.workers workers on one port and wait; returns when stopped or when a worker ends."""
    try:
        sockets = reuseport_sockets(options.host, options.port, options.workers)
    except OSError as e:
        raise ValueError(f"cannot listen on {options.host}:{options.port}: {e.strerror or e}") from None
    port = sockets[0].getsockname()[1]
    workers = []
    for sock in sockets:
        worker = dataclasses.replace(options, port=port, workers=1, listen_fd=sock.fileno())
        command = [sys.executable, "-m", "trainpipe_assets.serving.main", "--worker", str(os.getpid())]
        workers.append(subprocess.Popen(command + [worker.to_json()], pass_fds=(sock.fileno(),)))
        sock.close()
    print(f"{len(workers)} workers (pids {', '.join(str(w.pid) for w in workers)}) on port {port}", flush=True)
    stopping = []

    def stop(signum, frame):
        stopping.append(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    code = 0
    while not stopping:
        ended = [w for w in workers if w.poll() is not None]
        if ended:
            code = ended[0].returncode if ended[0].returncode > 0 else 1  # < 0: ended by a signal
            print(
                f"trainpipe serve: worker {ended[0].pid} ended (code {ended[0].returncode}); stopping", file=sys.stderr
            )
            break
        time.sleep(0.2)
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    deadline = time.monotonic() + 30
    for worker in workers:
        try:
            worker.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    return code


def worker_setup(parent_pid: int) -> bool:
    """In a worker, before it serves: end with the parent (even if killed); False if the parent is already gone."""
    import logging

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not glibc/Linux: the parent's stop still reaches the workers
        pass
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return os.getppid() == parent_pid  # else the parent died before prctl took effect
