import datetime as dt
import json

import pytest
from dagster import AssetKey, AssetMaterialization, MetadataValue, instance_for_test

from trainpipe_assets.core.event_log import current_baseline
from trainpipe_assets.core.settings import ConfigError
from trainpipe_assets.data.example_gen import examples
from trainpipe_assets.monitoring.serving_model_performance import (
    END_OF_DAY,
    EXAMPLES_MATERIALIZED,
    SERVING_NOW,
    ServingChoice,
    choose_version,
    degradation,
    serving_model_performance,
)
from trainpipe_assets.orchestration.performance_sensor import retrain_on_degradation_sensor
from trainpipe_assets_tests import helpers
from trainpipe_assets_tests.helpers import (
    DAYS,
    FAST_TRAINING,
    failure_message,
    make_config,
    materialize,
    metadata_of,
    resources_for,
    write_config,
)


def measure(pipeline, tmp_path, instance=None, **overrides):
    config = write_config(tmp_path / "monitoring.yaml", **FAST_TRAINING, **overrides)
    return materialize(
        [examples, serving_model_performance],
        selection=[serving_model_performance],
        partition_key=DAYS[0],
        resources=resources_for(make_config(pipeline["home"], config)),
        instance=instance or pipeline["instance"],
        raise_on_error=False,
    )


def test_a_lenient_floor_is_not_degraded(pipeline, tmp_path):
    result = measure(pipeline, tmp_path, monitoring={"floors": {"accuracy": 0.1}, "max_drop": {"accuracy": 0.5}})
    assert result.success, failure_message(result)
    metadata = metadata_of(result)
    assert metadata["degraded"].value is False and metadata["reasons"].value == "- none"
    # in range, not above chance: the session's model is trained on a few rows a day and once scored exactly 0.5 here
    assert 0 <= metadata["metric_accuracy"].value <= 1 and 0 < metadata["metric_loss"].value
    # The day ended (2024) and was ingested before the first push: the backfill rules pick the version.
    assert metadata["serving_basis"].value in (EXAMPLES_MATERIALIZED, SERVING_NOW)
    if metadata["serving_basis"].value == SERVING_NOW:
        assert metadata["model_version"].value == current_baseline(pipeline["instance"]).version
    # DAYS[0] is in the model's training window: only its eval split is unseen, so only it is scored.
    assert metadata["splits"].value == ["eval"]
    assert 0 <= metadata["evaluation_accuracy"].value <= 1 and metadata["evaluation_run_id"].value != "none"
    assert f"| {DAYS[0]} (this run) | {metadata['model_version'].value} |" in metadata["trend"].value
    report = json.loads(
        (pipeline["home"] / "artifacts/serving_model_performance" / DAYS[0] / "performance.json").read_text()
    )
    assert report["degraded"] is False and report["rows"] == metadata["rows"].value > 0
    assert report["metrics"]["accuracy"] == metadata["metric_accuracy"].value


def test_a_strict_floor_is_degraded_and_the_sensor_requests_a_retrain(pipeline, tmp_path):
    instance = pipeline["instance"]
    before = instance.fetch_materializations(AssetKey("serving_model_performance"), limit=1).records
    cursor = str(before[0].storage_id) if before else None
    result = measure(pipeline, tmp_path, monitoring={"floors": {"accuracy": 0.99}})
    assert result.success, failure_message(result)
    metadata = metadata_of(result)
    assert metadata["degraded"].value is True
    assert (
        "accuracy" in metadata["reasons"].value
        and "is below its floor 0.99 (monitoring.floors)" in metadata["reasons"].value
    )

    tick = helpers.tick(retrain_on_degradation_sensor, cursor, instance=instance)
    [request] = tick.run_requests
    latest = max(instance.get_materialized_partitions(AssetKey("examples")))  # other tests may ingest more days
    assert request.partition_key == latest != DAYS[0]  # the latest ingested day, not the degraded one
    assert request.tags["trainpipe/trigger"] == "serving performance"
    assert request.tags["trainpipe/reason"].startswith(
        f"{DAYS[0]} (version {metadata['model_version'].value}): accuracy"
    )


def test_a_version_gone_from_disk_fails_clearly(pipeline, tmp_path):
    with instance_for_test() as instance:
        instance.report_runless_asset_event(
            AssetMaterialization(
                "pushed_model",
                metadata={
                    "version": 99,
                    "serving_path": MetadataValue.path(str(pipeline["home"] / "serving/trips_model/99")),
                },
            )
        )
        result = measure(pipeline, tmp_path, instance=instance)
    assert not result.success
    assert f"version 99 ({SERVING_NOW}) is gone from {pipeline['home'] / 'serving/trips_model/99'}" in failure_message(
        result
    )


def test_a_day_without_labels_fails_clearly(pipeline, tmp_path):
    result = measure(pipeline, tmp_path, label_key="tip_paid")
    assert not result.success
    assert f"labels of {DAYS[0]} are not known: its examples have no feature 'tip_paid' (label_key)" in failure_message(
        result
    )


def test_an_unknown_monitored_metric_is_named(pipeline, tmp_path):
    # The settings are read when the definitions are built, so a typo fails there, naming the file and the field.
    with pytest.raises(ConfigError, match=r"monitoring.yaml: monitoring.floors.f1.\[key\]: Input should be 'accuracy'"):
        measure(pipeline, tmp_path, monitoring={"floors": {"f1": 0.5}})


def _at(day: str, hour: int) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=dt.timezone.utc)


def test_the_version_serving_that_day_is_chosen():
    timeline = [
        {"timestamp": _at("2024-03-02", 12).timestamp(), "serving_version": 1},
        {"timestamp": _at("2024-03-05", 12).timestamp(), "serving_version": 2},
    ]
    assert choose_version(timeline, _at("2024-03-04", 0), None, 2) == ServingChoice(1, END_OF_DAY)
    assert choose_version(timeline, _at("2024-03-06", 0), None, 2) == ServingChoice(2, END_OF_DAY)
    assert choose_version(timeline, _at("2024-03-01", 0), _at("2024-03-03", 0), 2) == ServingChoice(
        1, EXAMPLES_MATERIALIZED
    )
    assert choose_version(timeline, _at("2024-03-01", 0), _at("2024-03-01", 1), 2) == ServingChoice(2, SERVING_NOW)
    assert choose_version([], _at("2024-03-01", 0), None, None) is None


def test_floors_and_drops_in_both_directions():
    metrics = {"accuracy": 0.70, "loss": 0.60, "auc": None}
    at_evaluation = {"accuracy": 0.80, "loss": 0.40, "auc": 0.9}
    assert (
        degradation(
            metrics,
            at_evaluation,
            {"accuracy": 0.6, "loss": 0.7, "auc": 0.99},
            {"accuracy": 0.2, "loss": 0.3, "auc": 0.0},
        )
        == []
    )
    reasons = degradation(metrics, at_evaluation, {"accuracy": 0.75, "loss": 0.5}, {"accuracy": 0.05, "loss": 0.1})
    assert reasons == [
        "accuracy 0.7000 is below its floor 0.75 (monitoring.floors)",
        "loss 0.6000 is above its ceiling 0.5 (monitoring.floors)",
        "accuracy 0.7000 is 0.1000 worse than at evaluation (0.8000), more than max_drop 0.05",
        "loss 0.6000 is 0.2000 worse than at evaluation (0.4000), more than max_drop 0.1",
    ]
