"""example_anomalies (TFX ExampleValidator's artifact per day) and the blocking examples_valid check on it."""

import datetime as dt
from pathlib import Path

from dagster import AssetCheckSeverity
from tensorflow_metadata.proto.v0 import anomalies_pb2

from trainpipe_assets.data.anomalies import OUT_OF_DOMAIN, Anomaly, anomalies_text
from trainpipe_assets.data.example_gen import examples
from trainpipe_assets.data.example_validator import example_anomalies, examples_valid
from trainpipe_assets.data.sample_data import write_days
from trainpipe_assets.data.schema_gen import schema
from trainpipe_assets.data.statistics_gen.component import statistics
from trainpipe_assets_tests.helpers import DAYS, make_config, materialize, metadata_of, resources_for, run_job

INGEST = [examples, statistics, example_anomalies, examples_valid]


def check_evaluation(result):
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == "examples_valid"
    return evaluation


def schema_diff(metadata, split: str) -> anomalies_pb2.Anomalies:
    """The day's TFX artifact, as TFX's ExampleValidator writes it: Split-<split>/SchemaDiff.pb."""
    return anomalies_pb2.Anomalies.FromString(
        (Path(metadata["path"].value) / f"Split-{split}" / "SchemaDiff.pb").read_bytes()
    )


def test_before_any_schema_the_day_is_not_checked_and_the_check_warns(home, instance):
    trainpipe = make_config(home)
    write_days(trainpipe.landing_dir, 1, 60, end=dt.date(2024, 3, 1))
    result = materialize(INGEST, partition_key="2024-03-01", resources=resources_for(trainpipe), instance=instance)
    judged = metadata_of(result, "example_anomalies")
    assert judged["verdict"].value == "not checked" and judged["schema"].value == "none"
    evaluation = check_evaluation(result)
    # Nothing to check against is not a pass: a warning, which neither blocks the run nor the training window.
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.WARN
    assert evaluation.description.startswith("not checked: no schema materialized yet")
    assert result.success


def test_a_day_like_the_window_passes(pipeline):
    day = dt.date.fromisoformat(DAYS[-1]) + dt.timedelta(days=1)
    write_days(pipeline["trainpipe"].landing_dir, 1, 200, end=day, seed=11)
    result = run_job(pipeline["defs"], "ingest_job", day.isoformat(), pipeline["instance"])
    judged = metadata_of(result, "example_anomalies")
    assert judged["verdict"].value == "passed", judged["anomaly_table"].value
    assert judged["schema_partition"].value == DAYS[-1]
    diff = schema_diff(judged, "train")
    assert not diff.anomaly_info and diff.baseline.feature  # judged against the schema, recorded in the artifact
    assert check_evaluation(result).passed


def test_a_drifted_day_fails_its_verdict_and_the_blocking_check(pipeline):
    day = dt.date.fromisoformat(DAYS[-1]) + dt.timedelta(days=2)
    write_days(pipeline["trainpipe"].landing_dir, 1, 200, end=day, seed=11, drift_from=day)
    result = run_job(pipeline["defs"], "ingest_job", day.isoformat(), pipeline["instance"], raise_on_error=False)
    assert not result.success  # blocking: the run fails, so nothing downstream uses this day unnoticed
    judged = metadata_of(result, "example_anomalies")  # ... but the day's verdict was written first
    assert judged["verdict"].value == "failed"
    table = judged["anomaly_table"].value
    assert "| company | OUT_OF_DOMAIN |" in table and "'Drift Cab Co'" in table
    assert judged["anomalies"].value >= 2  # in train and eval
    found = [Anomaly(**a) for a in judged["anomalies_json"].value]  # what the CLI reads
    assert len(found) == judged["anomalies"].value
    assert {(a.split, a.feature, a.kind) for a in found} >= {("train", "company", OUT_OF_DOMAIN)}
    assert "company  OUT_OF_DOMAIN" in anomalies_text(found)
    info = schema_diff(judged, "train").anomaly_info["company"]
    assert info.reason[0].type == anomalies_pb2.AnomalyInfo.ENUM_TYPE_UNEXPECTED_STRING_VALUES
    evaluation = check_evaluation(result)
    assert not evaluation.passed and day.isoformat() in evaluation.description
    from trainpipe_assets.cli.runs import failures_of

    # what a command prints: the check's verdict once, not also Dagster's DagsterAssetCheckFailedError for its step
    assert failures_of(result) and failures_of(result, skip_checks=True) == []
    assert evaluation.metadata["failed_days"].value == {day.isoformat(): judged["description"].value}


def test_a_tiny_day_with_an_empty_split_passes(home, instance):
    trainpipe = make_config(home)
    [first] = write_days(trainpipe.landing_dir, 1, 120, end=dt.date(2024, 3, 1))
    resources = resources_for(trainpipe)
    materialize(INGEST, resources, partition_key="2024-03-01", instance=instance)
    materialize([*INGEST, schema], resources, [schema], partition_key="2024-03-01", instance=instance)
    # One complete row of that day: everything in it is in the schema, and one of the two splits gets nothing.
    header, *rows = first.read_text().splitlines()
    row = next(r for r in rows if "" not in r.split(","))
    (trainpipe.landing_dir / "trips_2024-03-02.csv").write_text(f"{header}\n{row}\n")
    result = materialize(INGEST, resources, partition_key="2024-03-02", instance=instance)
    counts = metadata_of(result, "examples")
    assert sorted([counts["rows_train"].value, counts["rows_eval"].value]) == [0, 1]
    judged = metadata_of(result, "example_anomalies")
    assert judged["verdict"].value == "passed", judged["anomaly_table"].value
    assert judged["schema_partition"].value == "2024-03-01"
    assert judged["anomalies_json"].value == []
    assert check_evaluation(result).passed
