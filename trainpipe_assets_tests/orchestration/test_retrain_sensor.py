import datetime as dt
import json

from dagster import SkipReason

from trainpipe_assets.data.sample_data import write_days
from trainpipe_assets.definitions import build_definitions
from trainpipe_assets.orchestration.sensors import retrain_on_new_data_sensor
from trainpipe_assets_tests import helpers
from trainpipe_assets_tests.helpers import make_config, run_job


def tick(instance, cursor=None):
    return helpers.tick(retrain_on_new_data_sensor, cursor, instance=instance, with_cursor=True)


def test_validated_days_request_one_retrain_of_the_latest_window(home, instance):
    trainpipe = make_config(home)
    write_days(trainpipe.landing_dir, 2, 60, end=dt.date(2024, 3, 2))
    defs = build_definitions(trainpipe)
    result, cursor = tick(instance)
    assert isinstance(result, SkipReason) and "no newly ingested" in result.skip_message
    for day in ("2024-03-01", "2024-03-02", "2024-03-02"):  # the second day's files arrived in two batches
        run_job(defs, "ingest_job", day, instance)
    request, cursor = tick(instance, cursor)
    assert request.partition_key == "2024-03-02" and request.tags["trainpipe/new_days"] == "2024-03-01,2024-03-02"
    again, cursor = tick(instance, cursor)
    assert isinstance(again, SkipReason)
    assert json.loads(cursor)["latest_day"] == "2024-03-02"


def test_a_day_whose_check_failed_never_triggers_a_retrain(home, instance):
    trainpipe = make_config(home)
    write_days(trainpipe.landing_dir, 1, 60, end=dt.date(2024, 3, 1))
    defs = build_definitions(trainpipe)
    run_job(defs, "ingest_job", "2024-03-01", instance)
    _, cursor = tick(instance)
    (trainpipe.landing_dir / "trips_2024-03-02.csv").write_text("fare\n1.0\n")  # lacks expected columns: run fails
    assert not run_job(defs, "ingest_job", "2024-03-02", instance, raise_on_error=False).success
    result, _ = tick(instance, cursor)
    assert isinstance(result, SkipReason)


def test_a_day_whose_example_anomalies_failed_is_not_retrained_on(pipeline):
    instance = pipeline["instance"]
    _, cursor = tick(instance)  # consume what the session already ingested
    day = dt.date(2024, 3, 10)
    write_days(pipeline["trainpipe"].landing_dir, 1, 150, end=day, seed=3, drift_from=day)
    result = run_job(pipeline["defs"], "ingest_job", day.isoformat(), instance, raise_on_error=False)
    assert not result.success and not [c for c in result.get_asset_check_evaluations() if c.passed]
    skipped, _ = tick(instance, cursor)
    assert isinstance(skipped, SkipReason)


def test_retrain_waits_while_ingestion_is_running(home, instance):
    from dagster import DagsterRunStatus
    from dagster._core.test_utils import create_run_for_test

    create_run_for_test(instance, job_name="ingest_job", status=DagsterRunStatus.STARTED)
    result, _ = tick(instance)
    assert isinstance(result, SkipReason) and "waiting for 1 ingest run" in result.skip_message


def test_a_range_run_with_a_bad_day_retrains_on_its_good_days(home, instance):
    """One ingest_job run over three days (a single-run backfill) fails for its bad day only: the good days count."""
    trainpipe = make_config(home)
    write_days(trainpipe.landing_dir, 2, 60, end=dt.date(2024, 3, 2))
    (trainpipe.landing_dir / "trips_2024-03-03.csv").write_text("fare\n1.0\n")  # lacks expected columns
    defs = build_definitions(trainpipe)
    tags = {"dagster/asset_partition_range_start": "2024-03-01", "dagster/asset_partition_range_end": "2024-03-03"}
    result = defs.resolve_job_def("ingest_job").execute_in_process(instance=instance, tags=tags, raise_on_error=False)
    assert not result.success  # the bad day's verdict failed the run, after every day was written
    assert len(instance.get_runs()) == 1
    request, _ = tick(instance)
    assert request.partition_key == "2024-03-02" and request.tags["trainpipe/new_days"] == "2024-03-01,2024-03-02"
