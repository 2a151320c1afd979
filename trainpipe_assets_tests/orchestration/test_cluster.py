"""The README's "Scaling out" recipe, run for real on this machine: Celery on Redis, Dagster's storage on PostgreSQL,
a shared TRAINPIPE_HOME and two dagster-celery workers (data steps on one, tuning and training on the other). The
jobs are started with `dagster job execute`, as on a cluster's submitting machine; every step runs as a Celery task on
the worker of its queue, and the history, rollback and the served model are read back through PostgreSQL."""

import base64
import json
import subprocess
import time

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

from trainpipe_assets.serving.client import free_port, http_json
from trainpipe_assets_tests.orchestration.conftest import BIN, CLUSTER_DAYS, QUEUES, WORKERS, stop

SUBMITTED = 'Submitting celery task for step "'
# Six runs before the first test (about 3 minutes here): more than pyproject's 900 s per test on a loaded machine.
pytestmark = pytest.mark.timeout(2400)


def _command(cluster, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=cluster["env"], capture_output=True, text=True, timeout=timeout)


def _worker_logs(cluster) -> str:
    logs = cluster["logs"].items()
    return "\n".join(f"--- {n} worker ---\n" + p.read_text(errors="replace")[-4000:] for n, p in logs)


def _execute(cluster, job: str, day: str) -> None:
    command = [str(BIN / "dagster"), "job", "execute", "-m", "trainpipe_assets.definitions", "-j", job]
    command += ["--tags", json.dumps({"dagster/partition": day})]
    try:
        done = _command(cluster, *command, timeout=600)
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


def _engine_events(instance, run_id: str) -> list:
    return [
        e.dagster_event
        for e in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)
        if e.dagster_event is not None
    ]


def test_runs_succeed_with_every_step_on_the_worker_of_its_queue(cluster, runs, pg_instance):
    instance = pg_instance
    # Dagster's own storage classes for PostgreSQL, from $DAGSTER_HOME/dagster.yaml
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    worker_of_queue = {queue: name for name, queues in WORKERS.items() for queue in queues}
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
        queue_of, worker_of = {}, {}
        for event in _engine_events(instance, run.run_id):
            if event.message and event.message.startswith(SUBMITTED):
                queue_of[event.step_key] = event.message.rsplit('queue "', 1)[1].rstrip('".')
            metadata = event.engine_event_data.metadata if event.engine_event_data else {}
            if "Celery worker" in metadata:
                worker_of[event.step_key] = metadata["Celery worker"].value  # the worker's node name, name@host
        assert started and set(queue_of) == started == set(worker_of), (job, started, queue_of, worker_of)
        for step, queue in queue_of.items():
            assert worker_of[step].split("@")[0] == worker_of_queue[queue], (job, step, queue, worker_of[step])
            ran_on[step] = (queue, worker_of[step].split("@")[0])
    # Each asset's step went to the queue the settings give it; the others to dagster-celery's default queue.
    print("\n".join(f"{step}: queue {queue}, {worker} worker" for step, (queue, worker) in sorted(ran_on.items())))
    for asset, queue in QUEUES.items():
        assert ran_on[asset][0] == queue, (asset, ran_on[asset])
    assert ran_on["pushed_model"] == ("dagster", "training")
    assert {worker for _, worker in ran_on.values()} == {"data", "training"}


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
