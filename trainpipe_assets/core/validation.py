"""Validation is a gate, not a report: a training window only uses days whose latest ingest passed the blocking
`examples_valid` check (TFX's ExampleValidator), read from the event log. A day whose check failed, never ran, or ran
on statistics older than the day's examples is left out and listed with the reason; a run tag admits a day
explicitly (and the admission is recorded)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from dagster import AssetCheckKey, AssetKey, AssetRecordsFilter, DagsterInstance

EXAMPLES_VALID = AssetCheckKey(AssetKey("statistics"), "examples_valid")
ADMIT_TAG = "trainpipe/admit_days"  # comma-separated days to use although they did not pass examples_valid


@dataclass
class WindowVerdict:
    usable: list[str]
    excluded: dict[str, str] = field(default_factory=dict)  # day -> why it is left out
    admitted: dict[str, str] = field(default_factory=dict)  # day -> why it would have been left out


def admitted_days(tags: dict) -> set[str]:
    return {d.strip() for d in tags.get(ADMIT_TAG, "").split(",") if d.strip()}


def _latest_storage_ids(instance: DagsterInstance, asset: str, days: list[str]) -> dict[str, int]:
    latest: dict[str, int] = {}
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=days), limit=max(100, 20 * len(days))
    ).records
    for record in records:  # newest first
        latest.setdefault(record.partition_key, record.storage_id)
    return latest


def _warning_days(instance: DagsterInstance, days: list[str]) -> set[str]:
    """Days whose latest examples_valid evaluation failed with WARN severity: it had nothing to check against (no
    schema yet, before the first training run), which is not a failed validation. One read of the check's history."""
    latest: dict[str, str | None] = {}
    for record in instance.event_log_storage.get_asset_check_execution_history(EXAMPLES_VALID, limit=500):  # newest
        if record.partition in days and record.partition not in latest:
            evaluation = record.event and record.event.dagster_event and record.event.dagster_event.event_specific_data
            latest[record.partition] = getattr(getattr(evaluation, "severity", None), "value", None)
    return {day for day, severity in latest.items() if severity == "WARN"}


def judge_window(instance: DagsterInstance, days: Iterable[str], admit: set[str]) -> WindowVerdict:
    """Which of `days` (days that have examples) a training window may use."""
    days = sorted(days)
    checks = {
        info.partition_key: info
        for info in instance.event_log_storage.get_asset_check_partition_info([EXAMPLES_VALID], partition_keys=days)
    }
    examples = _latest_storage_ids(instance, "examples", days)
    statistics = _latest_storage_ids(instance, "statistics", days)
    failed = [d for d, info in checks.items() if info.latest_execution_status.value != "SUCCEEDED"]
    warned = _warning_days(instance, failed) if failed else set()
    verdict = WindowVerdict(usable=[])
    for day in days:
        info = checks.get(day)
        if day not in statistics or statistics[day] < examples.get(day, 0):
            reason = "its examples have no statistics from after they were written (ingest it with ingest_job)"
        elif info is None:
            reason = "examples_valid never ran on it"
        elif info.latest_execution_status.value != "SUCCEEDED" and day not in warned:
            reason = f"examples_valid {info.latest_execution_status.value.lower()} on its latest ingest"
        elif not info.is_current:
            reason = "examples_valid did not check its latest statistics"
        else:
            verdict.usable.append(day)
            continue
        if day in admit:
            verdict.usable.append(day)
            verdict.admitted[day] = reason
        else:
            verdict.excluded[day] = reason
    return verdict
