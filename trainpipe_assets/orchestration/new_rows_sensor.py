"""`new_rows_sensor`: for a SQL source, rows with a key above the cursor request `ingest_job` for their days; a late
row for an old day requests that day again. Rows without a timestamp are counted, never silently dropped."""

import datetime as dt
import json
from dataclasses import dataclass, field

from dagster import RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from trainpipe_assets.core.settings import TrainpipeConfig
from trainpipe_assets.data.sources.sql_source import SqlSource
from trainpipe_assets.orchestration.loaded_partitions import daily_partitions


@dataclass
class SqlIngestPlan:
    run_requests: list[RunRequest] = field(default_factory=list)
    cursor: dict = field(default_factory=dict)
    rows_without_timestamp: int = 0


def _day(value) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return dt.datetime.fromisoformat(str(value)).date().isoformat()


def plan_sql_ingest(rows: list[dict], cursor: dict, partition_keys: set[str]) -> SqlIngestPlan:
    """rows: (ts, pk) of rows above the cursor's key. Days without a partition yet stay pending in the cursor."""
    plan = SqlIngestPlan()
    days = set(cursor.get("pending", []))
    for row in rows:
        if row["ts"] is None:
            plan.rows_without_timestamp += 1
        else:
            days.add(_day(row["ts"]))
    last_key = rows[-1]["pk"] if rows else cursor.get("pk")
    pending = sorted(d for d in days if d not in partition_keys)
    for day in sorted(days - set(pending)):
        plan.run_requests.append(
            RunRequest(run_key=f"sql:{day}:{last_key}", partition_key=day, tags={"trainpipe/trigger": "new rows"})
        )
    plan.cursor = {
        "pk": last_key,
        "pending": pending,
        "rows_without_timestamp": cursor.get("rows_without_timestamp", 0) + plan.rows_without_timestamp,
    }
    return plan


@sensor(
    job_name="ingest_job",
    minimum_interval_seconds=60,
    description="Ingests the days that got new (or late) rows in the SQL source.",
)
def new_rows_sensor(context: SensorEvaluationContext, trainpipe: TrainpipeConfig):
    if trainpipe.settings.source.kind != "sql":
        return SkipReason("source.kind is not sql (new_data_sensor watches the landing folder)")
    cursor = json.loads(context.cursor) if context.cursor else {}
    rows = SqlSource.from_settings(trainpipe.settings.source).new_rows(
        cursor.get("pk")
    )  # an unreachable database fails the tick, URL masked
    plan = plan_sql_ingest(rows, cursor, set(daily_partitions(context, trainpipe).get_partition_keys()))
    if plan.rows_without_timestamp:
        context.log.warning(
            f"{plan.rows_without_timestamp} new rows have no {trainpipe.settings.source.timestamp_column}: "
            "they belong to no day"
        )
    reason = None
    if not plan.run_requests:
        reason = (
            f"no new rows (pending days without a partition yet: {plan.cursor['pending']}; "
            f"rows without timestamp so far: {plan.cursor['rows_without_timestamp']})"
        )
    return SensorResult(run_requests=plan.run_requests, cursor=json.dumps(plan.cursor, default=str), skip_reason=reason)
