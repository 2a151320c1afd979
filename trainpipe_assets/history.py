"""Questions answered from Dagster's event log (the metadata store): the latest artifact of an asset, the model
serving now, and the history of every trained model with its evaluation and push."""
from __future__ import annotations

import datetime as dt
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


def current_baseline(instance: DagsterInstance, serving_base: Optional[Path] = None) -> Optional[ServingRef]:
    """The model serving now, which the Evaluator compares against: the latest `pushed_model` event (a push or a
    rollback) in the event log, never file mtimes; a rollback pin in `serving_base` wins over the log."""
    from .serving_versions import read_pin

    record = latest_materialization(instance, "pushed_model")
    if record is None:
        return None
    metadata = record.asset_materialization.metadata
    version = int(metadata_value(metadata, "serving_version", metadata_value(metadata, "version")))
    path = Path(str(metadata["serving_path"].value)).parent / str(version)
    pin = read_pin(serving_base) if serving_base is not None else None
    if pin is not None and pin != version:
        version, path = pin, serving_base / str(pin)
    return ServingRef(version, str(path), record.run_id, record.partition_key)


def serving_timeline(instance: DagsterInstance, limit: int = 1000) -> list[dict]:
    """Every change of the serving version, oldest first: pushes, rollbacks and clears, with their reasons."""
    events = []
    for record in reversed(instance.fetch_materializations(AssetKey("pushed_model"), limit=limit).records):
        metadata = record.asset_materialization.metadata
        events.append({
            "time": dt.datetime.fromtimestamp(record.timestamp, dt.timezone.utc).isoformat(timespec="seconds"),
            "timestamp": record.timestamp,
            "serving_version": int(metadata_value(metadata, "serving_version", metadata_value(metadata, "version"))),
            "event": metadata_value(metadata, "event", "push"),
            "reason": metadata_value(metadata, "reason", ""),
            "run_id": record.run_id or "",
        })
    return events


def serving_at(timeline: list[dict], when: dt.datetime) -> Optional[dict]:
    """The event in force at `when`: the last change at or before it (None before the first push)."""
    before = [e for e in timeline if e["timestamp"] <= when.timestamp()]
    return before[-1] if before else None


def _records_by_run(instance: DagsterInstance, asset: str, limit: int) -> dict[str, EventLogRecord]:
    by_run: dict[str, EventLogRecord] = {}
    for record in instance.fetch_materializations(AssetKey(asset), limit=limit).records:  # newest first
        by_run.setdefault(record.run_id, record)
    return by_run


def metadata_value(metadata, key, default=None):
    """The plain value of a materialization's metadata entry, or `default` when it has none."""
    entry = metadata.get(key)
    return default if entry is None else entry.value


def model_history(instance: DagsterInstance, limit: int = 100) -> list[dict]:
    """Every trained model, newest first: partition, run, time, metrics, blessing and why, pushed version,
    the example partitions and hyperparameters it was trained on, and the code version of the trainer."""
    evaluations = _records_by_run(instance, "model_evaluation", limit)
    pushes = _records_by_run(instance, "pushed_model", limit)
    rows = []
    for record in instance.fetch_materializations(AssetKey("trained_model"), limit=limit).records:
        trained = record.asset_materialization
        evaluation = evaluations.get(record.run_id)
        push = pushes.get(record.run_id)
        ev_md = evaluation.asset_materialization.metadata if evaluation else {}
        rows.append({
            "partition": record.partition_key,
            "run_id": record.run_id,
            "time": dt.datetime.fromtimestamp(record.timestamp, dt.timezone.utc).isoformat(timespec="seconds"),
            "path": metadata_value(trained.metadata, "path"),
            "code_version": (trained.tags or {}).get("dagster/code_version"),
            "train_metrics": {k[len("metric_"):]: v.value for k, v in trained.metadata.items() if k.startswith("metric_")},
            "eval_metrics": {k[len("candidate_"):]: v.value for k, v in ev_md.items() if k.startswith("candidate_")},
            "blessed": metadata_value(ev_md, "blessed"),
            "blessing_reasons": [r[2:] for r in str(metadata_value(ev_md, "reasons", "")).splitlines() if r],
            "baseline_version": metadata_value(ev_md, "baseline_version"),
            "pushed_version": metadata_value(push.asset_materialization.metadata, "version") if push else None,
            "example_partitions": metadata_value(trained.metadata, "example_partitions", []),
            "hyperparameters": metadata_value(trained.metadata, "hyperparameters", {}),
            "lineage": metadata_value(trained.metadata, "lineage", {}),
        })
    return rows


def history_table(rows: list[dict], baseline: Optional[ServingRef]) -> str:
    lines = [
        "serving now: " + (f"version {baseline.version} ({baseline.serving_path}, run {baseline.run_id[:8]})" if baseline else "nothing pushed yet"),
        "",
        f"{'time (UTC)':<20} {'partition':<11} {'run':<9} {'accuracy':>8} {'auc':>6} {'blessed':<8} {'baseline':>8} {'pushed':>6}",
    ]
    for row in rows:
        m = row["eval_metrics"]
        fmt = lambda v: "" if v is None else f"{v:.4f}"[:6]
        lines.append(
            f"{row['time'][:19]:<20} {row['partition'] or '':<11} {row['run_id'][:8]:<9} {fmt(m.get('accuracy')):>8} "
            f"{fmt(m.get('auc')):>6} {str(row['blessed']) if row['blessed'] is not None else '-':<8} "
            f"{str(row['baseline_version'] or '-'):>8} {str(row['pushed_version'] or '-'):>6}"
        )
    return "\n".join(lines)
