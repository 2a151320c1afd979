"""A small cluster on this machine for test_cluster.py: Redis (Celery's broker and result backend), PostgreSQL
(Dagster's run, event log and schedule storage, through dagster-postgres), a shared TRAINPIPE_HOME, and three
dagster-celery workers, each started with dagster-celery's own command on its own queues (and importing trainpipe's
member task, which runs training ranks and tuning workers), as the README's "Scaling out" recipe does. Each worker is
the leader of its own process group (setsid), and is ended by signalling the group: a Celery worker's pool processes
outlive the `dagster-celery worker start` process."""

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from trainpipe_assets.serving.client import free_port

# The SQL-source tests' real PostgreSQL server (Debian's binaries, a temporary cluster); it skips when they are absent.
from trainpipe_assets_tests.data.sources.conftest import postgres_url  # noqa: F401

BIN = Path(sys.executable).parent
CLUSTER_DAYS = ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"]  # two training windows: ending on the last two
QUEUES = {
    "examples": "data",
    "statistics": "data",
    "schema": "data",
    "transform_graph": "data",
    "best_hyperparameters": "training",
    "trained_model": "training",
    "model_evaluation": "training",
}  # the other assets (infra_validation, pushed_model) use dagster-celery's default queue, `dagster`
# Worker name -> the queues it listens on, given as ONE comma-separated -q: dagster-celery turns each -q into a -Q
# for `celery worker`, and Celery 5 keeps only the last -Q.
# Two workers on `training`: with training.workers 2 and tuning.num_parallel_trials 2, the step (the chief) holds one
# and its rank 1 / tuning worker tasks need the other.
WORKERS = {"data": ["data"], "training": ["training", "dagster"], "training2": ["training"]}
MEMBER_TASKS = "trainpipe_assets.scaleout.tasks"  # imported by every worker (-i): ranks and tuning workers
# The cluster's module: the sample module, whose rank 1 waits (in run_fn, while the chief waits for it in its
# collective) as long as the file `hold-rank-1` exists in TRAINPIPE_HOME, and whose tuning worker w0 waits in its first
# trial as long as `hold-tuning` exists: the chaos tests' moments to kill them.
CLUSTER_MODULE = """
import json
import os
import time
from pathlib import Path

import keras

from trainpipe_assets.example_modules import sample_module
from trainpipe_assets.example_modules.sample_module import *  # noqa: F403


def _hold(name, what):
    hold = Path(os.environ["TRAINPIPE_HOME"]) / name
    if hold.exists():
        print(what, flush=True)
        while hold.exists():
            time.sleep(0.5)


class HoldTrial(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        _hold("hold-tuning", "tuning worker w0 is held mid-trial")


def run_fn(fn_args):
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    if task == {"type": "worker", "index": 0}:
        _hold("hold-rank-1", "rank 1 is held mid-training")
    return sample_module.run_fn(fn_args)


def tuner_fn(fn_args):
    result = sample_module.tuner_fn(fn_args)
    if os.environ.get("KERASTUNER_TUNER_ID") == "w0":
        result.fit_kwargs["callbacks"] = [*result.fit_kwargs.get("callbacks", []), HoldTrial()]
    return result
"""


def _redis_server() -> str | None:
    return shutil.which("redis-server") or next((p for p in ["/usr/bin/redis-server"] if Path(p).exists()), None)


def _answers(port: int, command: bytes, reply: bytes) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(command)
            return s.recv(64).startswith(reply)
    except OSError:
        return False


def stop(process: subprocess.Popen, seconds: float = 60) -> None:
    """SIGTERM to the process group a process leads (a worker and its pool, a server and its children), then KILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    except ProcessLookupError:
        pass
    try:  # pool processes the worker left behind
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    server_bin = _redis_server()
    if server_bin is None:
        print("cluster test skipped: no redis-server found (apt-get install redis-server)")
        pytest.skip("no redis-server on this machine")
    port = free_port()
    log = tmp_path_factory.mktemp("redis") / "redis.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [server_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--daemonize", "no"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while not _answers(port, b"PING\r\n", b"+PONG"):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("redis-server did not start: " + log.read_text()[-2000:])
            time.sleep(0.1)
        yield port
    finally:
        stop(server)


@pytest.fixture(scope="module")
def dagster_postgres_url(postgres_url):  # noqa: F811
    """A database of its own on the test server, as dagster-postgres reads it: postgresql+psycopg2://..."""
    import sqlalchemy

    url = postgres_url.replace("postgresql+pg8000://", "postgresql+psycopg2://")
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("DROP DATABASE IF EXISTS trainpipe_dagster")
        conn.exec_driver_sql("CREATE DATABASE trainpipe_dagster")
    engine.dispose()
    return url.rsplit("/", 1)[0] + "/trainpipe_dagster"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, redis_port, dagster_postgres_url):
    """DAGSTER_HOME with PostgreSQL storage, the settings (Celery on Redis, the queues, quick training), sample days
    in a shared TRAINPIPE_HOME, and the data and training workers running; yields the environment and folders."""
    from trainpipe_assets.data.sample_data import write_days
    from trainpipe_assets_tests.helpers import make_config, write_config

    base = tmp_path_factory.mktemp("cluster")
    dagster_home, home = base / "dagster_home", base / "home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(
        yaml.safe_dump(
            {"storage": {"postgres": {"postgres_url": dagster_postgres_url}}, "telemetry": {"enabled": False}}
        )
    )
    broker, backend = f"redis://127.0.0.1:{redis_port}/0", f"redis://127.0.0.1:{redis_port}/1"
    (base / "cluster_module.py").write_text(CLUSTER_MODULE)
    config = write_config(
        base / "trainpipe.yaml",
        module_file="cluster_module.py",
        execution={"executor": "celery", "broker": broker, "backend": backend, "queues": QUEUES},
        # rank 1 and the tuning workers are Celery tasks on `training` (the queues of their assets)
        training={"workers": 2, "advertise_host": "127.0.0.1", "start_timeout": 120},
        tuning={"num_parallel_trials": 2, "oracle_advertise_host": "127.0.0.1", "start_timeout": 120},
        train_steps=10,
        eval_steps=2,
        custom_config={"max_trials": 2},
        evaluation={"thresholds": {}, "min_eval_rows": 0},
        infra_validation={"mode": "LOAD_ONLY", "num_tries": 1},
    )
    celery_yaml = base / "celery.yaml"  # the executor's config block, which the workers read with -y
    celery_yaml.write_text(yaml.safe_dump({"execution": {"config": {"broker": broker, "backend": backend}}}))
    trainpipe = make_config(home, config)
    write_days(trainpipe.landing_dir, len(CLUSTER_DAYS), 120, end=dt.date.fromisoformat(CLUSTER_DAYS[-1]), seed=7)
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # dagster-celery starts `celery` from PATH
        "DAGSTER_HOME": str(dagster_home),
        "TRAINPIPE_HOME": str(home),
        "TRAINPIPE_CONFIG": str(config),
        "TRAINPIPE_ADVERTISE_HOST": "127.0.0.1",  # where a worker's ranks are reached (default: its host name)
    }
    workers, logs = {}, {}
    try:
        for name, queues in WORKERS.items():
            logs[name] = base / f"{name}-worker.log"
            command = [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app"]
            command += ["-y", str(celery_yaml)]
            command += ["-q", ",".join(queues), "-n", name, "-l", "INFO", "-i", MEMBER_TASKS]
            # One task at a time per worker (each step is a TensorFlow process), and no task reserved while one runs:
            # else a worker busy with a chief step would hold its own rank 1 task and the training would wait for it.
            command += ["--", "--concurrency=1", "--disable-prefetch"]
            with open(logs[name], "wb") as out:
                workers[name] = subprocess.Popen(
                    command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
        deadline = time.monotonic() + 240
        for name, worker in workers.items():
            while " ready." not in logs[name].read_text(errors="replace"):
                if worker.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{name} worker did not start:\n" + logs[name].read_text(errors="replace")[-3000:])
                time.sleep(0.5)
            listening = logs[name].read_text(errors="replace")
            assert all(f".> {q} " in listening for q in WORKERS[name]), f"{name} worker queues:\n{listening[-3000:]}"
            assert "trainpipe.scaleout.run_member" in listening, f"{name} worker tasks:\n{listening[-3000:]}"
        yield {
            "env": env,
            "home": home,
            "trainpipe": trainpipe,
            "dagster_home": dagster_home,
            "logs": logs,
            "workers": workers,
        }
    finally:
        for worker in workers.values():
            stop(worker)
