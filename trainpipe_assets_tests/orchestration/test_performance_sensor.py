import pytest
from dagster import AssetMaterialization, MetadataValue, SensorResult, instance_for_test

from trainpipe_assets.orchestration.performance_sensor import retrain_on_degradation_sensor
from trainpipe_assets_tests import helpers
from trainpipe_assets_tests.helpers import daily_partitions


@pytest.fixture
def instance():
    with instance_for_test() as inst:
        yield inst


def measured(instance, day: str, degraded: bool, reasons: tuple[str, ...] = ()) -> None:
    instance.report_runless_asset_event(
        AssetMaterialization(
            "serving_model_performance",
            partition=day,
            metadata={
                "degraded": degraded,
                "degradation_reasons": MetadataValue.json(list(reasons)),
                "model_version": 3,
            },
        )
    )


def ingested(instance, day: str) -> None:
    instance.report_runless_asset_event(AssetMaterialization("examples", partition=day))


def tick(instance, cursor=None) -> SensorResult:
    return helpers.tick(retrain_on_degradation_sensor, cursor, instance=instance)


def test_a_degraded_day_requests_one_retrain_of_the_latest_ingested_day(instance):
    for day in ("2024-03-01", "2024-03-04", "2024-03-02"):
        ingested(instance, day)
    measured(instance, "2024-03-01", True, ("accuracy 0.5000 is below its floor 0.6 (monitoring.floors)",))
    first = tick(instance)
    [request] = first.run_requests
    assert request.partition_key == "2024-03-04"
    assert request.tags == {
        "trainpipe/trigger": "serving performance",
        "trainpipe/reason": "2024-03-01 (version 3): accuracy 0.5000 is below its floor 0.6 (monitoring.floors)",
        "trainpipe/degraded_days": "2024-03-01",
    }
    second = tick(instance, first.cursor)
    assert (
        not second.run_requests
        and second.skip_reason.skip_message == "no new serving_model_performance or served_traffic materialization"
    )
    assert int(first.cursor) > 0 and second.cursor == first.cursor


def test_several_degraded_days_make_one_request_with_every_reason(instance):
    measured(instance, "2024-03-01", True, ("accuracy 0.5000 is below its floor 0.6 (monitoring.floors)",))
    measured(instance, "2024-03-02", False)
    measured(
        instance,
        "2024-03-03",
        True,
        (
            "auc 0.6000 is below its floor 0.7 (monitoring.floors)",
            "loss 0.9000 is above its ceiling 0.8 (monitoring.floors)",
        ),
    )
    [request] = tick(instance).run_requests
    assert request.tags["trainpipe/degraded_days"] == "2024-03-01,2024-03-03"
    assert request.tags["trainpipe/reason"].endswith(
        "| 2024-03-03 (version 3): auc 0.6000 is below its floor 0.7 (monitoring.floors); "
        "loss 0.9000 is above its ceiling 0.8 (monitoring.floors)"
    )
    assert request.partition_key == daily_partitions.get_last_partition_key()  # nothing ingested: the last day


def test_no_degraded_day_skips_and_moves_the_cursor(instance):
    measured(instance, "2024-03-01", False)
    first = tick(instance)
    assert (
        not first.run_requests
        and "1 new serving_model_performance materialization(s), none degraded" in first.skip_reason.skip_message
    )
    measured(instance, "2024-03-02", True, "- accuracy 0.1000 is below its floor 0.6 (monitoring.floors)")
    [request] = tick(instance, first.cursor).run_requests  # only what came after the cursor
    assert request.tags["trainpipe/degraded_days"] == "2024-03-02"


def pushed(instance, version: int) -> None:
    instance.report_runless_asset_event(
        AssetMaterialization(
            "pushed_model",
            partition="2024-03-04",
            metadata={"version": version, "serving_path": MetadataValue.path(f"/serving/m/{version}")},
        )
    )


def test_a_day_degraded_under_a_version_no_longer_serving_does_not_retrain(instance):
    pushed(instance, 4)
    measured(instance, "2024-03-01", True, ("accuracy 0.5000 is below its floor 0.6 (monitoring.floors)",))  # version 3
    result = tick(instance)
    assert not result.run_requests and "1 degraded with a version no longer serving" in result.skip_reason.skip_message
    pushed(instance, 3)  # rolled back: version 3 serves again, and its degradation counts
    measured(instance, "2024-03-02", True, "- accuracy 0.5000 is below its floor 0.6 (monitoring.floors)")
    [request] = tick(instance, result.cursor).run_requests
    assert request.tags["trainpipe/degraded_days"] == "2024-03-02"
