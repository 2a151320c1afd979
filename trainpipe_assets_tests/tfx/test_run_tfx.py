"""`trainpipe run-tfx` on pipeline files written for these tests, run as a user runs them (a subprocess), on the
bundled sample module and `trainpipe simulate` data with tiny training settings."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

from trainpipe_assets.core.settings import DEFAULT_MODULE_FILE
from trainpipe_assets.data.sample_data import write_days

PIPELINES = Path(__file__).parent / "pipelines"


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("TRAINPIPE_CONFIG", "DAGSTER_HOME", "TRAINPIPE_HOME")}


def run_tfx(tmp: Path, pipeline: str, *flags: str, home: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "trainpipe_assets.cli", "run-tfx", str(PIPELINES / pipeline), "--home", str(home),
               "--", *flags]
    return subprocess.run(command, cwd=tmp, env=clean_env(), capture_output=True, text=True, timeout=900)


def evaluation_metadata(home: Path) -> dict:
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    try:
        with DagsterInstance.get() as instance:
            event = instance.get_latest_materialization_event(AssetKey("model_evaluation"))
            return {k: v.value for k, v in event.asset_materialization.metadata.items()}
    finally:
        os.environ.pop("DAGSTER_HOME")


@pytest.fixture(scope="module")
def v1_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("v1")
    write_days(tmp / "data", 2, 240, end=dt.date(2024, 3, 2), seed=3)
    flags = ("--data", "data", "--serving", str(tmp / "serving" / "trips"), "--module", str(DEFAULT_MODULE_FILE))
    first = run_tfx(tmp, "v1_csv_pipeline.py", *flags, home=tmp / "home")
    first_eval = evaluation_metadata(tmp / "home") if first.returncode == 0 else None
    second = run_tfx(tmp, "v1_csv_pipeline.py", *flags, home=tmp / "home")
    return {"tmp": tmp, "first": first, "first_eval": first_eval, "second": second}


def test_v1_pipeline_is_mapped_evaluated_with_its_thresholds_and_pushed(v1_run):
    first = v1_run["first"]
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    out = first.stdout
    assert "BinaryAccuracy threshold -> evaluation.thresholds.accuracy" in out
    assert "output_config hash buckets -> splits {'train': 3, 'eval': 1}" in out
    assert "Tuner: tuner_fn -> tuning" in out and "best_hyperparameters: mode=tuned, num_trials=2" in out
    settings = (v1_run["tmp"] / "home" / "trips_v1.trainpipe.yaml").read_text()
    assert "train_steps: 40" in settings and "lower_bound: 0.3" in settings and "absolute: -0.5" in settings
    evaluation = v1_run["first_eval"]
    assert evaluation["blessed"] is True and evaluation["baseline_version"] == "none"
    reasons = json.dumps(evaluation["blessing_reasons"])
    assert "change thresholds skipped" in reasons and "threshold checks passed" in reasons
    pushed = v1_run["tmp"] / "serving" / "trips" / "1" / "saved_model.pb"
    assert pushed.is_file(), "pushed to the push destination"


def test_a_second_run_reuses_cached_steps_and_evaluates_against_the_first_push(v1_run):
    second = v1_run["second"]
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    for asset in ("schema", "transform_graph", "best_hyperparameters", "trained_model", "pushed_model"):
        assert f"{asset} (cached: reused)" in second.stdout
    assert "model_evaluation: blessed=True, baseline_version=1" in second.stdout
    assert "all 2 threshold checks passed" in second.stdout
    assert sorted(p.name for p in (v1_run["tmp"] / "serving" / "trips").iterdir()) == ["1"]


def test_the_pushed_model_is_served_from_the_push_destination(v1_run):
    """`trainpipe serve` on the Pusher's base_directory, asked as a client asks: raw eval examples through :predict."""
    import base64

    from trainpipe_assets.core.example_reader import read_records
    from trainpipe_assets.serving.client import http_json
    from trainpipe_assets_tests.serving.helpers import Server, wait_healthy

    assert v1_run["first"].returncode == 0, "the pipeline ran"
    split_eval = sorted((v1_run["tmp"] / "home" / "artifacts" / "examples").glob("*/Split-eval"))[-1]
    records = read_records([str(split_eval / "*.gz")], limit=4)
    server = Server(v1_run["tmp"] / "serving" / "trips", name="trips")
    try:
        wait_healthy(server)
        body = {"instances": [{"b64": base64.b64encode(r).decode()} for r in records]}
        status, answer = http_json(f"{server.root}/v1/models/trips:predict", body)
        assert status == 200, answer
        predictions = answer["predictions"]
        assert len(predictions) == 4 and all(0.0 <= float(p[0]) <= 1.0 for p in predictions), predictions
        status, answer = http_json(f"{server.root}/v1/models/trips")
        assert status == 200 and answer["model_version_status"][0]["version"] == "1", answer
    finally:
        server.stop()


def transformed_label_module(path: Path) -> Path:
    """The sample module with its label transformed as TFX's taxi module transforms it: preprocessing_fn outputs
    big_tipper_xf, and the Trainer reads that as the label."""
    text = DEFAULT_MODULE_FILE.read_text()
    for old, new in (("outputs[LABEL_KEY] = ", "outputs[transformed_name(LABEL_KEY)] = "),
                     ("label_key=LABEL_KEY)", "label_key=transformed_name(LABEL_KEY))")):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path.write_text(text)
    return path


def test_1x_paths_pipeline_with_beam_import_schema_infra_validator_and_a_transformed_label(v1_run, tmp_path):
    [schema] = (v1_run["tmp"] / "home" / "artifacts" / "schema").glob("*/schema.pbtxt")
    write_days(tmp_path / "data", 1, 240, end=dt.date(2024, 3, 5), seed=4)
    for f in (tmp_path / "data").iterdir():  # a folder without spans: TFX's examples name their file data.csv
        f.rename(f.with_name("data.csv"))
    serving = tmp_path / "serving" / "trips_beam"
    module = transformed_label_module(tmp_path / "taxi_like_module.py")
    flags = (f"--data={tmp_path / 'data'}", f"--schema={schema}", f"--serving={serving}", f"--module={module}")
    result = run_tfx(tmp_path, "beam_1x_pipeline.py", *flags, home=tmp_path / "home")
    out = result.stdout
    assert "no span or date in the pattern: the folder is one day" in out, out[-3000:]
    assert f"ImportSchemaGen: schema_file -> schema_file {schema}" in out
    assert "latest_blessed_model_resolver (LatestBlessedModelResolver) -> the Evaluator's baseline" in out
    assert "['--runner=DataflowRunner'] are not served on this machine" in out
    assert "'mode': 'LOAD_AND_QUERY'" in out and "'num_examples': 3" in out and "'num_tries': 2" in out
    assert "evaluation.slices: ['company']" in out
    # the transformed label: the raw label_key from the module's LABEL_KEY, the evaluation's from the EvalConfig
    assert "label big_tipper_xf through ['transform_features'] -> evaluation.label_key: big_tipper_xf" in out
    settings = (tmp_path / "home" / "trips_beam.trainpipe.yaml").read_text()
    assert "label_key: big_tipper_xf" in settings and "label_key: big_tipper\n" in settings
    evaluation = evaluation_metadata(tmp_path / "home")
    assert evaluation["label"] == "big_tipper_xf (transformed, from big_tipper)", evaluation.get("label")
    assert evaluation["eval_examples"] > 50
    # lower_bound 0.99 on binary_accuracy: a 30-step model is not blessed, and nothing is pushed
    assert "model_evaluation: blessed=False" in out, out[-3000:]
    assert "check model_blessed: FAILED" in out
    assert result.returncode == 1
    assert not any(serving.glob("*/saved_model.pb"))


def test_unsupported_components_are_reported_before_any_step(tmp_path):
    write_days(tmp_path / "data", 1, 50, end=dt.date(2024, 3, 1))
    result = run_tfx(tmp_path, "unsupported_pipeline.py", str(tmp_path / "data"), str(DEFAULT_MODULE_FILE),
                     home=tmp_path / "home")
    assert result.returncode == 2, result.stdout + result.stderr
    err = result.stderr
    assert "the custom component MakeHyperparameters is not run by trainpipe, and Trainer read its outputs" in err
    assert "unsupported_pipeline.py:22" in err  # where it was declared
    assert "warning: Notify" in err and "container (busybox) component Notify is not run" in err
    assert "ExampleDiff is not run" in err
    assert "KubeflowV2DagRunner: the pipeline runs here, through Dagster" in err
    assert not (tmp_path / "home" / "dagster").exists(), "nothing ran"


def test_interactive_script_runs_one_component_at_a_time_and_the_tuner_before_the_trainer(tmp_path):
    write_days(tmp_path / "data", 2, 240, end=dt.date(2024, 3, 2), seed=5)
    result = run_tfx(tmp_path, "interactive_script.py", "data", str(DEFAULT_MODULE_FILE), home=tmp_path / "home")
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    examples = next(line for line in out.splitlines() if line.startswith("EXAMPLES"))
    assert "/artifacts/examples/" in examples and "'Split-eval', 'Split-train'" in examples
    assert "statistics -- http://127.0.0.1:3000/assets/statistics" in out  # context.show
    assert "context.run(Transform): first SchemaGen, not run yet" in out
    assert "'transform_fn'" in next(line for line in out.splitlines() if line.startswith("TRANSFORM"))
    assert "context.run(Trainer): first Tuner, not run yet" in out
    assert "training_job for " in out and "best_hyperparameters, trained_model" in out
    assert "'Format-Serving'" in next(line for line in out.splitlines() if line.startswith("MODEL"))
