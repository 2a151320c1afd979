"""Distributed tuning across processes as across machines: `trainpipe tuning-worker` processes join the search the
best_hyperparameters chief publishes in TRAINPIPE_HOME, and a worker that dies mid-trial costs the search nothing."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from trainpipe_assets.cli import tuning_worker
from trainpipe_assets.data.example_gen import examples
from trainpipe_assets.data.schema_gen import schema
from trainpipe_assets.data.statistics_gen.component import statistics
from trainpipe_assets.model import tuning_workers
from trainpipe_assets.model.transform import transform_graph
from trainpipe_assets.model.tuner import best_hyperparameters
from trainpipe_assets_tests.helpers import (
    DAYS,
    failure_message,
    make_config,
    materialize,
    metadata_of,
    resources_for,
    write_config,
)

# Few steps; a fixed first partition (this home has no landing data to find it from).
TRAINING = {"train_steps": 40, "eval_steps": 5, "partitions_start": "2024-01-01"}


def _home_with_window(pipeline, tmp_path) -> Path:
    home = tmp_path / "home"
    for asset in ("schema", "transform_graph"):  # this window's upstream artifacts, in a home of its own
        shutil.copytree(pipeline["home"] / "artifacts" / asset, home / "artifacts" / asset)
    return home


def _start_worker(home: Path, config: Path, name: str, log: Path) -> subprocess.Popen:
    """`trainpipe tuning-worker --once` as its own process (the module's __main__ until the command is registered)."""
    env = {**os.environ, "TRAINPIPE_HOME": str(home), "TRAINPIPE_CONFIG": str(config)}
    command = [sys.executable, "-m", "trainpipe_assets.cli.tuning_worker", "--once", "--poll-seconds", "0.5"]
    return subprocess.Popen(
        [*command, "--name", name], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _tune(home: Path, config: Path, instance):
    return materialize(
        [examples, statistics, schema, transform_graph, best_hyperparameters],
        selection=[best_hyperparameters],
        partition_key=DAYS[-1],
        resources=resources_for(make_config(home, config)),
        instance=instance,
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_remote_worker_joins_the_published_search(pipeline, instance, tmp_path):
    config = write_config(
        tmp_path / "remote.yaml",
        **TRAINING,
        tuning={"remote_workers": 1, "num_parallel_trials": 1},
        custom_config={"max_trials": 4},
    )
    home = _home_with_window(pipeline, tmp_path)
    log = tmp_path / "remote-a.log"
    worker = _start_worker(home, config, "remote-a", log)
    try:
        metadata = metadata_of(_tune(home, config, instance), "best_hyperparameters")
        assert worker.wait(timeout=600) == 0, log.read_text()[-3000:]
    finally:
        _stop(worker)
    rows = metadata["trials_json"].value
    assert metadata["num_trials"].value == 4 and len(rows) == 4
    assert {row["worker"] for row in rows} == {"local0", "remote-a"}, rows  # the chief's own worker and the remote one
    assert all(row["score"] is not None for row in rows) and "failed_workers" not in metadata
    assert set(metadata["tuning_workers"].value) == {"local0", "remote-a"}
    table = metadata["trials"].value.splitlines()
    assert table[0].startswith("| trial | score (") and "| worker |" in table[0] and len(table) == 6
    assert any("| remote-a |" in line for line in table[2:])
    assert "joins tuning search" in log.read_text()
    assert not list((home / "tuning" / "open").glob("*")), "the chief closes its search"
    assert not (home / "tuning" / "workers").exists() or not list((home / "tuning" / "workers").iterdir())


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_a_worker_killed_mid_trial_hands_its_trial_to_another(pipeline, instance, tmp_path, monkeypatch):
    """KerasTuner alone would wait forever for the trial of a dead worker; the chief sends it back to the queue."""
    config = write_config(
        tmp_path / "dying.yaml",
        **TRAINING,
        tuning={"remote_workers": 1, "num_parallel_trials": 1},
        custom_config={"max_trials": 6},
    )
    home = _home_with_window(pipeline, tmp_path)
    log = tmp_path / "remote-b.log"
    worker = _start_worker(home, config, "remote-b", log)
    got_trial = threading.Event()
    record = tuning_workers._record_runners

    def record_and_signal(oracle, ran_by, workers):  # sees, in this (the chief's) process, remote-b's first trial
        record(oracle, ran_by, workers)
        create_trial = oracle.create_trial

        def create(tuner_id):
            trial = create_trial(tuner_id)
            if tuner_id == "remote-b" and trial.status == "RUNNING":
                got_trial.set()
            return trial

        oracle.create_trial = create

    def kill_its_trials_process():
        if got_trial.wait(timeout=600):
            for child in _children(worker.pid):  # SIGKILL mid-trial: no goodbye to the oracle
                os.kill(child, signal.SIGKILL)

    monkeypatch.setattr(tuning_workers, "_record_runners", record_and_signal)
    killer = threading.Thread(target=kill_its_trials_process, daemon=True)
    killer.start()
    try:
        metadata = metadata_of(_tune(home, config, instance), "best_hyperparameters")
        assert worker.wait(timeout=120) == 128 + signal.SIGKILL, log.read_text()[-3000:]
    finally:
        got_trial.set()
        _stop(worker)
    rows = metadata["trials_json"].value
    [lost] = metadata["failed_workers"].value.items()
    assert lost[0] == "remote-b" and lost[1].startswith("gone while running trial "), lost
    trial = lost[1].rsplit(" ", 1)[1]
    [rerun] = [row for row in rows if row["trial_id"] == trial]
    assert rerun["worker"] == "local0" and rerun["score"] is not None, rows  # run again by the live worker
    assert len(rows) == 6 and all(row["score"] is not None for row in rows)


def test_liveness_follows_heartbeats_by_this_hosts_clock(tmp_path, monkeypatch):
    proc = SimpleNamespace(poll=lambda: None)
    liveness = tuning_workers._Liveness({"local0": proc}, tmp_path)
    assert liveness.alive("local0")
    (tmp_path / "w1.json").write_text(json.dumps({"beat": 1, "returncode": None}))
    assert liveness.alive("w1") and liveness.any_alive()
    monkeypatch.setattr(tuning_workers, "STALE_SECONDS", 0.0)
    assert not liveness.alive("w1")  # unchanged since first seen
    monkeypatch.setattr(tuning_workers, "STALE_SECONDS", 60.0)
    (tmp_path / "w1.json").write_text(json.dumps({"beat": 2, "returncode": 1}))
    assert not liveness.alive("w1")  # reported its exit
    assert liveness.alive("never-beat")  # a grace period from first sight


def test_release_sends_a_dead_workers_trial_to_the_retry_queue():
    trial = SimpleNamespace(trial_id="03")
    oracle = SimpleNamespace(tuner_ids={"a", "b"}, ongoing_trials={"a": trial}, _retry_queue=[])
    assert tuning_workers._release(oracle, "a") == "03" and oracle._retry_queue == ["03"]
    assert tuning_workers._release(oracle, "b") is None and oracle.tuner_ids == set()


def test_job_paths_follow_a_home_mounted_elsewhere(tmp_path):
    import trainpipe_assets

    package = str(Path(trainpipe_assets.__file__).parent)
    job = {
        "home": "/mnt/a/home",
        "package_dir": "/opt/chief/trainpipe_assets",
        "module_file": "/opt/chief/trainpipe_assets/example_modules/sample_module.py",
        "fn_args": {"train_files": ["/mnt/a/home/artifacts/x/*.gz"], "working_dir": "/mnt/a/homeless", "eval_steps": 5},
    }
    moved = tuning_worker.localized(job, tmp_path)
    assert moved["module_file"] == f"{package}/example_modules/sample_module.py"
    assert moved["fn_args"] == {
        "train_files": [f"{tmp_path}/artifacts/x/*.gz"],
        "working_dir": "/mnt/a/homeless",
        "eval_steps": 5,
    }


def test_worker_names():
    assert "chief" not in tuning_worker.default_name()
    assert tuning_worker.checked_name("gpu-3.a_b") == "gpu-3.a_b"
    for bad in ("my-chief", "a/b", ""):
        with pytest.raises(ValueError):
            tuning_worker.checked_name(bad)


def test_a_search_whose_oracle_does_not_answer_is_not_joined(tmp_path):
    """A search file left behind by a chief that died is skipped; one whose oracle listens is joined."""
    import socket

    folder = tmp_path / "tuning" / "open"
    folder.mkdir(parents=True)
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        (folder / "live.json").write_text(json.dumps({"search": "live", "oracle": {"host": "127.0.0.1", "port": port}}))
        assert tuning_worker.next_search(folder, set())[1]["search"] == "live"
        assert tuning_worker.next_search(folder, {"live"}) is None  # joined already
    assert tuning_worker.next_search(folder, set()) is None  # nothing listens there any more


DYING_MODULE = """
import os

from trainpipe_assets.example_modules import sample_module
from trainpipe_assets.example_modules.sample_module import *  # noqa: F403


def tuner_fn(fn_args):
    if os.environ.get("KERASTUNER_TUNER_ID", "").startswith("local"):
        raise SystemExit(3)  # every worker dies before its first trial; the chief builds its tuner as usual
    return sample_module.tuner_fn(fn_args)
"""


def test_no_trial_completed_fails_the_step_with_a_workers_log(pipeline, instance, tmp_path):
    (tmp_path / "dying_module.py").write_text(DYING_MODULE)
    config = write_config(
        tmp_path / "dying.yaml", **TRAINING, module_file="dying_module.py", tuning={"num_parallel_trials": 2}
    )
    result = materialize(
        [examples, statistics, schema, transform_graph, best_hyperparameters],
        selection=[best_hyperparameters],
        partition_key=DAYS[-1],
        resources=resources_for(make_config(_home_with_window(pipeline, tmp_path), config)),
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success  # and not a chief waiting forever for workers that are gone
    message = failure_message(result)
    assert "no tuning trial completed" in message and "exited with 3" in message, message
