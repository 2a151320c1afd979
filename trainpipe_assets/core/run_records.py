"""The event log kept true to the disk and to the processes that ran:

- a serving version written by a run that died between the folder's rename and its `pushed_model` event is recorded
  (from the push record inside the version) the next time anything asks which version serves, as an event of the
  run that wrote it at the time it reached disk;
- a run whose process died (kill -9, OOM) is marked failed instead of staying STARTED forever: each step tags its run
  with its process id, and a run still STARTED whose process is gone from this host is reported failed."""

from __future__ import annotations

import datetime as dt
import os
import socket
from pathlib import Path

from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    MetadataValue,
    RunsFilter,
)
from dagster._core.events import StepMaterializationData

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.serving_layout import PUSH_RECORD, list_versions, read_push_record, serving_version

PUSHED_BY_RUN, PUSHED_AT = "pushed_by_run", "pushed_at"  # a pushed_model event's writer: run id, ISO time
PID_TAG = "trainpipe/pid"
HOST_TAG = "trainpipe/host"
UNFINISHED = {
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
}


def tag_run_process(instance: DagsterInstance, run_id: str) -> None:
    instance.add_run_tags(run_id, {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_dead_runs(instance: DagsterInstance) -> list[str]:
    """Mark failed every STARTED run whose tagged process on this host no longer exists; returns their ids."""
    failed = []
    for run in instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED]), limit=200):
        pid, host = run.tags.get(PID_TAG), run.tags.get(HOST_TAG)
        if not pid or host != socket.gethostname() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        instance.report_run_failed(
            run, message=f"the run's process {pid} on {host} is gone (killed?); marked failed by trainpipe"
        )
        failed.append(run.run_id)
    return failed


def _recorded_versions(instance: DagsterInstance) -> set[int]:
    records = instance.fetch_materializations(AssetKey("pushed_model"), limit=5000).records
    return {int(v) for r in records if (v := md.value(r.asset_materialization.metadata, md.VERSION)) is not None}


def push_time(serving_dir: Path, version: int, record: dict) -> float:
    """When a version reached disk: its PUSH.json's `pushed_at` (written just before the rename), else the file's
    modification time (versions pushed before `pushed_at` existed)."""
    if record.get("pushed_at"):
        return dt.datetime.fromisoformat(record["pushed_at"]).timestamp()
    return (Path(serving_dir) / str(version) / PUSH_RECORD).stat().st_mtime


def record_unrecorded_pushes(instance: DagsterInstance, serving_dir: Path) -> list[int]:
    """Write the missing `pushed_model` event of every version on disk the event log does not know but one of its runs
    pushed (PUSH.json names the run), unless that run is still running (it will record it itself). The event is the
    writer's: in that run's log, at the time in PUSH.json, so history names who pushed it and when. Returns the
    versions recorded."""
    serving_dir = Path(serving_dir)
    fail_dead_runs(instance)  # first: a push whose run died is then told from one still in progress
    on_disk = list_versions(serving_dir)
    if not on_disk:
        return []
    missing = sorted(set(on_disk) - _recorded_versions(instance))
    recorded = []
    for version in missing:
        record = read_push_record(serving_dir, version) or {}
        run = instance.get_run_by_id(record["run_id"]) if record.get("run_id") else None
        # Only a push by one of this event log's own runs that ended without recording it; a version pushed under
        # another event log (or before push records existed) is not this log's to claim.
        if run is None or run.status in UNFINISHED:
            continue
        pushed_at = push_time(serving_dir, version, record)
        when = dt.datetime.fromtimestamp(pushed_at, dt.timezone.utc).isoformat(timespec="seconds")
        reason = (
            f"version {version} reached disk at {when}, pushed by run {run.run_id} ({run.status.value}), "
            "which ended before recording it"
        )
        materialization = AssetMaterialization(
            asset_key="pushed_model",
            partition=record.get("partition"),
            description=reason,
            metadata={
                md.VERSION: version,
                md.SERVING_VERSION: serving_version(serving_dir),
                md.SERVING_PATH: MetadataValue.path(str(serving_dir / str(version))),
                md.MODEL_NAME: serving_dir.name,
                md.EVENT: "push recorded after the fact",
                md.REASON: reason,
                PUSHED_BY_RUN: run.run_id,
                PUSHED_AT: when,
            },
        )
        event = DagsterEvent(
            event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
            job_name=run.job_name,
            step_key="pushed_model",
            event_specific_data=StepMaterializationData(materialization),
            message=reason,
        )
        instance.report_dagster_event(event, run_id=run.run_id, timestamp=pushed_at)
        recorded.append(version)
    return recorded
