"""batch_inference_job through `dagster job execute`, as CI runs it: its two independent steps run in separate
processes forked from a server that preloaded TensorFlow (the multiprocess executor with forkserver)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from dagster import DagsterEventType, DagsterRunStatus, RunsFilter

from trainpipe_assets_tests.helpers import DAYS


def test_dagster_job_execute_runs_both_steps_in_their_own_processes(pipeline, fast_config):
    instance = pipeline["instance"]
    env = {
        **os.environ,
        "DAGSTER_HOME": instance.root_directory,
        "TRAINPIPE_HOME": str(pipeline["home"]),
        "TRAINPIPE_CONFIG": str(fast_config),
    }
    dagster = str(Path(sys.executable).parent / "dagster")
    done = subprocess.run(
        [
            dagster,
            "job",
            "execute",
            "-m",
            "trainpipe_assets.definitions",
            "-j",
            "batch_inference_job",
            "--tags",
            json.dumps({"dagster/partition": DAYS[0]}),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [run] = instance.get_runs(RunsFilter(job_name="batch_inference_job", tags={"dagster/partition": DAYS[0]}), limit=1)
    assert run.status == DagsterRunStatus.SUCCESS
    events = instance.all_logs(run.run_id)
    starts = {
        e.step_key: e.dagster_event.pid
        for e in events
        if e.dagster_event and e.dagster_event.event_type == DagsterEventType.STEP_START
    }
    assert set(starts) == {"batch_predictions", "serving_model_performance"}
    run_pid = next(
        e.dagster_event.pid
        for e in events
        if e.dagster_event and e.dagster_event.event_type == DagsterEventType.RUN_START
    )
    assert len(set(starts.values()) | {run_pid}) == 3  # each step in a process of its own, not the run's
    materialized = {
        e.dagster_event.asset_key.to_user_string()
        for e in events
        if e.dagster_event and e.dagster_event.event_type == DagsterEventType.ASSET_MATERIALIZATION
    }
    assert materialized == {"batch_predictions", "serving_model_performance"}
