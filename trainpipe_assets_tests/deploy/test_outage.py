"""Dagster's PostgreSQL stopped during `training_job` (run with `dagster job execute`, as CI runs it) for longer than
dagster-postgres' retries, then started: with trainpipe's outage-tolerant storage the run ends FAILURE naming the
outage within a minute of the database's return, no artifact is half-written, and the re-run pushes once from the
cache. Then a run killed between the push rename and its event: history credits the version to that run at its
PUSH.json time, and the re-run records "already pushed by run X"."""

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus

from trainpipe_assets.core.event_log import current_baseline, model_history, serving_timeline
from trainpipe_assets.core.serving_layout import list_versions, read_push_record, serving_version
from trainpipe_assets.data.sample_data import write_days
from trainpipe_assets.definitions import build_definitions
from trainpipe_assets_tests.deploy.pg_server import PostgresServer, outage_tolerant_dagster_yaml
from trainpipe_assets_tests.helpers import job_env, job_execute, make_config, run_job, write_config

DAYS = ["2024-03-01", "2024-03-02", "2024-03-03"]
OUTAGE_SECONDS = 25  # longer than dagster-postgres' retries (about 11 s)


@pytest.fixture(scope="module")
def pg():
    server = PostgresServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def home(pg, tmp_path_factory):
    root = tmp_path_factory.mktemp("outage")
    config = write_config(
        root / "trainpipe.yaml",
        train_steps=10,
        eval_steps=2,
        window_days=2,
        tuning={"enabled": False, "hyperparameters": {"hidden_units": 8, "num_layers": 1, "learning_rate": 0.01}},
        evaluation={"thresholds": {}},
        infra_validation={"mode": "LOAD_ONLY", "num_tries": 1},
    )
    trainpipe = make_config(root / "home", config)
    write_days(trainpipe.landing_dir, len(DAYS), 120, end=dt.date.fromisoformat(DAYS[-1]), seed=5)
    dagster_home = root / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(outage_tolerant_dagster_yaml(pg.url, wait_seconds=300))
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        defs = build_definitions(trainpipe)
        for day in DAYS:
            run_job(defs, "ingest_job", day, instance)
        yield {"trainpipe": trainpipe, "dagster_home": dagster_home, "instance": instance}


def training_run(home, day: str, kill_at=None) -> subprocess.Popen:
    env = job_env(home["trainpipe"], home["dagster_home"], kill_at)
    command = job_execute("training_job", day)
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=600)
    return process.returncode, stderr


def latest_run(instance):
    return instance.get_runs(limit=1)[0]


def wait_for_step(instance, step: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = instance.get_runs(limit=1)
        if runs and any(
            r.dagster_event and r.dagster_event.event_type_value == "STEP_START" and r.step_key == step
            for r in instance.all_logs(runs[0].run_id)
        ):
            return
        time.sleep(0.5)
    raise AssertionError(f"step {step} did not start within {timeout} s")


def pushes(instance) -> list:
    return instance.fetch_materializations(AssetKey("pushed_model"), limit=100).records


def assert_history_matches_serving(home) -> None:
    instance, serving_dir = home["instance"], home["trainpipe"].serving_dir
    baseline = current_baseline(instance, serving_dir)
    timeline = serving_timeline(instance)
    assert set(list_versions(serving_dir)) <= {e["serving_version"] for e in timeline}, timeline
    assert baseline.version == serving_version(serving_dir)
    for event in timeline:  # each push names the run in the version's PUSH.json, at its time
        record = read_push_record(serving_dir, event["serving_version"])
        assert record and event["run_id"] == record["run_id"] and event["time"] == record["pushed_at"], (event, record)
    staging = [p for p in Path(home["trainpipe"].artifacts_dir).rglob(".staging-*")]
    assert not staging, f"half-written artifacts left: {staging}"


def test_a_database_outage_ends_the_run_failed_and_the_rerun_pushes_once(home, pg):
    instance = home["instance"]
    process = training_run(home, DAYS[-1])
    wait_for_step(instance, "trained_model")
    run_id = latest_run(instance).run_id
    pg.stop()
    time.sleep(OUTAGE_SECONDS)
    pg.start()
    back = time.monotonic()
    status = None
    while time.monotonic() - back < 60:
        status = instance.get_run_by_id(run_id).status
        if status == DagsterRunStatus.FAILURE:
            break
        time.sleep(1)
    assert status == DagsterRunStatus.FAILURE, f"run {run_id} is {status} 60 s after the database's return"
    code, stderr = finished(process)
    assert code != 0
    assert "Traceback (most recent call last)" not in stderr, stderr[-3000:]
    assert len([line for line in stderr.splitlines() if line.startswith("trainpipe: Dagster's database")]) == 1
    [failure] = [
        r
        for r in instance.all_logs(run_id)
        if r.dagster_event and r.dagster_event.event_type_value == "PIPELINE_FAILURE"
    ]
    assert (
        "Dagster's database postgresql://127.0.0.1" in failure.user_message and "did not answer" in failure.user_message
    )
    assert list_versions(home["trainpipe"].serving_dir) == []

    code, stderr = finished(training_run(home, DAYS[-1]))
    assert code == 0, stderr[-3000:]
    assert list_versions(home["trainpipe"].serving_dir) == [1]
    assert [md.asset_materialization.metadata["event"].value for md in pushes(instance)] == ["push"]
    assert_history_matches_serving(home)


def test_a_push_whose_event_was_lost_is_credited_to_the_run_that_wrote_it(home):
    instance, serving_dir = home["instance"], home["trainpipe"].serving_dir
    code, _ = finished(training_run(home, DAYS[-2], kill_at="push:after_rename"))
    assert code == -9
    killed = latest_run(instance)
    assert list_versions(serving_dir) == [1, 2]
    record = read_push_record(serving_dir, 2)
    assert record["run_id"] == killed.run_id

    history = subprocess.run(
        [str(Path(sys.executable).parent / "trainpipe"), "history", "--serving", "--json"],
        env={
            **os.environ,
            "TRAINPIPE_HOME": home["trainpipe"].home,
            "TRAINPIPE_CONFIG": home["trainpipe"].config_path,
            "DAGSTER_HOME": str(home["dagster_home"]),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert history.returncode == 0, history.stderr[-3000:]
    [event] = [e for e in json.loads(history.stdout) if e["serving_version"] == 2]
    assert event["event"] == "push recorded after the fact"
    assert (event["run_id"], event["time"]) == (killed.run_id, record["pushed_at"])
    assert instance.get_run_by_id(killed.run_id).status == DagsterRunStatus.FAILURE
    [row] = [r for r in model_history(instance) if r["run_id"] == killed.run_id]
    assert row["pushed_version"] == 2

    code, stderr = finished(training_run(home, DAYS[-2]))
    assert code == 0, stderr[-3000:]
    assert list_versions(serving_dir) == [1, 2]
    latest = pushes(instance)[0]
    assert latest.asset_materialization.metadata["event"].value == f"already pushed by run {killed.run_id} as version 2"
    [rerun] = [r for r in model_history(instance) if r["run_id"] == latest.run_id]
    assert rerun["pushed_version"] is None and killed.run_id in rerun["already_pushed"]
    assert current_baseline(instance, serving_dir).run_id == killed.run_id
    assert_history_matches_serving(home)
