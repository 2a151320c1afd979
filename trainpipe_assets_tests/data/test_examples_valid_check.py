import datetime as dt

from dagster import AssetCheckSeverity

from trainpipe_assets.data.example_gen import examples
from trainpipe_assets.data.example_validator import OUT_OF_DOMAIN, Anomaly, anomalies_text, examples_valid
from trainpipe_assets.data.sample_data import write_days
from trainpipe_assets.data.schema_gen import schema
from trainpipe_assets.data.statistics_gen.component import statistics
from trainpipe_assets_tests.helpers import DAYS, make_config, materialize, metadata_of, resources_for, run_job


def check_evaluation(result):
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == "examples_valid"
    return evaluation


def test_before_any_schema_the_check_warns_that_it_checked_nothing(home, instance):
    trainpipe = make_config(home)
    write_days(trainpipe.landing_dir, 1, 60, end=dt.date(2024, 3, 1))
    result = materialize(
        [examples, statistics, examples_valid],
        partition_key="2024-03-01",
        resources=resources_for(trainpipe),
        instance=instance,
    )
    evaluation = check_evaluation(result)
    # Nothing to check against is not a pass: a warning, which neither blocks the run nor the training window.
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.WARN
    assert evaluation.description.startswith("not checked: no schema materialized yet")
    assert result.success


def test_a_day_like_the_window_passes(pipeline):
    day = dt.date.fromisoformat(DAYS[-1]) + dt.timedelta(days=1)
    write_days(pipeline["trainpipe"].landing_dir, 1, 200, end=day, seed=11)
    result = run_job(pipeline["defs"], "ingest_job", day.isoformat(), pipeline["instance"])
    evaluation = check_evaluation(result)
    assert evaluation.passed, evaluation.metadata["anomaly_table"].value
    assert evaluation.metadata["schema_partition"].value == DAYS[-1]


def test_a_drifted_day_fails_the_blocking_check_with_its_anomalies(pipeline):
    day = dt.date.fromisoformat(DAYS[-1]) + dt.timedelta(days=2)
    write_days(pipeline["trainpipe"].landing_dir, 1, 200, end=day, seed=11, drift_from=day)
    result = run_job(pipeline["defs"], "ingest_job", day.isoformat(), pipeline["instance"], raise_on_error=False)
    assert not result.success  # blocking: the run fails, so nothing downstream uses this day unnoticed
    evaluation = check_evaluation(result)
    assert not evaluation.passed
    table = evaluation.metadata["anomaly_table"].value
    assert "| company | OUT_OF_DOMAIN |" in table and "'Drift Cab Co'" in table
    assert evaluation.metadata["anomalies"].value >= 2  # in train and eval
    found = [Anomaly(**a) for a in evaluation.metadata["anomalies_json"].value]  # what the CLI reads
    assert len(found) == evaluation.metadata["anomalies"].value
    assert {(a.split, a.feature, a.kind) for a in found} >= {("train", "company", OUT_OF_DOMAIN)}
    assert "company  OUT_OF_DOMAIN" in anomalies_text(found)


def test_a_tiny_day_with_an_empty_split_passes(home, instance):
    trainpipe = make_config(home)
    [first] = write_days(trainpipe.landing_dir, 1, 120, end=dt.date(2024, 3, 1))
    resources = resources_for(trainpipe)
    ingest = [examples, statistics, examples_valid]
    materialize(ingest, resources, partition_key="2024-03-01", instance=instance)
    materialize([*ingest, schema], resources, [schema], partition_key="2024-03-01", instance=instance)
    # One complete row of that day: everything in it is in the schema, and one of the two splits gets nothing.
    header, *rows = first.read_text().splitlines()
    row = next(r for r in rows if "" not in r.split(","))
    (trainpipe.landing_dir / "trips_2024-03-02.csv").write_text(f"{header}\n{row}\n")
    result = materialize(ingest, resources, partition_key="2024-03-02", instance=instance)
    counts = metadata_of(result, "examples")
    assert sorted([counts["rows_train"].value, counts["rows_eval"].value]) == [0, 1]
    evaluation = check_evaluation(result)
    assert evaluation.passed, evaluation.metadata["anomaly_table"].value
    assert evaluation.metadata["schema_partition"].value == "2024-03-01"
    assert evaluation.metadata["anomalies_json"].value == []
