"""What test_cluster.py reads back from a cluster run: where each step ran (its engine event), an asset's
materialization metadata (from the PostgreSQL event log), and the processes of the cluster's members (by their
TRAINPIPE_HOME), for the chaos tests to find the Celery worker process running one."""

import json
from pathlib import Path

from dagster import DagsterEventType


def engine_events(instance, run_id: str) -> list:
    return [
        e.dagster_event
        for e in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)
        if e.dagster_event is not None
    ]


def step_workers(instance, run_id: str) -> dict[str, str]:
    """step key -> the Celery worker (node name) that ran it, from its engine event."""
    found = {}
    for event in engine_events(instance, run_id):
        metadata = event.engine_event_data.metadata if event.engine_event_data else {}
        if "Celery worker" in metadata:
            found[event.step_key] = metadata["Celery worker"].value
    return found


def materialization(instance, run_id: str, asset: str) -> dict:
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        materialization = record.dagster_event.event_specific_data.materialization
        if materialization.asset_key.to_user_string() == asset:
            return materialization.metadata
    raise AssertionError(f"no {asset} materialization in run {run_id}")


def member_processes(home) -> list[tuple[int, str, list[bytes]]]:
    """(pid, command line, environment) of every process of this cluster (its TRAINPIPE_HOME) running a training
    rank or a tuning worker, or a trainpipe worker command (which no longer exists)."""
    found, mark = [], f"TRAINPIPE_HOME={home}".encode()
    kinds = ("model.training_workers", "model.tuning_workers", "training-worker", "tuning-worker")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes().split(b"\0") if any(k in command for k in kinds) else []
        except OSError:
            continue
        if mark in environ:
            found.append((int(entry.name), command, environ))
    return found


def rank_1(home) -> tuple[int, int] | None:
    """(pid of rank 1's process, pid of the Celery worker process running its task), when it runs."""
    for pid, command, environ in member_processes(home):
        try:
            parent = parent_of(pid)
        except (OSError, ValueError):
            continue
        config = next((e[len(b"TF_CONFIG=") :] for e in environ if e.startswith(b"TF_CONFIG=")), b"{}")
        if "model.training_workers" in command and json.loads(config).get("task") == {"type": "worker", "index": 0}:
            return pid, parent
    return None


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
