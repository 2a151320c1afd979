"""Questions answered from Dagster's event log (the metadata store): the latest artifact of an asset, and where it is."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from dagster import AssetKey, DagsterInstance, EventLogRecord


def latest_materialization(instance: DagsterInstance, asset: str) -> Optional[EventLogRecord]:
    records = instance.fetch_materializations(AssetKey(asset), limit=1).records
    return records[0] if records else None


def materialized_path(record: EventLogRecord) -> Path:
    """The artifact folder an IO manager recorded as `path` metadata."""
    path = record.asset_materialization.metadata.get("path")
    if path is None:
        raise LookupError(f"materialization of {record.asset_key.to_user_string()} in run {record.run_id} has no path")
    return Path(path.value)


@dataclass(frozen=True)
class ServingRef:
    """The model version serving now, as the event log recorded its push."""

    version: int
    serving_path: str
    run_id: str
    partition: Optional[str]


def current_baseline(instance: DagsterInstance) -> Optional[ServingRef]:
    """The latest `pushed_model` materialization: the model the Evaluator compares against (never file mtimes)."""
    record = latest_materialization(instance, "pushed_model")
    if record is None:
        return None
    metadata = record.asset_materialization.metadata
    return ServingRef(int(metadata["version"].value), str(metadata["serving_path"].value), record.run_id, record.partition_key)
