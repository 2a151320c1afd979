import json

from dagster import FloatMetadataValue

from trainpipe_assets.core.event_log import current_baseline, model_history
from trainpipe_assets.core.serving_layout import list_versions
from trainpipe_assets.definitions import build_definitions
from trainpipe_assets_tests.helpers import (
    DAYS,
    FIXED,
    PNG_MAGIC,
    inline_pngs,
    make_config,
    metadata_of,
    run_job,
    write_config,
)

PLOTS = ("roc_curve", "pr_curve", "calibration_plot", "confusion_matrix")
METRICS = ("accuracy", "auc", "precision", "recall", "loss")


def test_first_model_has_no_baseline_is_blessed_and_pushed_as_version_1(pipeline):
    evaluation = metadata_of(pipeline["training"], "model_evaluation")
    assert evaluation["blessed"].value is True and evaluation["baseline_version"].value == "none"
    assert "no baseline yet: change thresholds skipped" in evaluation["reasons"].value
    assert "| accuracy |" in evaluation["comparison"].value and "| payment_type | Cash |" in evaluation["slices"].value
    eval_dir = pipeline["home"] / "artifacts" / "model_evaluation" / DAYS[-1]
    report = json.loads((eval_dir / "evaluation.json").read_text())
    assert (eval_dir / "BLESSED").exists() and report["baseline"] is None
    assert 0.5 < report["candidate"]["overall"]["accuracy"] <= 1
    plots = report["candidate"]["plots"]
    assert plots["roc"]["fpr"][0] == 0 and plots["roc"]["tpr"][-1] == 1 and len(plots["pr"]["precision"]) > 1
    assert len(plots["calibration"]) == 10
    assert sum(map(sum, plots["confusion_matrix"])) == evaluation["eval_examples"].value
    for key in PLOTS:
        [png] = inline_pngs(evaluation[key].value)
        assert png.startswith(PNG_MAGIC) and len(png) < 40_000
    assert not [k for k in evaluation if k.startswith(("baseline_", "change_")) and k != "baseline_version"]
    assert all(f"| {m} |" in evaluation["slices"].value.splitlines()[0] for m in METRICS)  # every metric per slice
    assert "| accuracy | lower_bound | 0.6 |" in evaluation["thresholds"].value
    pushed = metadata_of(pipeline["training"], "pushed_model")
    assert pushed["version"].value == 1
    assert pushed["serving_path"].value == str(pipeline["home"] / "serving" / "trips_model" / "1")
    assert pushed["source_run_id"].value == pipeline["training"].run_id


def test_the_second_run_is_evaluated_against_the_first_pushed_version(pipeline, retrained):
    evaluation = metadata_of(retrained, "model_evaluation")
    assert evaluation["baseline_version"].value == 1
    report = json.loads((pipeline["home"] / "artifacts/model_evaluation" / DAYS[-1] / "evaluation.json").read_text())
    assert report["baseline"]["version"] == 1 and report["baseline"]["path"].endswith("/serving/trips_model/1")
    assert any(v["rule"] == "change_absolute" for v in report["verdicts"])
    assert report["baseline"]["plots"]["roc"] is not None
    for m in METRICS:
        assert isinstance(evaluation[f"baseline_{m}"], FloatMetadataValue)
        change = evaluation[f"change_{m}"].value
        assert change == evaluation[f"candidate_{m}"].value - evaluation[f"baseline_{m}"].value
    [change_rule] = [v for v in report["verdicts"] if v["rule"] == "change_absolute"]
    verdict = "pass" if change_rule["passed"] else "FAIL"
    row = f"| accuracy | change_absolute | -0.02 | {change_rule['value']:+.4g} | {verdict} |"
    assert row in evaluation["thresholds"].value
    assert "| accuracy (baseline) |" in evaluation["slices"].value
    assert all(inline_pngs(evaluation[key].value)[0].startswith(PNG_MAGIC) for key in PLOTS)
    if evaluation["blessed"].value:
        assert metadata_of(retrained, "pushed_model")["version"].value == 2
        assert current_baseline(pipeline["instance"]).version == 2
    else:  # lost to version 1 by more than the change threshold: blocked, and version 1 keeps serving
        assert not retrained.success and "pushed_model" not in {
            e.asset_key.to_user_string() for e in retrained.get_asset_materialization_events()
        }
        assert current_baseline(pipeline["instance"]).version == 1


def test_history_lists_both_models_from_the_event_log(pipeline, retrained):
    rows = model_history(pipeline["instance"])
    assert [r["run_id"] for r in rows[:2]] == [retrained.run_id, pipeline["training"].run_id]
    first = rows[1]
    assert first["pushed_version"] == 1 and first["blessed"] is True and first["baseline_version"] == "none"
    assert first["example_partitions"] == DAYS and set(first["hyperparameters"]) == {
        "hidden_units",
        "num_layers",
        "learning_rate",
    }
    assert first["code_version"] == "training-v1"
    assert rows[0]["baseline_version"] == 1


def test_an_unblessed_model_is_never_pushed(pipeline, tmp_path):
    config = write_config(
        tmp_path / "strict.yaml",
        train_steps=5,
        eval_steps=2,
        tuning={"enabled": False, "hyperparameters": FIXED},
        evaluation={"thresholds": {"accuracy": {"lower_bound": 0.999}}},
    )
    trainpipe = make_config(pipeline["home"], config)
    before = list_versions(pipeline["home"] / "serving" / "trips_model")
    result = run_job(build_definitions(trainpipe), "training_job", DAYS[-1], pipeline["instance"], raise_on_error=False)
    assert not result.success
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "model_blessed"]
    assert not check.passed and "accuracy lower_bound" in check.description
    assert "pushed_model" not in {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert list_versions(pipeline["home"] / "serving" / "trips_model") == before
    assert (pipeline["home"] / "artifacts/model_evaluation" / DAYS[-1] / "NOT_BLESSED").exists()


def test_force_bless_by_run_tag_is_recorded(pipeline, tmp_path):
    config = write_config(
        tmp_path / "strict.yaml",
        train_steps=5,
        eval_steps=2,
        tuning={"enabled": False, "hyperparameters": FIXED},
        evaluation={"thresholds": {"accuracy": {"lower_bound": 0.999}}},
    )
    defs = build_definitions(make_config(pipeline["home"], config))
    result = defs.resolve_job_def("training_job").execute_in_process(
        partition_key=DAYS[-1], instance=pipeline["instance"], tags={"trainpipe/force_bless": "true"}
    )
    evaluation = metadata_of(result, "model_evaluation")
    assert evaluation["blessed"].value is True
    assert (
        "force-blessed: run tag trainpipe/force_bless=true (despite failed thresholds)" in evaluation["reasons"].value
    )
    assert metadata_of(result, "pushed_model")["version"].value > 1
