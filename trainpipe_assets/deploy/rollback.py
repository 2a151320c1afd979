"""Rollback: pin an earlier pushed version so the server and the Evaluator's baseline follow it, and record the
change as a runless `pushed_model` materialization, so the event log says which version served at any time."""

from __future__ import annotations

from typing import Optional

from dagster import AssetKey, AssetMaterialization, DagsterInstance, MetadataValue

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.serving_layout import clear_pin, list_versions, read_pin, serving_version, write_pin
from trainpipe_assets.core.settings import TrainpipeConfig


class RollbackError(ValueError):
    """No such version, nothing to roll back to, or nothing pushed yet."""


def _push_partition(instance: DagsterInstance, version: int) -> Optional[str]:
    for record in instance.fetch_materializations(AssetKey("pushed_model"), limit=1000).records:
        if md.value(record.asset_materialization.metadata, md.VERSION) == version and record.partition_key:
            return record.partition_key
    return None


def _record(instance: DagsterInstance, trainpipe: TrainpipeConfig, version: int, event: str, reason: str) -> None:
    base = trainpipe.serving_dir
    instance.report_runless_asset_event(
        AssetMaterialization(
            asset_key="pushed_model",
            partition=_push_partition(instance, version),
            description=f"{event}: version {version} serves ({reason})",
            metadata={
                md.VERSION: version,
                md.SERVING_VERSION: version,
                md.SERVING_PATH: MetadataValue.path(str(base / str(version))),
                md.MODEL_NAME: trainpipe.settings.model_name,
                md.EVENT: event,
                md.REASON: reason,
            },
        )
    )


def rollback(instance: DagsterInstance, trainpipe: TrainpipeConfig, to: Optional[int], reason: str) -> int:
    """Pin `to` (default: the version below the one serving now); returns the version now serving."""
    base = trainpipe.serving_dir
    versions = list_versions(base)
    if not versions:
        raise RollbackError(f"nothing pushed under {base}")
    current = serving_version(base)
    if to is None:
        older = [v for v in versions if v < current]
        if not older:
            raise RollbackError(f"version {current} is the oldest under {base}; nothing to roll back to")
        to = older[-1]
    if to not in versions:
        raise RollbackError(f"version {to} is not under {base} (versions: {versions})")
    write_pin(base, to)
    _record(instance, trainpipe, to, "rollback", reason or f"rolled back from version {current}")
    return to


def clear(instance: DagsterInstance, trainpipe: TrainpipeConfig, reason: str) -> Optional[int]:
    """Remove the pin: the highest version serves again; returns it."""
    base = trainpipe.serving_dir
    try:
        pinned = read_pin(base)
    except ValueError:  # a garbled pin is exactly what --clear is for
        pinned = "unreadable"
    clear_pin(base)
    latest = max(list_versions(base), default=None)
    if latest is not None:
        _record(instance, trainpipe, latest, "rollback cleared", reason or f"pin on version {pinned} removed")
    return latest
