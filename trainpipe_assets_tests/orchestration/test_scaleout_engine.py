"""The engine side of scale-out against a real Redis, without workers: ranks no worker takes fail after the start
timeout naming the rank and the queue, and a member whose heartbeat stops in the result backend is lost."""

import time

import pytest


def test_a_rank_no_worker_takes_fails_after_the_start_timeout(redis_port, tmp_path):
    """Ranks sent to a queue no worker listens on: the training fails after training.start_timeout, naming the rank
    and the queue (and revokes the task)."""
    from trainpipe_assets.model.training_workers import DistributedTrainingError, train_in_processes
    from trainpipe_assets.module.api import FnArgs
    from trainpipe_assets.scaleout.members import Engine

    broker, backend = f"redis://127.0.0.1:{redis_port}/0", f"redis://127.0.0.1:{redis_port}/1"
    engine = Engine(broker, backend, "nobody-listens")
    started = time.monotonic()
    with pytest.raises(DistributedTrainingError, match="no worker took rank 1 on queue nobody-listens within 3 s"):
        train_in_processes(tmp_path / "module.py", FnArgs(), 2, tmp_path / "logs", engine=engine, start_timeout=3)
    assert time.monotonic() - started < 30


def test_a_member_whose_heartbeat_stops_is_lost(redis_port, tmp_path, monkeypatch):
    """A worker that dies whole (no process left to record the task's end) leaves its task's last state in the
    result backend: once its heartbeat has not changed for LOST_SECONDS the member is lost, naming its worker and
    with the log tail it last reported. (The state is written here as a worker writes it.)"""
    from trainpipe_assets.scaleout import members
    from trainpipe_assets.scaleout.supervise import MemberError, supervise
    from trainpipe_assets.scaleout.tasks import PROGRESS

    app = members.celery_app(f"redis://127.0.0.1:{redis_port}/0", f"redis://127.0.0.1:{redis_port}/1")
    member = members.TaskMember(app, "rank 1", {"log": str(tmp_path / "gone.log")}, "nobody-listens")
    meta = {"worker": "gpu-1@box", "host": "box", "port": 1234, "pid": 1, "beat": 7, "tail": "step 41/100"}
    app.backend.store_result(member.task.id, meta, PROGRESS)
    monkeypatch.setattr(members, "LOST_SECONDS", 1.0)
    with pytest.raises(MemberError) as lost:
        supervise([member], start_timeout=60, finish_grace=60)
    message = str(lost.value)
    assert message.startswith("rank 1 stopped answering (no heartbeat for 1 s") and "gpu-1@box" in message, message
    assert message.endswith("step 41/100"), message
    member.cancel()
    member.forget()
