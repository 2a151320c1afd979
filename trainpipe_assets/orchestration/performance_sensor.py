"""`retrain_on_degradation_sensor`: a `serving_model_performance` materialization marked `degraded` (a metric of the
serving model under its floor), or a `served_traffic` one (served features skewed from the training window beyond
monitoring.max_serving_skew), requests a `training_job` run.

The run trains the window ending at the latest day whose examples are ingested (before any ingest: the last daily
partition), not the degraded day: a retrain should learn from the newest data, and a window that ends at an old
degraded day would make a model older than the one serving. Steps whose inputs did not change are reused from the
cache, so the retrain only does work when that window holds data the serving model was not trained on.
"""

from dagster import AssetKey, AssetRecordsFilter, RunRequest, SensorEvaluationContext, SensorResult, sensor

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.event_log import current_baseline
from trainpipe_assets.core.settings import TrainpipeConfig
from trainpipe_assets.orchestration.loaded_partitions import daily_partitions

PERFORMANCE = AssetKey("serving_model_performance")
TRAFFIC = AssetKey("served_traffic")
WATCHED = (PERFORMANCE, TRAFFIC)
TRIGGERS = {PERFORMANCE: "serving performance", TRAFFIC: "served traffic"}
PAGE = 200  # materializations read per asset and tick; the cursor carries on from the last one read
MAX_REASON_CHARS = 1000


def latest_ingested_day(instance, daily) -> str:
    days = [d for d in instance.get_materialized_partitions(AssetKey("examples")) if daily.has_partition_key(d)]
    return max(days) if days else daily.get_last_partition_key()


def _reason(record) -> str:
    metadata = record.asset_materialization.metadata
    reasons = md.value(metadata, md.DEGRADATION_REASONS, [])
    where = "" if record.asset_key == PERFORMANCE else f"{record.asset_key.to_user_string()} "
    return (
        f"{where}{record.partition_key} (version {md.value(metadata, md.MODEL_VERSION)}): "
        f"{'; '.join(reasons) or 'degraded'}"
    )


def new_records(instance, after) -> list:
    """The materializations of the watched assets after storage id `after`, in order. Storage ids are shared by all
    assets, so one number is the cursor; when an asset has more than a PAGE of them, the list stops at the last one
    read of it, and the next tick carries on from there."""
    pages = [
        instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, after_storage_id=after), limit=PAGE, ascending=True
        ).records
        for key in WATCHED
    ]
    records = sorted((r for page in pages for r in page), key=lambda r: r.storage_id)
    full = [page[-1].storage_id for page in pages if len(page) == PAGE]
    return [r for r in records if r.storage_id <= min(full)] if full else records


@sensor(
    job_name="training_job",
    minimum_interval_seconds=60,
    description="Retrains when the serving model's performance on a labelled day is degraded, or a day's served "
    "features are skewed from its training window beyond monitoring.max_serving_skew.",
)
def retrain_on_degradation_sensor(context: SensorEvaluationContext, trainpipe: TrainpipeConfig) -> SensorResult:
    """Cursor: the storage id of the last serving_model_performance or served_traffic materialization read. One run
    request per tick, however many days were degraded since the last one."""
    after = int(context.cursor) if context.cursor else None
    records = new_records(context.instance, after)
    if not records:
        return SensorResult(
            skip_reason="no new serving_model_performance or served_traffic materialization", cursor=context.cursor
        )
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
        kinds = " or ".join(k.to_user_string() for k in WATCHED if any(r.asset_key == k for r in records))
        return SensorResult(
            skip_reason=f"{len(records)} new {kinds} materialization(s), none degraded{note}", cursor=cursor
        )
    degraded.sort(key=lambda r: (WATCHED.index(r.asset_key), r.storage_id))  # performance first, then traffic
    reason = " | ".join(_reason(r) for r in degraded)
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 1] + "…"
    day = latest_ingested_day(context.instance, daily_partitions(context, trainpipe))
    request = RunRequest(
        run_key=f"degraded:{max(r.storage_id for r in degraded)}",
        partition_key=day,
        tags={
            "trainpipe/trigger": ", ".join(dict.fromkeys(TRIGGERS[r.asset_key] for r in degraded)),
            "trainpipe/reason": reason,
            "trainpipe/degraded_days": ",".join(sorted({r.partition_key for r in degraded if r.partition_key})),
        },
    )
    return SensorResult(run_requests=[request], cursor=cursor)
