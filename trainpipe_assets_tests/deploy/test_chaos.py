"""kill -9 at each step of training_job, through `dagster job execute` as CI runs it: afterwards the killed run is
marked failed, the event log, the Evaluator's baseline and the serving folder agree, and the next run goes on. The last
kill falls between the version folder's rename and the push event: the version is recorded as that run's push at its
PUSH.json time, and the re-run neither pushes the same model again nor records another run's version ("already pushed
by run X as version 1")."""

import datetime as dt
import subprocess

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from trainpipe_assets.core.event_log import current_baseline, serving_timeline
from trainpipe_assets.core.serving_layout import list_versions, read_push_record, serving_version
from trainpipe_assets.data.sample_data import write_days
from trainpipe_assets.definitions import build_definitions
from trainpipe_assets_tests.helpers import job_env, job_execute, make_config, run_job, write_config

DAYS = ["2024-03-01", "2024-03-02"]
KILL_POINTS = ["transform", "tuning", "training", "infra_validation", "push:after_rename"]


@pytest.fixture(scope="module")
def chaos(tmp_path_factory):
    root = tmp_path_factory.mktemp("chaos")
    config = write_config(
        root / "trainpipe.yaml",
        train_steps=10,
        eval_steps=2,
        custom_config={"max_trials": 1},
        evaluation={"thresholds": {}},
        infra_validation={"mode": "LOAD_ONLY", "num_tries": 1},
    )
    trainpipe = make_config(root / "home", config)
    write_days(trainpipe.landing_dir, len(DAYS), 120, end=dt.date.fromisoformat(DAYS[-1]), seed=5)
    dagster_home = root / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        defs = build_definitions(trainpipe)
        for day in DAYS:
            run_job(defs, "ingest_job", day, instance)
        yield {"trainpipe": trainpipe, "dagster_home": dagster_home, "instance": instance}


def training_run(chaos, kill_at=None) -> subprocess.CompletedProcess:
    env = job_env(chaos["trainpipe"], chaos["dagster_home"], kill_at)
    command = job_execute("training_job", DAYS[-1])
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def assert_event_log_matches_disk(chaos) -> None:
    instance, serving_dir = chaos["instance"], chaos["trainpipe"].serving_dir
    baseline = current_baseline(instance, serving_dir)  # records a version a killed run left unrecorded
    on_disk = list_versions(serving_dir)
    recorded = {e["serving_version"] for e in serving_timeline(instance)}
    assert set(on_disk) <= recorded, (on_disk, recorded)
    assert (baseline.version if baseline else None) == serving_version(serving_dir)
    assert not list(serving_dir.glob(".tmp-*")), "half a version in the serving folder"
    started = [r.run_id for r in instance.get_runs(limit=50) if r.status == DagsterRunStatus.STARTED]
    assert not started, f"killed runs still STARTED: {started}"


def test_a_kill_at_any_step_leaves_history_baseline_and_serving_in_agreement(chaos):
    for point in KILL_POINTS:
        done = training_run(chaos, kill_at=point)
        assert done.returncode == -9, f"{point}: the run was not killed\n{done.stderr[-2000:]}"
        assert_event_log_matches_disk(chaos)
        [killed] = chaos["instance"].get_runs(limit=1)
        assert killed.status == DagsterRunStatus.FAILURE, point
    serving_dir = chaos["trainpipe"].serving_dir
    assert list_versions(serving_dir) == [1]  # the push killed after its rename, now recorded
    [recorded] = [e for e in serving_timeline(chaos["instance"]) if e["serving_version"] == 1]
    assert recorded["event"] == "push recorded after the fact" and recorded["run_id"] == killed.run_id
    assert recorded["time"] == read_push_record(serving_dir, 1)["pushed_at"]  # when it reached disk, not the repair

    rerun = training_run(chaos)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert list_versions(serving_dir) == [1]  # the same model is not pushed again as version 2
    [push] = chaos["instance"].get_latest_materialization_events([_key("pushed_model")]).values()
    metadata = push.asset_materialization.metadata
    assert metadata["version"].value == 1
    assert metadata["event"].value == f"already pushed by run {killed.run_id} as version 1"
    assert_event_log_matches_disk(chaos)


def _key(name):
    from dagster import AssetKey

    return AssetKey(name)
