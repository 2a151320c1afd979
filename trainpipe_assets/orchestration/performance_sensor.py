"""`retrain_on_degradation_sensor`: a `serving_model_performance` materialization marked `degraded` requests a
`training_job` run.

The run trains the window ending at the latest day whose examples are ingested (before any ingest: the last daily
partition), not the degraded day: a retrain should learn from the newest data, and a window that ends at an old
degraded day would make a model older than the one serving. Steps whose inputs did not change are reused from the
cache, so the retrain only does work when that window holds data the serving model was not trained on.
"""

from dagster import AssetKey, AssetRecordsFilter, RunRequest, SensorEvaluationContext, SensorResult, sensor

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.event_log import current_baseline
from trainpipe_assets.core.settings import TrainpipeConfig
from trainpipe_assets.orchestration.calendar import daily_partitions

PERFORMANCE = AssetKey("serving_model_performance")
PAGE = 200  # materializations read per tick; the cursor carries on from the last one read
MAX_REASON_CHARS = 1000


def latest_ingested_day(instance, daily) -> str:
    days = [d for d in instance.get_materialized_partitions(AssetKey("examples")) if daily.has_partition_key(d)]
    return max(days) if days else daily.get_last_partition_key()


def _reason(record) -> str:
    metadata = record.asset_materialization.metadata
    reasons = md.value(metadata, md.DEGRADATION_REASONS, [])
    return (
        f"{record.partition_key} (version {md.value(metadata, md.MODEL_VERSION)}): {'; '.join(reasons) or 'degraded'}"
    )


@sensor(
    job_name="training_job",
    minimum_interval_seconds=60,
    description="Retrains when the serving model's performance on a labelled day is degraded.",
)
def retrain_on_degradation_sensor(context: SensorEvaluationContext, trainpipe: TrainpipeConfig) -> SensorResult:
    """Cursor: the storage id of the last serving_model_performance materialization read. One run request per
    tick, however many days were degraded since the last one."""
    after = int(context.cursor) if context.cursor else None
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=PERFORMANCE, after_storage_id=after), limit=PAGE, ascending=True
    ).records
    if not records:
        return SensorResult(skip_reason="no new serving_model_performance materialization", cursor=context.cursor)
    cursor = str(records[-1].storage_id)
    degraded = [r for r in records if md.value(r.asset_materialization.metadata, md.DEGRADED) is True]
    # A backfilled day scored with a version that no longer serves says nothing about the model serving now.
    serving = current_baseline(context.instance)
    stale = [
        r
        for r in degraded
        if serving is not None and md.value(r.asset_materialization.metadata, md.MODEL_VERSION) != serving.version
    ]
    degraded = [r for r in degraded if r not in stale]
    if not degraded:
        note = f" ({len(stale)} degraded with a version no longer serving)" if stale else ""
        return SensorResult(
            skip_reason=f"{len(records)} new serving_model_performance materialization(s), none degraded{note}",
            cursor=cursor,
        )
    reason = " | ".join(_reason(r) for r in degraded)
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 1] + "…"
    day = latest_ingested_day(context.instance, daily_partitions(context, trainpipe))
    request = RunRequest(
        run_key=f"degraded:{degraded[-1].storage_id}",
        partition_key=day,
        tags={
            "trainpipe/trigger": "serving performance",
            "trainpipe/reason": reason,
            "trainpipe/degraded_days": ",".join(sorted({r.partition_key for r in degraded if r.partition_key})),
        },
    )
    return SensorResult(run_requests=[request], cursor=cursor)
