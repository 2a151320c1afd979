import json
import os
import time

import pytest
from dagster import SensorResult

from trainpipe_assets.orchestration.sensors import SETTLE_SECONDS, new_data_sensor
from trainpipe_assets_tests import helpers
from trainpipe_assets_tests.helpers import make_config, write_config


@pytest.fixture
def trainpipe(home, tmp_path):
    # A fixed first partition, so a file for a day before it (or after today) has no partition yet.
    config = make_config(home, write_config(tmp_path / "fixed.yaml", partitions_start="2024-01-01"))
    config.landing_dir.mkdir(parents=True)
    return config


def land(trainpipe, name: str, text: str = "a,b\n1,2\n", age: float = SETTLE_SECONDS + 5):
    path = trainpipe.landing_dir / name
    path.write_text(text)
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def tick(trainpipe, cursor=None) -> SensorResult:
    return helpers.tick(new_data_sensor, cursor, trainpipe=trainpipe)


def test_a_settled_new_file_requests_ingest_for_its_day_once(trainpipe):
    land(trainpipe, "trips_2024-03-01.csv")
    first = tick(trainpipe)
    [request] = first.run_requests
    assert request.partition_key == "2024-03-01"
    assert request.run_key.startswith("ingest:2024-03-01:")
    second = tick(trainpipe, first.cursor)
    assert second.run_requests == [] and "no new or changed files" in second.skip_reason.skip_message


def test_files_of_one_day_make_one_run_and_a_changed_file_a_new_run_key(trainpipe):
    land(trainpipe, "a_2024-03-01.csv")
    land(trainpipe, "b_2024-03-01.csv")
    land(trainpipe, "a_2024-03-02.csv")
    first = tick(trainpipe)
    assert sorted(r.partition_key for r in first.run_requests) == ["2024-03-01", "2024-03-02"]
    old_key = next(r.run_key for r in first.run_requests if r.partition_key == "2024-03-01")
    land(trainpipe, "b_2024-03-01.csv", "a,b\n1,2\n3,4\n")
    second = tick(trainpipe, first.cursor)
    [request] = second.run_requests
    assert request.partition_key == "2024-03-01" and request.run_key != old_key
    assert request.tags["trainpipe/files"] == "a_2024-03-01.csv,b_2024-03-01.csv"


def test_touching_a_file_without_changing_it_requests_nothing(trainpipe):
    path = land(trainpipe, "trips_2024-03-01.csv")
    first = tick(trainpipe)
    os.utime(path, (time.time() - 100, time.time() - 100))
    assert tick(trainpipe, first.cursor).run_requests == []


def test_files_being_written_wait_for_the_next_tick(trainpipe):
    land(trainpipe, "trips_2024-03-01.csv.part")
    fresh = land(trainpipe, "trips_2024-03-02.csv", age=0)
    first = tick(trainpipe)
    assert first.run_requests == []
    reason = first.skip_reason.skip_message
    assert (
        "still being written" in reason and "trips_2024-03-01.csv.part" in reason and "trips_2024-03-02.csv" in reason
    )
    with open(fresh, "a") as f:
        f.write("5,6\n")  # still growing: wait again
    second = tick(trainpipe, first.cursor)
    assert second.run_requests == []
    third = tick(trainpipe, second.cursor)  # same size as last tick: complete
    assert [r.partition_key for r in third.run_requests] == ["2024-03-02"]


def test_unparseable_names_and_days_without_partitions_are_reported(trainpipe):
    land(trainpipe, "notes.txt")
    land(trainpipe, "trips_March.csv")
    land(trainpipe, "trips_1999-01-01.csv")
    result = tick(trainpipe)
    assert result.run_requests == []
    reason = result.skip_reason.skip_message
    assert "notes.txt" in reason and "trips_March.csv" in reason and "<name>_YYYY-MM-DD.csv" in reason
    assert "trips_1999-01-01.csv" in reason and "partition" in reason


def test_cursor_is_json_with_a_fingerprint_per_file(trainpipe):
    land(trainpipe, "trips_2024-03-01.csv")
    cursor = json.loads(tick(trainpipe).cursor)
    entry = cursor["trips_2024-03-01.csv"]
    assert len(entry["sha256"]) == 64 and entry["requested"] == entry["sha256"]


def test_the_first_tick_does_not_request_files_already_ingested(tmp_path, instance):
    """Turned on after `trainpipe demo` (which ingested the files itself), the sensor starts from the event log."""
    import datetime as dt

    from trainpipe_assets.data.sample_data import write_days
    from trainpipe_assets.definitions import build_definitions
    from trainpipe_assets_tests.helpers import run_job

    trainpipe = make_config(tmp_path / "home")
    write_days(trainpipe.landing_dir, 2, 30, end=dt.date(2024, 3, 2))
    run_job(build_definitions(trainpipe), "ingest_job", "2024-03-01", instance)
    for path in trainpipe.landing_dir.iterdir():  # settled files
        os.utime(path, (time.time() - SETTLE_SECONDS - 5,) * 2)
    result = helpers.tick(new_data_sensor, instance=instance, trainpipe=trainpipe)
    assert [r.partition_key for r in result.run_requests] == ["2024-03-02"]  # not 2024-03-01, already ingested
    (trainpipe.landing_dir / "trips_2024-03-01.csv").write_text("changed,content\n1,2\n")
    os.utime(trainpipe.landing_dir / "trips_2024-03-01.csv", (time.time() - SETTLE_SECONDS - 5,) * 2)
    again = helpers.tick(new_data_sensor, instance=instance, trainpipe=trainpipe)  # no cursor: seeded again
    assert "2024-03-01" in [r.partition_key for r in again.run_requests]  # changed content is requested
