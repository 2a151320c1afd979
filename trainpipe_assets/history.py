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


def current_baseline(instance: DagsterInstance) -> Optional[ServingRef]:
    """The latest `pushed_model` materialization: the model the Evaluator compares against (never file mtimes)."""
    record = latest_materialization(instance, "pushed_model")
    if record is None:
        return None
    metadata = record.asset_materialization.metadata
    return ServingRef(int(metadata["version"].value), str(metadata["serving_path"].value), record.run_id, record.partition_key)


def _records_by_run(instance: DagsterInstance, asset: str, limit: int) -> dict[str, EventLogRecord]:
    by_run: dict[str, EventLogRecord] = {}
    for record in instance.fetch_materializations(AssetKey(asset), limit=limit).records:  # newest first
        by_run.setdefault(record.run_id, record)
    return by_run


def _value(metadata, key, default=None):
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
            "path": _value(trained.metadata, "path"),
            "code_version": (trained.tags or {}).get("dagster/code_version"),
            "train_metrics": {k[len("metric_"):]: v.value for k, v in trained.metadata.items() if k.startswith("metric_")},
            "eval_metrics": {k[len("candidate_"):]: v.value for k, v in ev_md.items() if k.startswith("candidate_")},
            "blessed": _value(ev_md, "blessed"),
            "blessing_reasons": [r[2:] for r in str(_value(ev_md, "reasons", "")).splitlines() if r],
            "baseline_version": _value(ev_md, "baseline_version"),
            "pushed_version": _value(push.asset_materialization.metadata, "version") if push else None,
            "example_partitions": _value(trained.metadata, "example_partitions", []),
            "hyperparameters": _value(trained.metadata, "hyperparameters", {}),
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
