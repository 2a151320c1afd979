"""Questions answered from Dagster's event log (the metadata store): the latest artifact of an asset, and where it is."""
from __future__ import annotations

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
