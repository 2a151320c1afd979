"""`infra_validation` in training_job, and its blocking `infra_blessed` check in front of `pushed_model`."""

import json

from trainpipe_assets.core.serving_layout import list_versions
from trainpipe_assets.definitions import build_definitions
from trainpipe_assets_tests.helpers import DAYS, FIXED, make_config, metadata_of, run_job, write_config


def test_the_pushed_model_passed_infra_validation_first(pipeline):
    metadata = metadata_of(pipeline["training"], "infra_validation")
    assert metadata["infra_blessed"].value is True and metadata["mode"].value == "LOAD_AND_QUERY"
    assert metadata["queried_examples"].value == 10 and metadata["load_seconds"].value > 0
    assert metadata["latency_p50_ms"].value > 0 and metadata["server_log_tail"].value.startswith("```")
    folder = pipeline["home"] / "artifacts" / "infra_validation" / DAYS[-1]
    assert (folder / "INFRA_BLESSED").exists() and not (folder / "INFRA_NOT_BLESSED").exists()
    report = json.loads((folder / "infra_validation.json").read_text())
    assert report["blessed"] and report["attempts"][-1]["ok"]
    [check] = [c for c in pipeline["training"].get_asset_check_evaluations() if c.check_name == "infra_blessed"]
    assert check.passed


def test_a_model_whose_server_cannot_start_is_never_pushed(pipeline, tmp_path):
    config = write_config(
        tmp_path / "tiny_memory.yaml",
        train_steps=5,
        eval_steps=2,
        tuning={"enabled": False, "hyperparameters": FIXED},
        evaluation={"force_bless": True},  # reach infra validation whatever the evaluator thinks of 5 steps
        infra_validation={"memory_limit_mb": 256, "num_tries": 2},
    )
    before = list_versions(pipeline["home"] / "serving" / "trips_model")
    result = run_job(
        build_definitions(make_config(pipeline["home"], config)),
        "training_job",
        DAYS[-1],
        pipeline["instance"],
        raise_on_error=False,
    )
    assert not result.success
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "infra_blessed"]
    assert not check.passed and "failed to load" in check.description
    metadata = metadata_of(result, "infra_validation")
    assert metadata["infra_blessed"].value is False and metadata["attempts"].value == 2
    assert (
        "failed to map segment" in metadata["attempt_reasons"].value
        or "MemoryError" in metadata["attempt_reasons"].value
    )
    assert "pushed_model" not in {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert list_versions(pipeline["home"] / "serving" / "trips_model") == before
    assert (pipeline["home"] / "artifacts/infra_validation" / DAYS[-1] / "INFRA_NOT_BLESSED").exists()
