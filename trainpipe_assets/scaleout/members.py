"""The members of a distributed step as the step sees them, wherever they run: `status()` (waiting for a worker,
running, done with its result, failed or lost, with why), `worker` (the Celery worker running it, or this process's
host), `address`, `log_tail()` and `cancel()`."""

from __future__ import annotations

import dataclasses
import functools
import socket
import time
from pathlib import Path
from typing import Optional

from trainpipe_assets.scaleout import process
from trainpipe_assets.scaleout.tasks import PROGRESS, TASK_NAME

LOST_SECONDS = 30.0  # a running task whose heartbeat has not changed this long (its worker died) is lost

WAITING, RUNNING, DONE, FAILED, LOST = "waiting", "running", "done", "failed", "lost"
ENDED = (DONE, FAILED, LOST)


@dataclasses.dataclass
class Status:
    phase: str
    detail: str = ""
    result: Optional[dict] = None


@dataclasses.dataclass
class Engine:
    """Celery for a step's members: the broker and result backend, and the queue the member tasks go to."""

    broker: str
    backend: str
    queue: str


def engine_for(execution, asset: str, queue: Optional[str]) -> Optional[Engine]:
    """The engine when the steps run on Celery (`execution` settings), None for local processes; the queue is the
    given one, else the asset's."""
    if execution.executor != "celery":
        return None
    if not execution.backend:
        raise ValueError("execution.backend is needed for members on Celery: their addresses go through it")
    return Engine(execution.broker, execution.backend, queue or execution.queues.get(asset, "dagster"))


@functools.lru_cache(maxsize=None)
def celery_app(broker: str, backend: str):
    """The step's client of the engine: sends member tasks by name and reads their state from the result backend."""
    from celery import Celery

    return Celery("trainpipe_scaleout", broker=broker, backend=backend, set_as_current=False)


def step_worker() -> str:
    """The Celery worker running this step (it runs inside a dagster-celery task), else this host."""
    from celery import current_task

    request = getattr(current_task, "request", None)
    return getattr(request, "hostname", None) or f"step process on {socket.gethostname()}"


class LocalMember:
    """A child process of the step."""

    def __init__(self, name: str, entry: str, job: dict, env: dict, log: Path, address: Optional[str] = None):
        self.name, self.log, self.address, self.queue = name, log, address, None
        self.worker = step_worker()
        self.proc = process.start(entry, job, env, log)

    def status(self) -> Status:
        code = self.proc.poll()
        if code is None:
            return Status(RUNNING)
        if code == 0:
            return Status(DONE, result=process.result_of(self.log))
        return Status(FAILED, f"exited with {code}")

    def log_tail(self) -> str:
        return process.tail(self.log)

    def cancel(self) -> None:
        process.stop(self.proc)

    def forget(self) -> None:
        pass


class TaskMember:
    """A Celery task on `queue`: its state in the result backend says which worker took it, its address and heartbeat;
    a task whose worker process died is a FAILURE (WorkerLostError) or, if the whole worker died, a silent heartbeat."""

    def __init__(self, app, name: str, spec: dict, queue: str):
        self.name, self.log, self.queue, self.worker, self.address = name, Path(spec["log"]), queue, None, None
        self.meta: dict = {}
        self.task = app.send_task(TASK_NAME, args=[{**spec, "name": name}], queue=queue)
        self._beat, self._beat_seen = None, time.monotonic()

    def status(self) -> Status:
        state = self.task.state
        if state == "PENDING":
            return Status(WAITING)
        info = self.task.info
        if state == PROGRESS and isinstance(info, dict):
            self.meta = info
            self.worker = info.get("worker")
            self.address = f"{info['host']}:{info['port']}"
            if info.get("beat") != self._beat:
                self._beat, self._beat_seen = info.get("beat"), time.monotonic()
            elif time.monotonic() - self._beat_seen > LOST_SECONDS:
                return Status(LOST, f"stopped answering (no heartbeat for {LOST_SECONDS:.0f} s: its worker is gone)")
            return Status(RUNNING)
        if state == "SUCCESS":
            self.worker = info.get("worker", self.worker)
            return Status(DONE, result=info.get("result"))
        if state == "REVOKED":  # also what Celery records when the worker process running the task is killed
            return Status(FAILED, f"was terminated (its Celery worker process was killed, or the task revoked: {info})")
        if state == "FAILURE":
            first = str(info).split("\n")[0]
            return Status(FAILED, f"failed: {type(info).__name__}: {first}")
        return Status(RUNNING)  # STARTED, RETRY or a state of a newer Celery: not ended

    def log_tail(self) -> str:
        return process.tail(self.log) or self.meta.get("tail", "")

    def cancel(self) -> None:
        if self.task.state not in ("SUCCESS", "FAILURE", "REVOKED"):
            self.task.revoke(terminate=True)

    def forget(self) -> None:
        try:
            self.task.forget()
        except Exception:  # noqa: BLE001 - a result left in the backend expires by itself
            pass
