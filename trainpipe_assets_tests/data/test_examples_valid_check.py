import datetime as dt

from trainpipe_assets.data.example_gen import examples
from trainpipe_assets.data.example_validator import examples_valid
from trainpipe_assets.data.sample_data import write_days
from trainpipe_assets.data.statistics_gen import statistics
from trainpipe_assets_tests.helpers import DAYS, make_config, materialize, resources_for, run_job


def check_evaluation(result):
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == "examples_valid"
    return evaluation


def test_before_any_schema_the_check_passes_and_says_so(home, instance):
    trainpipe = make_config(home)
    write_days(trainpipe.landing_dir, 1, 60, end=dt.date(2024, 3, 1))
    result = materialize(
        [examples, statistics, examples_valid],
        partition_key="2024-03-01",
        resources=resources_for(trainpipe),
        instance=instance,
    )
    evaluation = check_evaluation(result)
    assert evaluation.passed and "no schema materialized yet" in evaluation.description


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
