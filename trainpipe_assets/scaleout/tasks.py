"""The Celery task every member of a distributed step runs as (worker side). dagster-celery workers import this
module (`dagster-celery worker start -A dagster_celery.app ... -i trainpipe_assets.scaleout.tasks`), which registers
the task on dagster-celery's own app (`shared_task`): the same workers run steps and members.

`run_member(spec)`: spec = {"name", "entry", "job", "env", "log", "cluster" (a task id or None), "wait_seconds"}.
The task reports {"worker", "host", "port", "pid", "beat", "tail"} as its state PROGRESS, a port of this machine
included when the member needs an address; with "cluster" it waits until the step stores the cluster under that id
(a result: {"env": {member name: environment}}), then runs the member's process and beats every BEAT_SECONDS while it
runs. Exit 0 returns {"worker", "result"}; any other exit raises MemberFailed with the end of the member's log. If
the task is revoked, or its worker process dies, the member's process dies with it (process.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from celery import shared_task

from trainpipe_assets.core.net import free_port
from trainpipe_assets.scaleout import process

TASK_NAME = "trainpipe.scaleout.run_member"
PROGRESS = "PROGRESS"
BEAT_SECONDS = 2.0
ADVERTISE_ENV = "TRAINPIPE_ADVERTISE_HOST"  # what other machines reach this worker at (default: its host name)


class MemberFailed(RuntimeError):
    """The member's process exited non-zero, or never got its cluster; the message ends with its log."""


def advertised_host() -> str:
    return os.environ.get(ADVERTISE_ENV) or socket.gethostname()


@shared_task(bind=True, name=TASK_NAME, acks_late=False, track_started=False)
def run_member(self, spec: dict) -> dict:
    worker = self.request.hostname or socket.gethostname()
    log = Path(spec["log"])
    state = {"worker": worker, "host": advertised_host(), "port": free_port("0.0.0.0"), "pid": os.getpid(), "beat": 0}

    def beat(**more) -> None:
        state["beat"] += 1
        self.update_state(state=PROGRESS, meta={**state, **more, "tail": process.tail(log, 1500)})

    beat()
    env = dict(spec.get("env") or {})
    if spec.get("cluster"):
        cluster = self.app.AsyncResult(spec["cluster"])
        deadline = last_beat = time.monotonic()
        deadline += float(spec.get("wait_seconds", 600))
        while cluster.state != "SUCCESS":
            if cluster.state == "FAILURE" or time.monotonic() > deadline:
                raise MemberFailed(f"{spec['name']} on {worker}: the step gave up before the cluster was complete")
            time.sleep(0.25)
            if time.monotonic() - last_beat >= BEAT_SECONDS:
                beat()
                last_beat = time.monotonic()
        env.update(cluster.result["env"][spec["name"]])
    proc = process.start(spec["entry"], spec["job"], env, log)
    try:
        while True:
            try:
                code = proc.wait(timeout=BEAT_SECONDS)
                break
            except subprocess.TimeoutExpired:
                beat(running=True)
    finally:
        process.stop(proc)
    if code != 0:
        raise MemberFailed(f"{spec['name']} exited with {code} on {worker}; its log ends:\n{process.tail(log)}")
    return {"worker": worker, "result": process.result_of(log)}
