"""`new_data_sensor`: a new or changed CSV in the landing folder requests `ingest_job` for its day.
`retrain_on_new_data_sensor`: once ingestion is quiet, days whose `example_anomalies` passed since the last tick
request one `training_job` for the latest window."""

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInvariantViolationError,
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.settings import TrainpipeConfig
from trainpipe_assets.data.sources.csv_source import IN_PROGRESS_SUFFIXES, file_sha256, parse_file_name
from trainpipe_assets.orchestration.loaded_partitions import daily_partitions

SETTLE_SECONDS = 30  # a file is complete once untouched this long, or once its size and mtime held for a tick


@dataclass
class IngestPlan:
    run_requests: list[RunRequest] = field(default_factory=list)
    cursor: dict = field(default_factory=dict)
    waiting: list[str] = field(default_factory=list)
    unparseable: list[str] = field(default_factory=list)
    outside_partitions: list[str] = field(default_factory=list)

    def skip_reason(self) -> str:
        parts = []
        if self.unparseable:
            parts.append(f"file names not like <name>_YYYY-MM-DD.csv: {', '.join(self.unparseable)}")
        if self.outside_partitions:
            parts.append(f"days without a partition yet (or before the first): {', '.join(self.outside_partitions)}")
        if self.waiting:
            parts.append(f"still being written, retried next tick: {', '.join(self.waiting)}")
        return "; ".join(parts) or "no new or changed files"


def plan_ingest(landing_dir: Path, cursor: dict, partition_keys: set[str], now: float | None = None) -> IngestPlan:
    """Cursor in -> run requests and cursor out. The cursor holds each file's last stat and the content hash that
    was last requested, so a file is ingested once per content."""
    now = time.time() if now is None else now
    plan = IngestPlan()
    changed_days: set[str] = set()
    day_files: dict[str, list[tuple[str, str]]] = {}
    paths = sorted(p for p in landing_dir.iterdir() if p.is_file()) if landing_dir.is_dir() else []
    for path in paths:
        if path.name.endswith(IN_PROGRESS_SUFFIXES):
            plan.waiting.append(path.name)
            continue
        if path.name.startswith("."):
            continue
        parsed = parse_file_name(path.name)
        if parsed is None:
            plan.unparseable.append(path.name)
            continue
        day = parsed[1].isoformat()
        st = path.stat()
        seen = dict(cursor.get(path.name, {}))
        stat_now = [st.st_size, st.st_mtime_ns]
        settled = seen.get("stat") == stat_now or now - st.st_mtime >= SETTLE_SECONDS
        if not settled:
            plan.cursor[path.name] = {**seen, "stat": stat_now}
            plan.waiting.append(path.name)
            continue
        if seen.get("hashed_stat") != stat_now:
            seen["sha256"], seen["hashed_stat"] = file_sha256(path), stat_now
        seen["stat"] = stat_now
        plan.cursor[path.name] = seen
        day_files.setdefault(day, []).append((path.name, seen["sha256"]))
        if seen.get("requested") != seen["sha256"]:
            if day in partition_keys:
                changed_days.add(day)
            else:
                plan.outside_partitions.append(path.name)
    for day in sorted(changed_days):
        fingerprint = hashlib.sha256(json.dumps(sorted(day_files[day])).encode()).hexdigest()[:16]
        plan.run_requests.append(
            RunRequest(
                run_key=f"ingest:{day}:{fingerprint}",
                partition_key=day,
                tags={"trainpipe/files": ",".join(n for n, _ in day_files[day])},
            )
        )
        for name, sha in day_files[day]:
            plan.cursor[name]["requested"] = sha
    return plan


def _instance(context):
    try:
        return context.instance
    except DagsterInvariantViolationError:  # a context built without one (a unit test): nothing to seed from
        return None


def seed_cursor(instance, landing_dir: Path) -> dict:
    """{file name: {"requested": sha256}} for every landed file the latest examples materialization of its day read
    with the same content (its `source_fingerprint` metadata maps paths to sha256)."""
    if instance is None or not landing_dir.is_dir():
        return {}
    by_day: dict[str, list[Path]] = {}
    for path in landing_dir.iterdir():
        parsed = parse_file_name(path.name) if path.is_file() else None
        if parsed:
            by_day.setdefault(parsed[1].isoformat(), []).append(path)
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("examples"), asset_partitions=sorted(by_day)), limit=10 * len(by_day) + 10
    ).records
    read: dict[str, dict] = {}
    for record in records:  # newest first: the latest materialization of each day counts
        read.setdefault(
            record.partition_key, md.value(record.asset_materialization.metadata, md.SOURCE_FINGERPRINT, {})
        )
    cursor = {}
    for day, paths in by_day.items():
        for path in paths:
            sha = read.get(day, {}).get(str(path))
            if sha is not None and sha == file_sha256(path):
                cursor[path.name] = {"requested": sha}
    return cursor


@sensor(
    job_name="ingest_job",
    minimum_interval_seconds=30,
    description="Ingests each new or changed <name>_YYYY-MM-DD.csv in the landing folder.",
)
def new_data_sensor(context: SensorEvaluationContext, trainpipe: TrainpipeConfig) -> SensorResult:
    """Its first tick (no cursor yet, e.g. turned on after `trainpipe demo` ingested the files) starts from the event
    log: a file whose content the latest `examples` of its day already read is not requested again."""
    cursor = json.loads(context.cursor) if context.cursor else seed_cursor(_instance(context), trainpipe.landing_dir)
    plan = plan_ingest(trainpipe.landing_dir, cursor, set(daily_partitions(context, trainpipe).get_partition_keys()))
    if plan.unparseable:
        context.log.warning(f"ignored files with unparseable names: {plan.unparseable}")
    return SensorResult(
        run_requests=plan.run_requests,
        cursor=json.dumps(plan.cursor, sort_keys=True),
        skip_reason=None if plan.run_requests else plan.skip_reason(),
    )


UNFINISHED = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


@sensor(
    job_name="training_job",
    minimum_interval_seconds=60,
    description="Retrains the latest window after new days were ingested and validated.",
)
def retrain_on_new_data_sensor(context: SensorEvaluationContext):
    """Days whose example_anomalies verdict passed (or was "not checked": no schema yet) since the last tick count as
    new; a failed day never does, also inside a run over a range whose other days passed. Debounced: while any
    ingest run is unfinished the tick waits, so ten files of one day make one retrain."""
    cursor = json.loads(context.cursor) if context.cursor else {}
    busy = context.instance.get_runs_count(RunsFilter(job_name="ingest_job", statuses=UNFINISHED))
    if busy:
        return SkipReason(f"waiting for {busy} ingest run(s) to finish before retraining")
    after = cursor.get("after_storage_id", 0)
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("example_anomalies"), after_storage_id=after), limit=10000, ascending=True
    ).records
    if not records:
        return SkipReason("no newly ingested and validated day")
    after = max(r.storage_id for r in records)
    usable = {md.PASSED, md.NOT_CHECKED}
    verdicts = {r.partition_key: md.value(r.asset_materialization.metadata, md.VERDICT) for r in records}
    days = sorted(day for day, verdict in verdicts.items() if verdict in usable)  # each day's newest verdict
    latest_day = max(days + ([cursor["latest_day"]] if cursor.get("latest_day") else []), default=None)
    context.update_cursor(json.dumps({"after_storage_id": after, "latest_day": latest_day}))
    if not days:
        return SkipReason("the newly ingested days failed example_anomalies")
    return RunRequest(
        run_key=f"retrain:{latest_day}:{after}",
        partition_key=latest_day,
        tags={"trainpipe/trigger": "new data", "trainpipe/new_days": ",".join(days)},
    )
