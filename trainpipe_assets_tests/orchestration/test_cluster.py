"""The README's "Scaling out" recipe, run for real on this machine: Celery on Redis, Dagster's storage on PostgreSQL,
a shared TRAINPIPE_HOME and three dagster-celery workers (data steps on one, tuning and training on the other two).
Jobs start with `dagster job execute`; every step runs as a Celery task on a worker of its queue, training's rank 1
and the tuning workers as Celery tasks on another worker than their step's; history, rollback and the served model are
read back through PostgreSQL. Last, chaos tests kill the Celery worker process of rank 1, then of a tuning worker."""

import base64
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

from trainpipe_assets.serving.client import free_port, http_json
from trainpipe_assets_tests.helpers import job_execute
from trainpipe_assets_tests.orchestration.cluster_probe import (
    engine_events,
    materialization,
    member_processes,
    parent_of,
    rank_1,
    step_workers,
)
from trainpipe_assets_tests.orchestration.conftest import BIN, CLUSTER_DAYS, QUEUES, WORKERS, stop

SUBMITTED = 'Submitting celery task for step "'
# Six runs before the first test (3-4 minutes here): more than pyproject's 900 s per test on a loaded machine.
pytestmark = pytest.mark.timeout(2400)


def _command(cluster, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=cluster["env"], capture_output=True, text=True, timeout=timeout)


def _worker_logs(cluster) -> str:
    logs = cluster["logs"].items()
    return "\n".join(f"--- {n} worker ---\n" + p.read_text(errors="replace")[-4000:] for n, p in logs)


def _execute(cluster, job: str, day: str) -> None:
    try:
        done = _command(cluster, *job_execute(job, day), timeout=600)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{job} {day} did not finish in {e.timeout} s\n{_worker_logs(cluster)}")
    if done.returncode != 0:
        pytest.fail(f"{job} {day} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}\n{_worker_logs(cluster)}")


@pytest.fixture(scope="module")
def runs(cluster):
    """Each day ingested, then the window ending on the day before the last trained, evaluated, validated and pushed
    (version 1), then the window ending on the last day, evaluated against version 1 (the baseline the Evaluator finds
    in the PostgreSQL event log, on its worker) and pushed (version 2); returns the seconds each job took."""
    took = {}
    for day in CLUSTER_DAYS:
        start = time.monotonic()
        _execute(cluster, "ingest_job", day)
        took[f"ingest_job {day}"] = time.monotonic() - start
    for day in CLUSTER_DAYS[-2:]:
        start = time.monotonic()
        _execute(cluster, "training_job", day)
        took[f"training_job {day}"] = time.monotonic() - start
    print("\n".join(f"{job}: {seconds:.0f} s" for job, seconds in took.items()))
    return took


@pytest.fixture
def pg_instance(cluster, monkeypatch):
    """The PostgreSQL-backed instance of the cluster's DAGSTER_HOME, as the test process sees it."""
    monkeypatch.setenv("DAGSTER_HOME", str(cluster["dagster_home"]))
    with DagsterInstance.get() as inst:
        yield inst


def test_runs_succeed_with_every_step_on_the_worker_of_its_queue(cluster, runs, pg_instance):
    instance = pg_instance
    # Dagster's own storage classes for PostgreSQL, from $DAGSTER_HOME/dagster.yaml
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    workers_of_queue = {q: {name for name, queues in WORKERS.items() if q in queues} for q in QUEUES.values()}
    workers_of_queue["dagster"] = {name for name, queues in WORKERS.items() if "dagster" in queues}
    all_runs = instance.get_runs()
    assert sorted((r.job_name, r.tags["dagster/partition"]) for r in all_runs) == sorted(
        [("ingest_job", day) for day in CLUSTER_DAYS] + [("training_job", day) for day in CLUSTER_DAYS[-2:]]
    )
    ran_on = {}
    for run in all_runs:
        job = run.job_name
        assert run.status == DagsterRunStatus.SUCCESS, (job, run.tags, run.status)
        started = {
            e.step_key
            for e in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_START)
            if e.dagster_event is not None
        }
        submitted = [e for e in engine_events(instance, run.run_id) if (e.message or "").startswith(SUBMITTED)]
        queue_of = {e.step_key: e.message.rsplit('queue "', 1)[1].rstrip('".') for e in submitted}
        worker_of = step_workers(instance, run.run_id)  # the worker's node name, name@host
        assert started and set(queue_of) == started == set(worker_of), (job, started, queue_of, worker_of)
        for step, queue in queue_of.items():
            assert worker_of[step].split("@")[0] in workers_of_queue[queue], (job, step, queue, worker_of[step])
            ran_on[step] = (queue, worker_of[step].split("@")[0])
    # Each asset's step went to the queue the settings give it; the others to dagster-celery's default queue.
    print("\n".join(f"{step}: queue {queue}, {worker} worker" for step, (queue, worker) in sorted(ran_on.items())))
    for asset, queue in QUEUES.items():
        assert ran_on[asset][0] == queue, (asset, ran_on[asset])
    assert ran_on["pushed_model"] == ("dagster", "training")
    assert {worker for _, worker in ran_on.values()} <= {"data", "training", "training2"}


def test_rank_1_and_a_tuning_worker_run_on_another_celery_worker_than_their_step(cluster, runs, pg_instance):
    """training.workers 2 and tuning.num_parallel_trials 2 on Celery: the step is the chief; rank 1 and the tuning
    workers are Celery tasks on the `training` queue, which the other training worker takes. No second kind of
    worker: the `trainpipe training-worker` / `tuning-worker` commands are gone."""
    for run in [r for r in pg_instance.get_runs() if r.job_name == "training_job"]:
        ran_on = step_workers(pg_instance, run.run_id)
        model = materialization(pg_instance, run.run_id, "trained_model")
        ranks = model["training_ranks_on"].value
        print(run.tags["dagster/partition"], "trained_model on", ran_on["trained_model"], "ranks on", ranks)
        assert model["training_workers"].value == 2
        assert ranks["0"] == ran_on["trained_model"]  # the chief runs with the step
        assert ranks["1"].startswith("training") and ranks["1"] != ran_on["trained_model"], (ranks, ran_on)
        rank_1_log = Path(model["training_worker_logs"].value["1"]).read_text()  # the shared home
        assert '"task": {"type": "worker", "index": 0}' in rank_1_log and "trained across 2 replicas" in rank_1_log

        tuning = materialization(pg_instance, run.run_id, "best_hyperparameters")
        tuned_on = tuning["tuning_workers"].value  # KerasTuner tuner id -> the Celery worker of its task
        rows = tuning["trials_json"].value
        print("best_hyperparameters on", ran_on["best_hyperparameters"], "tuning workers", tuned_on)
        assert tuned_on and all(w.startswith("training") for w in tuned_on.values()), tuned_on
        assert all(w != ran_on["best_hyperparameters"] for w in tuned_on.values()), (tuned_on, ran_on)
        assert rows and all(row["worker"] in tuned_on.values() and row["score"] is not None for row in rows), rows
    done = _command(cluster, str(BIN / "trainpipe"), "--help")
    assert "training-worker" not in done.stdout and "tuning-worker" not in done.stdout, done.stdout
    assert not member_processes(cluster["home"])  # every rank and tuning worker process ended with its task
    logs = "\n".join(p.read_text(errors="replace") for p in cluster["logs"].values())
    assert "trainpipe.scaleout.run_member" in logs and "succeeded" in logs


def test_history_and_rollback_read_and_write_the_postgres_event_log(cluster, runs, pg_instance):
    trainpipe = BIN / "trainpipe"
    done = _command(cluster, str(trainpipe), "history", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    history = json.loads(done.stdout)
    second, first = history["models"]  # newest first
    assert [first["partition"], second["partition"]] == CLUSTER_DAYS[-2:], history
    assert first["blessed"] is True and second["blessed"] is True, history
    assert (first["pushed_version"], second["pushed_version"]) == (1, 2), history
    assert second["baseline_version"] == 1, second  # what the Evaluator found serving, from the event log
    assert history["serving"]["version"] == 2, history

    # A rollback writes a runless event through the same storage; the serving timeline (what the Evaluator's
    # baseline follows) shows both pushes and then the rollback.
    done = _command(cluster, str(trainpipe), "rollback", "--to", "1", "--reason", "cluster test")
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    done = _command(cluster, str(trainpipe), "history", "--serving", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    timeline = json.loads(done.stdout)
    events = [(e["event"], e["serving_version"]) for e in timeline]
    assert events == [("push", 1), ("push", 2), ("rollback", 1)], timeline
    assert timeline[-1]["reason"] == "cluster test"

    from trainpipe_assets.core.event_log import current_baseline

    assert current_baseline(pg_instance, cluster["trainpipe"].serving_dir).version == 1  # the next run's baseline
    done = _command(cluster, str(trainpipe), "rollback", "--clear")
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert current_baseline(pg_instance, cluster["trainpipe"].serving_dir).version == 2


def test_the_pushed_model_serves(cluster, runs):
    from trainpipe_assets.core.example_reader import read_records

    trainpipe = cluster["trainpipe"]
    eval_files = str(trainpipe.artifacts_dir / "examples" / CLUSTER_DAYS[-1] / "Split-eval" / "*.gz")
    [record] = read_records([eval_files], limit=1)
    name, port = trainpipe.settings.model_name, free_port()
    log = cluster["home"] / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [str(BIN / "trainpipe"), "serve", "--model-name", name, "--model-base-path", str(trainpipe.serving_dir)]
            + ["--port", str(port)],
            env=cluster["env"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        root, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 180
        while http_json(f"{root}/healthz", timeout=5)[0] != 200:
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("trainpipe serve did not become healthy:\n" + log.read_text(errors="replace")[-3000:])
            time.sleep(0.25)
        body = {"instances": [{"b64": base64.b64encode(record).decode()}]}
        code, answer = http_json(f"{root}/v1/models/{name}:predict", body)
        assert code == 200, answer
        assert len(answer["predictions"]) == 1
    finally:
        stop(server)


def _forced(asset: str, **tags: str) -> list[str]:
    """`dagster job execute` of training_job's step `asset` alone for the last day, recomputed (trainpipe/force)."""
    tags = {"dagster/partition": CLUSTER_DAYS[-1], "trainpipe/force": "true", **tags}
    command = [str(BIN / "dagster"), "job", "execute", "-m", "trainpipe_assets.definitions", "-j", "training_job"]
    return command + ["-o", asset, "--tags", json.dumps(tags)]


def _start_held(cluster, command: list[str], logs: str, said: str) -> subprocess.Popen:
    """Start `command`; return it once a log of the home matching `logs` says `said` (the module holds there)."""
    run = subprocess.Popen(command, env=cluster["env"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while not any(said in log.read_text() for log in cluster["home"].glob(logs)):
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()[0][-5000:]
        time.sleep(0.5)
    return run


def test_a_celery_worker_killed_mid_training_fails_the_step_fast_and_the_rerun_succeeds(cluster, runs, pg_instance):
    """SIGKILL to the Celery worker process running rank 1 while the ranks train (the module holds rank 1 while the
    file hold-rank-1 exists): the step fails within 60 s naming rank 1, its worker and the end of its log; the chief
    is gone, no model of the run is kept, and the same command run again succeeds."""
    day, home, command, run = CLUSTER_DAYS[-1], cluster["home"], _forced("trained_model"), None
    models = home / "artifacts" / "trained_model" / day
    before = {p.name for p in models.iterdir()}
    hold = home / "hold-rank-1"
    hold.write_text("held by the chaos test")
    try:
        run = _start_held(cluster, command, f"artifacts/trained_model/.staging-{day}-*/workers/worker-1.log", "held")
        time.sleep(2)  # rank 1 is held in run_fn, the chief waits for it in its collective
        os.kill(rank_1(home)[1], signal.SIGKILL)  # the Celery worker (pool) process running rank 1
        killed = time.monotonic()
        output, _ = run.communicate(timeout=300)
        took = time.monotonic() - killed
    finally:
        hold.unlink(missing_ok=True)
        if run is not None and run.poll() is None:
            run.kill()
    assert run.returncode != 0, output[-5000:]
    [failed] = [r for r in pg_instance.get_runs() if r.job_name == "training_job" and r.tags.get("trainpipe/force")]
    failures = [
        e.dagster_event.event_specific_data.error.message
        for e in pg_instance.all_logs(failed.run_id, of_type=DagsterEventType.STEP_FAILURE)
    ]
    print(f"the step failed {took:.0f} s after the kill:", failures)
    assert took < 60, took
    [message] = failures
    assert "rank 1 (TF_CONFIG task worker 0)" in message and "on Celery worker training" in message, message
    assert "rank 1 is held mid-training" in message, message  # the end of its log
    assert not member_processes(home), member_processes(home)  # the chief and rank 1 are gone
    assert {p.name for p in models.iterdir()} == before  # nothing of the failed attempt kept

    done = _command(cluster, *command, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:] + _worker_logs(cluster)
    rerun = next(r for r in pg_instance.get_runs() if r.tags.get("trainpipe/force"))  # newest first
    ranks = materialization(pg_instance, rerun.run_id, "trained_model")["training_ranks_on"].value
    assert sorted(ranks) == ["0", "1"] and ranks["0"] != ranks["1"], ranks
    assert {p.name for p in models.iterdir()} == before | {rerun.run_id}
    assert not list(models.parent.glob(f".staging-{day}-*"))  # the failed attempt's staging is gone too


def test_a_celery_worker_killed_mid_trial_loses_only_its_trial(cluster, runs, pg_instance):
    """SIGKILL to the Celery worker process running tuning worker w0 mid-trial (the module holds w0's first trial while
    the file hold-tuning exists): the search goes on with the other tuning worker task, and the trial table says which
    trial was lost and on which worker."""
    day, home = CLUSTER_DAYS[-1], cluster["home"]
    hold, run = home / "hold-tuning", None
    hold.write_text("held by the chaos test")
    try:
        logs = f"artifacts/best_hyperparameters/.staging-{day}-*/workers/*.log"
        run = _start_held(cluster, _forced("best_hyperparameters", chaos="tuning"), logs, "w0 is held mid-trial")
        [(pid, environ)] = [
            (pid, environ)
            for pid, command_line, environ in member_processes(home)
            if "model.tuning_workers" in command_line and b"KERASTUNER_TUNER_ID=w0" in environ
        ]
        os.kill(parent_of(pid), signal.SIGKILL)
        hold.unlink()
        output, _ = run.communicate(timeout=600)
    finally:
        hold.unlink(missing_ok=True)
        if run is not None and run.poll() is None:
            run.kill()
    assert run.returncode == 0, output[-5000:] + _worker_logs(cluster)
    [tuned] = [r.run_id for r in pg_instance.get_runs() if r.tags.get("chaos") == "tuning"]
    metadata = materialization(pg_instance, tuned, "best_hyperparameters")
    failed, lost, rows = (metadata[k].value for k in ("failed_workers", "lost_trials", "trials_json"))
    # Celery records a killed worker process as WorkerLostError or as a terminated (revoked) task, by a race
    assert list(failed) == ["w0"] and "on training" in failed["w0"], failed
    assert "WorkerLostError" in failed["w0"] or "was terminated" in failed["w0"], failed
    [(trial, why)] = lost.items()
    [lost_row] = [row for row in rows if row["trial_id"] == trial]
    assert lost_row["score"] is None and lost_row["worker"] == metadata["tuning_workers"].value["w0"], lost_row
    assert any(row["score"] is not None and row["trial_id"] != trial for row in rows), rows  # the search went on
    assert f"failed (lost: {why}" in metadata["trials"].value
    assert not member_processes(home)
