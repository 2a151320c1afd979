import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import instance_for_test

from trainpipe_assets.core.event_log import current_baseline, serving_at, serving_timeline
from trainpipe_assets.core.serving_layout import read_pin
from trainpipe_assets.data.sample_data import write_days
from trainpipe_assets.definitions import build_definitions
from trainpipe_assets.deploy.rollback import RollbackError, clear, rollback
from trainpipe_assets_tests.helpers import make_config, write_config


@pytest.fixture(scope="module")
def two_pushes(tmp_path_factory):
    """Two pushed versions of a tiny model (force-blessed so both push), in an instance of their own."""
    tmp = tmp_path_factory.mktemp("rollback")
    config = write_config(tmp / "cfg.yaml", train_steps=5, eval_steps=2, tuning={"enabled": False})
    trainpipe = make_config(tmp / "home", config)
    write_days(trainpipe.landing_dir, 2, 80, end=dt.date(2024, 3, 2))
    defs = build_definitions(trainpipe)
    (tmp / "dagster").mkdir()
    with instance_for_test(temp_dir=str(tmp / "dagster")) as instance:
        for day in ("2024-03-01", "2024-03-02"):
            defs.resolve_job_def("ingest_job").execute_in_process(partition_key=day, instance=instance)
            defs.resolve_job_def("training_job").execute_in_process(
                partition_key=day, instance=instance, tags={"trainpipe/force_bless": "true"}
            )
        yield {"trainpipe": trainpipe, "instance": instance, "tmp": tmp, "config": config}


def test_rollback_pins_the_previous_version_and_the_evaluator_follows(two_pushes):
    trainpipe, instance = two_pushes["trainpipe"], two_pushes["instance"]
    assert current_baseline(instance, trainpipe.serving_dir).version == 2
    before = dt.datetime.now(dt.timezone.utc)
    assert rollback(instance, trainpipe, None, "v2 misbehaves") == 1
    assert read_pin(trainpipe.serving_dir) == 1
    baseline = current_baseline(instance, trainpipe.serving_dir)
    assert baseline.version == 1 and baseline.serving_path == str(trainpipe.serving_dir / "1")
    timeline = serving_timeline(instance)
    assert [(e["serving_version"], e["event"]) for e in timeline] == [(1, "push"), (2, "push"), (1, "rollback")]
    assert timeline[-1]["reason"] == "v2 misbehaves"
    assert serving_at(timeline, before)["serving_version"] == 2
    assert serving_at(timeline, dt.datetime.now(dt.timezone.utc))["serving_version"] == 1
    assert serving_at(timeline, dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)) is None

    assert clear(instance, trainpipe, "") == 2
    assert read_pin(trainpipe.serving_dir) is None
    assert current_baseline(instance, trainpipe.serving_dir).version == 2
    assert serving_timeline(instance)[-1]["event"] == "rollback cleared"


def test_rollback_errors_name_the_versions(two_pushes):
    trainpipe, instance = two_pushes["trainpipe"], two_pushes["instance"]
    with pytest.raises(RollbackError, match=r"version 7 is not under .* \(versions: \[1, 2\]\)"):
        rollback(instance, trainpipe, 7, "")
    rollback(instance, trainpipe, 1, "")
    with pytest.raises(RollbackError, match="version 1 is the oldest"):
        rollback(instance, trainpipe, None, "")
    clear(instance, trainpipe, "")


def test_cli_rollback_history_serving_and_diff(two_pushes):
    env = {
        **os.environ,
        "TRAINPIPE_HOME": two_pushes["trainpipe"].home,
        "TRAINPIPE_CONFIG": str(two_pushes["config"]),
        "DAGSTER_HOME": str(two_pushes["tmp"] / "dagster"),
    }
    cli = [str(Path(sys.executable).parent / "trainpipe")]

    def run(*args):
        return subprocess.run(cli + list(args), env=env, capture_output=True, text=True, timeout=300)

    done = run("rollback", "--to", "1", "--reason", "canary errors")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "version 1 serves" in done.stdout
    timeline = json.loads(run("history", "--serving", "--json").stdout)
    assert timeline[-1]["serving_version"] == 1 and timeline[-1]["reason"] == "canary errors"
    assert "version 1 (rollback" in run("history", "--at", dt.datetime.now(dt.timezone.utc).isoformat()).stdout
    diff = run("diff", "1", "2")
    assert diff.returncode == 0, diff.stderr[-2000:]
    assert "version 1" in diff.stdout and "2024-03-01" in diff.stdout and "2024-03-02" in diff.stdout
    assert "eval accuracy" in diff.stdout and "code_version" in diff.stdout
    bad = run("diff", "1", "9")
    assert bad.returncode == 2 and "no pushed version [9]" in bad.stderr
    assert run("rollback", "--clear").returncode == 0
