"""Validation is a gate across jobs: a day whose example_anomalies failed in ingest_job is left out of every later
training window (schema, transform, evaluation, infra validation), unless a run tag admits it; too few valid days
fail the run."""

import datetime as dt

import pytest
from dagster import instance_for_test

from trainpipe_assets.core.validation import judge_window
from trainpipe_assets.data.example_gen import examples
from trainpipe_assets.data.sample_data import write_days
from trainpipe_assets.data.statistics_gen.component import statistics
from trainpipe_assets.definitions import build_definitions
from trainpipe_assets_tests.helpers import (
    FIXED,
    failure_message,
    make_config,
    materialize,
    metadata_of,
    resources_for,
    run_job,
    write_config,
)

GOOD = ["2024-03-01", "2024-03-02", "2024-03-03"]
DRIFTED = "2024-03-04"
QUICK = {
    "train_steps": 5,
    "eval_steps": 2,
    "tuning": {"enabled": False, "hyperparameters": FIXED},
    "infra_validation": {"enabled": False},
    "evaluation": {"thresholds": {}},  # 5-step models: blessed by rule "no thresholds", so every run goes through
}


@pytest.fixture(scope="module")
def drifted(tmp_path_factory):
    """Three good days trained and pushed, then a drifted day whose ingest fails its blocking check."""
    root = tmp_path_factory.mktemp("gate")
    trainpipe = make_config(root / "home", write_config(root / "quick.yaml", **QUICK))
    write_days(trainpipe.landing_dir, 3, 150, end=dt.date(2024, 3, 3), seed=3)
    day = dt.date.fromisoformat(DRIFTED)
    write_days(trainpipe.landing_dir, 1, 150, end=day, seed=4, drift_from=day)
    defs = build_definitions(trainpipe)
    with instance_for_test() as instance:
        for good in GOOD:
            run_job(defs, "ingest_job", good, instance)
        run_job(defs, "training_job", GOOD[-1], instance)
        ingest = run_job(defs, "ingest_job", DRIFTED, instance, raise_on_error=False)
        yield {"root": root, "trainpipe": trainpipe, "defs": defs, "instance": instance, "ingest": ingest}


def test_the_drifted_day_failed_its_ingest(drifted):
    [check] = drifted["ingest"].get_asset_check_evaluations()
    assert not drifted["ingest"].success and not check.passed
    assert metadata_of(drifted["ingest"], "example_anomalies")["verdict"].value == "failed"


def test_training_leaves_the_failed_day_out_and_says_why(drifted):
    result = run_job(drifted["defs"], "training_job", DRIFTED, drifted["instance"])
    schema = metadata_of(result, "schema")
    [(day, why)] = schema["excluded_days"].value.items()
    assert day == DRIFTED and why.startswith("example_anomalies failed on its latest ingest: ") and "anomalies" in why
    assert "Drift Cab Co" not in schema["schema"].value  # schema inference never learns from the failed day
    for asset in ("transform_graph", "model_evaluation"):
        assert DRIFTED in metadata_of(result, asset)["excluded_days"].value
    assert metadata_of(result, "transform_graph")["window"].value["days_used"] == GOOD
    assert metadata_of(result, "trained_model")["example_partitions"].value == GOOD
    logged = [entry.user_message for entry in drifted["instance"].all_logs(result.run_id)]
    assert any(f"{DRIFTED} is left out of the window: example_anomalies failed" in m for m in logged)  # the run log


def test_too_few_valid_days_fail_the_run_naming_the_day(drifted):
    trainpipe = make_config(
        drifted["trainpipe"].home, write_config(drifted["root"] / "strict.yaml", **QUICK, min_window_days=4)
    )
    result = run_job(build_definitions(trainpipe), "training_job", DRIFTED, drifted["instance"], raise_on_error=False)
    assert not result.success
    message = failure_message(result)
    assert "fewer than min_window_days=4" in message and f"{DRIFTED}: example_anomalies failed" in message
    assert "trainpipe/admit_days" in message
    assert "transform_graph" not in {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_a_run_tag_admits_the_day_and_the_admission_is_recorded(drifted):
    result = run_job(
        drifted["defs"], "training_job", DRIFTED, drifted["instance"], tags={"trainpipe/admit_days": DRIFTED}
    )
    schema = metadata_of(result, "schema")
    assert schema["admitted_days"].value[DRIFTED].startswith("example_anomalies failed on its latest ingest")
    assert "Drift Cab Co" in schema["schema"].value
    assert metadata_of(result, "trained_model")["example_partitions"].value == GOOD + [DRIFTED]


def test_examples_made_without_example_anomalies_count_as_never_validated(tmp_path):
    trainpipe = make_config(tmp_path / "home")
    write_days(trainpipe.landing_dir, 1, 60, end=dt.date(2024, 3, 1))
    with instance_for_test() as instance:
        materialize(
            [examples, statistics], partition_key="2024-03-01", resources=resources_for(trainpipe), instance=instance
        )
        verdict = judge_window(instance, ["2024-03-01"], admit=set())
    assert verdict.usable == [] and verdict.excluded == {"2024-03-01": "example_anomalies never judged it"}
