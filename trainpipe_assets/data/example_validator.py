"""`example_anomalies` (TFX ExampleValidator): each day's statistics judged against the latest schema, one artifact per
day (`Split-*/SchemaDiff.pb`, `anomalies.json`) whose materialization carries the day's verdict: the verdict the
training gate reads (core/validation.py). A range of days is one run; a failed day fails only its own verdict.

`examples_valid`, a blocking check on it, fails the run when a day of the run failed, naming the days (after every
day was written), so the CLI, CI and sensors see the failure; the gate does not read it."""

import json
from dataclasses import asdict

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    MetadataValue,
    Output,
)

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.artifacts import ExampleAnomalies, Statistics
from trainpipe_assets.core.event_log import latest_materialization, materialized_path
from trainpipe_assets.core.io_managers import ByDay
from trainpipe_assets.core.io_managers.artifact_dir import read_artifact
from trainpipe_assets.core.partitions import days_output, pipeline_asset, pipeline_check
from trainpipe_assets.core.settings import TrainpipeConfig
from trainpipe_assets.core.step import Step
from trainpipe_assets.core.storage import write_bytes, write_text
from trainpipe_assets.core.validation import latest_records
from trainpipe_assets.data.anomalies import (  # noqa: F401  (Anomaly, anomalies_text: for the CLI)
    Anomaly,
    anomalies_markdown,
    anomalies_proto,
    anomalies_text,
    find_anomalies,
)

CODE_VERSION = "example-anomalies-v1"
PASSED, FAILED, NOT_CHECKED = md.PASSED, md.FAILED, md.NOT_CHECKED
INGEST_FAILED = "INGEST_FAILED"


def _judge(trainpipe: TrainpipeConfig, statistics: Statistics, schema, proto, ingest_failed: str | None):
    """(verdict, {split: anomalies}, description) of one day against `schema` (its `proto`, read once per run)."""
    if ingest_failed:
        found = {s: [Anomaly(s, "*", INGEST_FAILED, ingest_failed)] for s in statistics.splits}
        return FAILED, found, f"its input could not be read: {ingest_failed}"
    if schema is None:  # the first training run infers the schema from these days: usable, but not judged
        return NOT_CHECKED, {s: [] for s in statistics.splits}, "not checked: no schema materialized yet"
    limit = trainpipe.settings.max_out_of_domain_fraction
    found = {s: find_anomalies(statistics.load(s).datasets[0], proto, limit) for s in statistics.splits}
    count = sum(len(a) for a in found.values())
    if count:
        return FAILED, found, f"{count} anomalies against schema {schema.partition}"
    return PASSED, found, f"matches schema {schema.partition}"


@pipeline_asset(
    io_manager_key="artifact_io_manager",
    kinds={"tensorflow"},
    group_name="data",
    code_version=CODE_VERSION,
    by_day=("statistics",),
)
def example_anomalies(
    context: AssetExecutionContext, trainpipe: TrainpipeConfig, statistics: dict[str, Statistics]
) -> Output[ByDay]:
    """TFX ExampleValidator: each day's statistics against the latest materialized schema (missing and unexpected
    features, type changes, out-of-domain strings, missing values), per split and feature, with the day's verdict.
    A training window uses a day only when its latest verdict passed (or was "not checked": no schema yet) and is
    newer than its statistics."""
    days = list(context.partition_keys)
    record = latest_materialization(context.instance, "schema")
    schema = read_artifact(materialized_path(record)) if record is not None else None
    proto = schema.load() if schema is not None else None  # once for the run's days, not once per day and split
    examples = latest_records(context.instance, "examples", days)
    results = {}
    for day in days:
        if day not in statistics:
            raise FileNotFoundError(f"example_anomalies {day}: no statistics of {day} (materialize statistics first)")
        ingest_failed = examples.get(day) and md.value(examples[day].asset_materialization.metadata, md.INGEST_FAILED)
        step = Step(context, trainpipe, CODE_VERSION, partition=day)
        step.cache_key(statistics[day].cache_key, schema and schema.cache_key)
        verdict, found, description = _judge(trainpipe, statistics[day], schema, proto, ingest_failed)
        artifact = ExampleAnomalies(
            **step.fields(), splits=list(found), verdict=verdict, schema_uri=schema.uri if schema else None
        )
        for split, anomalies in found.items():
            write_bytes(artifact.path(split), anomalies_proto(anomalies, proto).SerializeToString())
        flat = [a for anomalies in found.values() for a in anomalies]
        report = {"verdict": verdict, "description": description, "anomalies": [asdict(a) for a in flat]}
        write_text(step.staging / "anomalies.json", json.dumps({**report, "schema": artifact.schema_uri}, indent=2))
        if verdict == FAILED:
            context.log.warning(f"example_anomalies {day}: {description}")
        metadata = {
            md.VERDICT: verdict,
            "anomalies": len(flat),
            "anomaly_table": MetadataValue.md(anomalies_markdown(flat) if schema or flat else description),
            md.ANOMALIES_JSON: MetadataValue.json(report["anomalies"]),  # the CLI prints it with anomalies_text
            "description": description,
            "schema": MetadataValue.path(schema.uri) if schema else "none",
            "schema_partition": schema.partition if schema else "none",
        }
        results[day] = (artifact, step.metadata(metadata))
    return days_output(context, trainpipe.home, results)


@pipeline_check(asset="example_anomalies", name="examples_valid")
def examples_valid(context: AssetCheckExecutionContext) -> AssetCheckResult:
    """Blocking: fails when a day of this run has a failed example_anomalies verdict, naming the days and why. The
    verdict of each day is the example_anomalies materialization (one per day, also in a run over a range)."""
    days = list(context.partition_keys)
    latest = latest_records(context.instance, "example_anomalies", days)
    verdicts = {d: md.value(r.asset_materialization.metadata, md.VERDICT) for d, r in latest.items()}
    why = {d: md.value(latest[d].asset_materialization.metadata, "description", "") for d in latest}
    failed = {d: why[d] for d, v in verdicts.items() if v == FAILED}
    unchecked = [d for d, v in verdicts.items() if v == NOT_CHECKED]
    metadata = {
        "days": len(days),
        "failed_days": MetadataValue.json(failed),
        "not_checked_days": MetadataValue.json(unchecked),
    }
    if failed:
        listed = "; ".join(f"{d}: {w}" for d, w in sorted(failed.items()))
        return AssetCheckResult(passed=False, metadata=metadata, description=f"{len(failed)} day(s) failed: {listed}")
    if unchecked and len(unchecked) == len(days):
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.WARN,
            metadata=metadata,
            description="not checked: no schema materialized yet (the first training run infers one from these days)",
        )
    return AssetCheckResult(passed=True, metadata=metadata, description=f"{len(days)} day(s) match the schema")
