import datetime as dt

from dagster import build_schedule_context

from trainpipe_assets.definitions import build_definitions
from trainpipe_assets_tests.helpers import make_config, write_config


def test_retraining_schedule_trains_the_window_ending_with_the_last_complete_day(tmp_path):
    config = write_config(tmp_path / "trainpipe.yaml", partitions_start="2024-01-01")
    schedule = build_definitions(make_config(tmp_path / "home", config)).resolve_schedule_def("retraining_schedule")
    assert schedule.job_name == "training_job" and schedule.cron_schedule == "0 3 * * *"
    tick = dt.datetime(2024, 3, 10, 3, 0, tzinfo=dt.timezone.utc)
    [request] = list(schedule.evaluate_tick(build_schedule_context(scheduled_execution_time=tick)).run_requests)
    assert request.partition_key == "2024-03-09"
