"""Questions answered from Dagster's event log (the metadata store): the latest artifact of an asset, the model
serving now, which version served when, and the history of every trained model with its evaluation and push.
Everything read here is a typed metadata value or JSON (see core/metadata.py), never display text."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from dagster import AssetKey, DagsterInstance, EventLogRecord

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.run_records import PUSHED_AT, PUSHED_BY_RUN, record_unrecorded_pushes
from trainpipe_assets.core.serving_layout import read_pin


def latest_materialization(instance: DagsterInstance, asset: str) -> Optional[EventLogRecord]:
    records = instance.fetch_materializations(AssetKey(asset), limit=1).records
    return records[0] if records else None


def materialized_path(record: EventLogRecord) -> Path:
    """The artifact folder an IO manager recorded as `path` metadata."""
    path = md.value(record.asset_materialization.metadata, md.PATH)
    if path is None:
        raise LookupError(f"materialization of {record.asset_key.to_user_string()} in run {record.run_id} has no path")
    return Path(path)


@dataclass(frozen=True)
class ServingRef:
    """The model version serving now, as the event log recorded its push."""

    version: int
    serving_path: str
    run_id: str
    partition: Optional[str]
    pushed_at: Optional[str] = None  # when the version reached disk (ISO, UTC)


def _serving_version(metadata) -> int:
    return int(md.value(metadata, md.SERVING_VERSION, md.value(metadata, md.VERSION)))


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat(timespec="seconds")


def pushed_by(record: EventLogRecord) -> tuple[str, str]:
    """The run that wrote a pushed_model event's version and when (its PUSH.json's), not the run that found it there:
    an "already pushed" event of a re-run names the first writer."""
    metadata = record.asset_materialization.metadata
    # (a runless event recorded after the fact before pushed_by_run existed named its writer as source_run_id)
    run_id = md.value(metadata, PUSHED_BY_RUN) or record.run_id or md.value(metadata, "source_run_id") or ""
    return run_id, md.value(metadata, PUSHED_AT) or _iso(record.timestamp)


def already_pushed(record: EventLogRecord) -> bool:
    """A pushed_model event of a run that found its model already on disk, pushed by another run."""
    writer = md.value(record.asset_materialization.metadata, PUSHED_BY_RUN)
    return bool(writer) and writer != record.run_id


def current_baseline(instance: DagsterInstance, serving_base: Optional[Path] = None) -> Optional[ServingRef]:
    """The model serving now, which the Evaluator compares against: the latest `pushed_model` event (a push or a
    rollback) in the event log, never file mtimes; a rollback pin in `serving_base` wins over the log. With
    `serving_base`, versions on disk whose push was never recorded (the pushing run died) are recorded first."""
    if serving_base is not None:
        record_unrecorded_pushes(instance, serving_base)
    record = latest_materialization(instance, "pushed_model")
    if record is None:
        return None
    metadata = record.asset_materialization.metadata
    version = _serving_version(metadata)
    path = Path(str(md.value(metadata, md.SERVING_PATH))).parent / str(version)
    pin = read_pin(serving_base) if serving_base is not None else None
    run_id, pushed_at = pushed_by(record)
    if pin is not None and pin != version:
        version, path, pushed_at = pin, serving_base / str(pin), None
    return ServingRef(version, str(path), run_id, record.partition_key, pushed_at)


def serving_timeline(instance: DagsterInstance, limit: int = 1000) -> list[dict]:
    """Every change of the serving version, oldest first: pushes (at the time the version reached disk, by the run that
    wrote it, also when recorded after the fact), rollbacks and clears, with their reasons. A re-run that found its
    model already pushed changed nothing and is not listed."""
    events = []
    for record in reversed(instance.fetch_materializations(AssetKey("pushed_model"), limit=limit).records):
        if already_pushed(record):
            continue
        metadata = record.asset_materialization.metadata
        run_id, _ = pushed_by(record)
        events.append(
            {
                "time": _iso(record.timestamp),
                "timestamp": record.timestamp,
                "serving_version": _serving_version(metadata),
                "event": md.value(metadata, md.EVENT, "push"),
                "reason": md.value(metadata, md.REASON, ""),
                "run_id": run_id,
            }
        )
    return sorted(events, key=lambda e: e["timestamp"])  # stable: a push recorded late sits at its own time


def serving_at(timeline: list[dict], when: dt.datetime) -> Optional[dict]:
    """The event in force at `when`: the last change at or before it (None before the first push)."""
    before = [e for e in timeline if e["timestamp"] <= when.timestamp()]
    return before[-1] if before else None


def _records_by_run(instance: DagsterInstance, asset: str, limit: int) -> dict[str, EventLogRecord]:
    by_run: dict[str, EventLogRecord] = {}
    for record in instance.fetch_materializations(AssetKey(asset), limit=limit).records:  # newest first
        by_run.setdefault(record.run_id, record)
    return by_run


def _evaluation_facts(metadata) -> tuple[dict, list]:
    """Candidate metrics and blessing reasons: the JSON entries, or (events written before they existed) the
    evaluation's own report, evaluation.json."""
    metrics, reasons = md.value(metadata, md.CANDIDATE_METRICS), md.value(metadata, md.BLESSING_REASONS)
    if metrics is None or reasons is None:
        try:
            report = json.loads((Path(str(md.value(metadata, md.PATH))) / "evaluation.json").read_text())
        except (OSError, TypeError, ValueError):
            report = {}
        metrics = report.get("candidate", {}).get("overall", {}) if metrics is None else metrics
        reasons = report.get("reasons", []) if reasons is None else reasons
    return {k: v for k, v in metrics.items() if k != "example_count" and v is not None}, list(reasons)


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
        found = push if push is not None and already_pushed(push) else None
        push = None if found is not None else push
        ev_md = evaluation.asset_materialization.metadata if evaluation else {}
        eval_metrics, reasons = _evaluation_facts(ev_md) if evaluation else ({}, [])
        rows.append(
            {
                "partition": record.partition_key,
                "run_id": record.run_id,
                "time": dt.datetime.fromtimestamp(record.timestamp, dt.timezone.utc).isoformat(timespec="seconds"),
                "path": md.value(trained.metadata, md.PATH),
                "code_version": (trained.tags or {}).get("dagster/code_version"),
                "train_metrics": md.value(trained.metadata, md.TRAIN_METRICS, {}),
                "eval_metrics": eval_metrics,
                "blessed": md.value(ev_md, md.BLESSED),
                "blessing_reasons": reasons,
                "baseline_version": md.value(ev_md, md.BASELINE_VERSION),
                "pushed_version": md.value(push.asset_materialization.metadata, md.VERSION) if push else None,
                "already_pushed": md.value(found.asset_materialization.metadata, md.EVENT) if found else None,
                "example_partitions": md.value(trained.metadata, md.EXAMPLE_PARTITIONS, []),
                "hyperparameters": md.value(trained.metadata, md.HYPERPARAMETERS, {}),
                "lineage": md.value(trained.metadata, md.LINEAGE, {}),
            }
        )
    return rows
