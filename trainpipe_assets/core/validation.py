"""Validation is a gate, not a report: a training window only uses days whose latest `example_anomalies`
materialization (TFX's ExampleValidator output, one per day) passed, read from the event log. A day whose verdict
failed, that was never judged, or whose verdict is older than its latest statistics (or those older than its
examples) is left out and listed with the reason; a run tag admits a day explicitly (and the admission is recorded).
A "not checked" verdict (no schema existed yet: the first training run infers it from these days) is usable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

from trainpipe_assets.core import metadata as md

ANOMALIES_ASSET = "example_anomalies"
ADMIT_TAG = "trainpipe/admit_days"  # comma-separated days to use although their example_anomalies did not pass


@dataclass
class WindowVerdict:
    usable: list[str]
    excluded: dict[str, str] = field(default_factory=dict)  # day -> why it is left out
    admitted: dict[str, str] = field(default_factory=dict)  # day -> why it would have been left out


def admitted_days(tags: dict) -> set[str]:
    return {d.strip() for d in tags.get(ADMIT_TAG, "").split(",") if d.strip()}


def latest_records(instance: DagsterInstance, asset: str, days: list[str]) -> dict:
    """{day: the latest materialization record of `asset` for that day}, one read of the event log."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=days), limit=max(100, 20 * len(days))
    ).records
    latest: dict = {}
    for record in records:  # newest first
        latest.setdefault(record.partition_key, record)
    return latest


def _reason(day: str, examples: dict, statistics: dict, anomalies: dict) -> str | None:
    """Why `day` may not be used, or None."""
    if day not in statistics or statistics[day].storage_id < getattr(examples.get(day), "storage_id", 0):
        return "its examples have no statistics from after they were written (ingest it with ingest_job)"
    judged = anomalies.get(day)
    if judged is None:
        return "example_anomalies never judged it"
    if judged.storage_id < statistics[day].storage_id:
        return "example_anomalies did not judge its latest statistics"
    metadata = judged.asset_materialization.metadata
    verdict = md.value(metadata, md.VERDICT)
    if verdict in (md.PASSED, md.NOT_CHECKED):
        return None
    return f"example_anomalies {verdict} on its latest ingest: {md.value(metadata, 'description', '')}".rstrip(": ")


def judge_window(instance: DagsterInstance, days: Iterable[str], admit: set[str]) -> WindowVerdict:
    """Which of `days` (days that have examples) a training window may use."""
    days = sorted(days)
    examples = latest_records(instance, "examples", days)
    statistics = latest_records(instance, "statistics", days)
    anomalies = latest_records(instance, ANOMALIES_ASSET, days)
    verdict = WindowVerdict(usable=[])
    for day in days:
        reason = _reason(day, examples, statistics, anomalies)
        if reason is None:
            verdict.usable.append(day)
        elif day in admit:
            verdict.usable.append(day)
            verdict.admitted[day] = reason
        else:
            verdict.excluded[day] = reason
    return verdict
