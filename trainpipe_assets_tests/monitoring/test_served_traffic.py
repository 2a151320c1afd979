"""served_traffic on traffic written by Capture itself: real examples of the test days, sent as a client would (without
the label), answered by the pipeline's pushed model; a normal day, a day with one feature shifted, and labels that
arrive for part of the requests, some of which another version answered."""

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from dagster import AssetKey, AssetRecordsFilter

from trainpipe_assets.core.event_log import current_baseline, model_history
from trainpipe_assets.core.example_reader import decode_examples, read_records
from trainpipe_assets.core.io_managers.artifact_dir import read_artifact
from trainpipe_assets.data.example_gen import examples
from trainpipe_assets.model.evaluator.component import score_serialized
from trainpipe_assets.model.evaluator.metrics import as_probabilities
from trainpipe_assets.monitoring.served_traffic import served_traffic
from trainpipe_assets.monitoring.serving_model_performance import FROM_CAPTURE, FROM_EXAMPLES, serving_model_performance
from trainpipe_assets.orchestration.performance_sensor import WATCHED, retrain_on_degradation_sensor
from trainpipe_assets.serving.capture import Capture
from trainpipe_assets_tests import helpers
from trainpipe_assets_tests.helpers import (
    DAYS,
    FAST_TRAINING,
    failure_message,
    inline_pngs,
    make_config,
    materialize,
    metadata_of,
    resources_for,
    write_config,
)

NORMAL, DRIFTED, EMPTY = DAYS[1], DAYS[2], "2024-03-06"  # the drifted day is the day after the normal one
BATCH = 8  # instances per request
OTHER = 1000  # added to the serving version: a canary answering the last requests with the opposite scores
MAX_SKEW = 0.5


def without_label(record: bytes, shift_fare: float = 0.0) -> bytes:
    import tensorflow as tf

    example = tf.train.Example.FromString(record)
    del example.features.feature["big_tipper"]
    fare = example.features.feature["fare"].float_list.value
    if fare:
        fare[0] += shift_fare
    return example.SerializeToString()


def capture_day(directory: Path, day: str, records: list[bytes], scores: np.ndarray, version: int) -> list[dict]:
    """Requests of BATCH serialized examples, as the REST API records them; the last quarter answered by version
    OTHER + version with 1 - score. Returns what each row was: request id, position, version, probability."""
    import base64

    noon = dt.datetime.fromisoformat(day).replace(hour=12, tzinfo=dt.timezone.utc)
    capture = Capture(directory, 1.0, clock=lambda: noon)
    rows, canary_from = [], len(records) * 3 // 4
    for start in range(0, len(records), BATCH):
        canary = start >= canary_from
        answered = 1 - scores[start : start + BATCH] if canary else scores[start : start + BATCH]
        request_id = f"{day}-{start}"
        body = {"instances": [{"b64": base64.b64encode(r).decode()} for r in records[start : start + BATCH]]}
        served_by = version + OTHER if canary else version
        capture.record(
            "trips_model", served_by, "serving_default", "predict", body, {"predictions": answered.tolist()}, request_id
        )
        rows += [(request_id, i, served_by, float(p[0])) for i, p in enumerate(answered)]
    capture.close()
    assert capture.written == -(-len(records) // BATCH) and capture.dropped == 0
    return rows


def latest_storage_id(instance):
    ids = [r.storage_id for key in WATCHED for r in instance.fetch_materializations(key, limit=1).records]
    return str(max(ids)) if ids else None


@pytest.fixture(scope="module")
def traffic(pipeline, tmp_path_factory):
    """The normal day (labels for every other request) and the drifted day, captured and materialized."""
    base = tmp_path_factory.mktemp("traffic")
    home, instance = pipeline["home"], pipeline["instance"]
    version = current_baseline(instance, pipeline["trainpipe"].serving_dir).version
    model_dir = pipeline["trainpipe"].serving_dir / str(version)
    raw = read_records([str(home / "artifacts/examples" / d / "Split-eval/*.gz") for d in DAYS])
    labels = decode_examples(raw).column("big_tipper").to_pylist()
    sent = [without_label(r) for r in raw]
    probabilities, _ = as_probabilities(score_serialized(model_dir, sent, None), "auto")
    scores = probabilities.reshape(len(sent), 1)
    normal = capture_day(base / "capture", NORMAL, sent, scores, version)
    capture_day(base / "capture", DRIFTED, [without_label(r, shift_fare=100.0) for r in raw], scores, version)
    (base / "labels").mkdir()
    labelled = [(row, label) for row, label in zip(normal, labels) if int(row[0].rsplit("-", 1)[1]) % (2 * BATCH) == 0]
    lines = [f"{request_id},{label[0]},{i}" for (request_id, i, _, _), label in labelled]
    (base / "labels" / "labels.csv").write_text("request_id,label,index\n" + "\n".join(lines) + "\n")
    serving = {"capture_dir": str(base / "capture"), "capture_labels": str(base / "labels")}
    config = write_config(
        base / "traffic.yaml", **FAST_TRAINING, serving=serving, monitoring={"max_serving_skew": MAX_SKEW}
    )
    cursor = latest_storage_id(instance)
    resources = resources_for(make_config(home, config))
    results = {
        day: materialize([served_traffic], resources, partition_key=day, instance=instance, raise_on_error=False)
        for day in (NORMAL, DRIFTED, EMPTY)
    }
    return {
        "version": version,
        "rows": len(sent),
        "results": results,
        "labelled": labelled,
        "cursor": cursor,
        "serving": serving,
        "normal": normal,
        "window": next(r for r in model_history(instance) if r["pushed_version"] == version)["example_partitions"],
    }


def expected_accuracy(labelled, version) -> float:
    rows = [(p >= 0.5) == bool(label[0]) for (_, _, v, p), label in labelled if v == version]
    return float(np.mean(rows))


def test_a_normal_day_shows_its_skew_from_the_training_window(traffic, pipeline):
    result = traffic["results"][NORMAL]
    assert result.success, failure_message(result)
    metadata = metadata_of(result)
    assert metadata["rows"].value == traffic["rows"] and metadata["requests"].value == -(-traffic["rows"] // BATCH)
    assert metadata["model_version"].value == traffic["version"]  # three quarters of the rows
    assert metadata["training_window"].value == traffic["window"] == DAYS
    assert 0 < metadata["max_skew"].value < MAX_SKEW and metadata["degraded"].value is False
    table = metadata["skew"].value.splitlines()
    assert {line.split(" | ")[0].strip("| ") for line in table[2:]} == {
        "trip_start_hour", "pickup_area", "trip_miles", "trip_seconds", "fare", "payment_type", "company"
    }  # fmt: skip  # the label is not a served feature
    skews = [float(line.split(" | ")[2]) for line in table[2:]]
    assert skews == sorted(skews, reverse=True) and skews[0] == pytest.approx(metadata["max_skew"].value, rel=1e-3)
    assert len(inline_pngs(metadata["histograms"].value)) == 5  # four most skewed numeric features, the scores
    served = read_artifact(Path(metadata["path"].value))
    assert served.splits == ["served", "training_window"]
    [dataset] = served.load("served").datasets
    assert dataset.num_examples == traffic["rows"] and "big_tipper" not in [f.path.step[0] for f in dataset.features]
    window = served.load("training_window").datasets[0]
    assert window.num_examples == sum(train_rows(pipeline["instance"], d) for d in DAYS)
    served_rows = [p for _, _, v, p in traffic["normal"] if v == traffic["version"]]
    assert metadata["mean_score"].value == pytest.approx(np.mean(served_rows))
    assert metadata["predicted_positive_rate"].value == pytest.approx(np.mean(np.array(served_rows) >= 0.5))


def train_rows(instance, day: str) -> int:
    [record] = instance.fetch_materializations(AssetRecordsFilter(AssetKey("statistics"), [day]), limit=1).records
    return (
        read_artifact(Path(record.asset_materialization.metadata["path"].value)).load("train").datasets[0].num_examples
    )


def test_a_drifted_feature_is_listed_first(traffic):
    result = traffic["results"][DRIFTED]
    assert result.success, failure_message(result)
    metadata = metadata_of(result)
    assert metadata["most_skewed_feature"].value == "fare" and metadata["max_skew"].value > 0.9
    assert metadata["skew"].value.splitlines()[2].startswith("| fare | FLOAT | ")
    assert metadata["degraded"].value is True
    # ... and drifted from the day before's traffic, the normal day, which had none before it
    assert metadata["most_drifted_feature"].value == "fare" and metadata["max_drift"].value > 0.9
    drift = metadata["drift"].value.splitlines()
    assert f"| missing {NORMAL} → served | {NORMAL} | served |" in drift[0] and drift[2].startswith("| fare | FLOAT | ")
    assert metadata_of(traffic["results"][NORMAL])["drift"].value.startswith(
        "not measured: no served traffic of the day before"
    )
    assert metadata["degradation_reasons"].value == [
        f"fare: skew {metadata['max_skew'].value:.4f} from the training window of version {traffic['version']} is "
        f"over monitoring.max_serving_skew {MAX_SKEW}"
    ]
    report = json.loads((Path(metadata["path"].value) / "served_traffic.json").read_text())
    normal = json.loads(
        (Path(metadata_of(traffic["results"][NORMAL])["path"].value) / "served_traffic.json").read_text()
    )
    fare = {s["feature"]: s for s in normal["skew"]}["fare"]
    assert report["skew"][0]["js"] > 0.9 > 0.3 > fare["js"]


def test_labels_give_live_metrics_per_version(traffic):
    metadata = metadata_of(traffic["results"][NORMAL])
    version, labelled = traffic["version"], traffic["labelled"]
    live = metadata["live_metrics"].value
    assert set(live) == {str(version), str(version + OTHER)}
    for v in (version, version + OTHER):
        rows = sum(1 for (_, _, served_by, _), _ in labelled if served_by == v)
        assert live[str(v)]["example_count"] == rows > 0
        assert live[str(v)]["accuracy"] == pytest.approx(expected_accuracy(labelled, v))
        assert metadata[f"live_accuracy_v{v}"].value == pytest.approx(expected_accuracy(labelled, v))
    assert metadata["labelled_rows"].value == len(labelled)
    assert (
        "live_metrics" not in metadata_of(traffic["results"][DRIFTED])
        or not metadata_of(traffic["results"][DRIFTED])["live_metrics"].value
    )


def test_a_day_without_capture_fails_naming_the_folder(traffic):
    result = traffic["results"][EMPTY]
    assert not result.success
    message = failure_message(result)
    assert f"no traffic captured for model 'trips_model' on {EMPTY}: no {EMPTY}.*.jsonl file in " in message
    assert "trainpipe serve --capture-dir" in message


def test_a_skewed_day_makes_the_sensor_request_a_retrain(traffic, pipeline):
    tick = helpers.tick(retrain_on_degradation_sensor, traffic["cursor"], instance=pipeline["instance"])
    [request] = tick.run_requests
    assert request.tags["trainpipe/trigger"] == "served traffic"
    assert request.tags["trainpipe/degraded_days"] == DRIFTED
    assert request.tags["trainpipe/reason"].startswith(
        f"served_traffic {DRIFTED} (version {traffic['version']}): fare: skew "
    )


def test_live_metrics_count_as_the_days_performance(traffic, pipeline, tmp_path):
    version, labelled = traffic["version"], traffic["labelled"]
    accuracy = expected_accuracy(labelled, version)

    def measure(**overrides):
        config = write_config(tmp_path / "perf.yaml", **FAST_TRAINING, serving=traffic["serving"], **overrides)
        return materialize(
            [examples, serving_model_performance],
            selection=[serving_model_performance],
            partition_key=NORMAL,
            resources=resources_for(make_config(pipeline["home"], config)),
            instance=pipeline["instance"],
            raise_on_error=False,
        )

    rows = sum(1 for (_, _, v, _), _ in labelled if v == version)
    # The day's examples have no label under this name: the captured traffic's labels are the day's performance.
    unlabelled = measure(label_key="tip_paid", monitoring={"floors": {"accuracy": 0.1}, "max_drop": {}})
    assert unlabelled.success, failure_message(unlabelled)
    metadata = metadata_of(unlabelled)
    assert metadata["model_version"].value == version and metadata["metrics_source"].value == FROM_CAPTURE
    assert metadata["metric_accuracy"].value == pytest.approx(accuracy) and metadata["splits"].value == []
    assert metadata["rows"].value == rows and metadata["degraded"].value is False
    # Labelled examples are scored as before, and the live metrics are held against the floors too.
    strict = measure(monitoring={"floors": {"accuracy": 0.99}, "max_drop": {}})
    assert strict.success, failure_message(strict)
    metadata = metadata_of(strict)
    assert metadata["metrics_source"].value == FROM_EXAMPLES
    assert metadata["live_accuracy"].value == pytest.approx(accuracy) and metadata["degraded"].value is True
    assert (
        f"on captured traffic ({rows} labelled rows): accuracy {accuracy:.4f} is below its floor 0.99 "
        "(monitoring.floors)"
    ) in metadata["degradation_reasons"].value
