"""Tuning trials in workers with KerasTuner's own distributed mode. The step is the chief: it holds the tuner's
oracle and serves it over gRPC with KerasTuner's OracleServicer; each worker runs the module's tuner_fn with the same
FnArgs and KerasTuner's environment (KERASTUNER_TUNER_ID=w<i>, or local<i> for local processes;
KERASTUNER_ORACLE_IP/PORT) and asks the oracle for trials until the search is over. (TFX raises ValueError for this
outside Google Cloud.)

Workers (trainpipe_assets/scaleout/): `num_parallel_trials` local processes, or with `execution.executor: celery` as
many Celery tasks on `tuning.queue` (default the queue of best_hyperparameters), the oracle's address going in the
task arguments. The search ends when KerasTuner says so (every trial handed out and ended), or when no worker is left;
tasks no worker took by then are revoked. A worker that fails or is lost with its Celery worker loses only its trial:
the step ends that trial through the oracle's own end_trial as INVALID (KerasTuner retries it if the tuner allows
retries, else it is FAILED with the reason) and lets the search go on. The search fails when no trial completed and a
worker failed, or when no worker took any task within `tuning.start_timeout`."""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Optional

from trainpipe_assets.module.api import FnArgs
from trainpipe_assets.scaleout import members as scaleout
from trainpipe_assets.scaleout import process
from trainpipe_assets.scaleout.members import ENDED, FAILED, LOST, WAITING, Engine
from trainpipe_assets.scaleout.supervise import POLL_SECONDS, cancel_all

ENTRY = "trainpipe_assets.model.tuning_workers"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
ANY_ADDRESS = ("0.0.0.0", "::", "")


class ParallelTuningError(RuntimeError):
    """No trial completed and a worker failed, or no worker came; the message carries the end of its log."""


@dataclasses.dataclass
class Search:
    tuner: Any  # the chief's tuner: its oracle holds every trial
    ran_by: dict[str, str]  # trial id -> the worker that ran it (its Celery worker, or the local process)
    workers: dict[str, str]  # KerasTuner tuner id -> the worker it ran on
    failed: dict[str, str]  # tuner id -> what happened to it (failed, lost, never taken)
    lost_trials: dict[str, str]  # trial id -> why it was lost


def advertised_host(bind_host: str, advertise: Optional[str]) -> str:
    """What the workers connect to: the setting, else 127.0.0.1 for a loopback or any-address bind without Celery,
    else this host's name."""
    if advertise:
        return advertise
    return "127.0.0.1" if bind_host in LOOPBACK else socket.gethostname()


@contextmanager
def _environ(values: dict[str, str]):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _servicer(oracle, handed: dict[str, str]):
    """KerasTuner's OracleServicer, remembering which tuner each trial was handed to."""
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    class Servicer(OracleServicer):
        def CreateTrial(self, request, context):
            response = super().CreateTrial(request, context)
            trial = oracle.ongoing_trials.get(request.tuner_id)  # set when the tuner got a trial to run
            if trial is not None:
                handed[trial.trial_id] = request.tuner_id
            return response

    return Servicer(oracle)


def _lose(oracle, tuner_id: str, why: str) -> Optional[str]:
    """End the trial a gone worker held (INVALID: KerasTuner retries it when allowed) and forget the worker."""
    trial = oracle.ongoing_trials.get(tuner_id)
    if trial is not None:
        trial.status, trial.message = "INVALID", f"lost: {why}"
        try:
            oracle.end_trial(trial)
        except RuntimeError:  # KerasTuner's limit of consecutive failed trials: the search ends with what it has
            oracle.ongoing_trials.pop(tuner_id, None)
    oracle.tuner_ids.discard(tuner_id)
    return trial.trial_id if trial is not None else None


def _bind(server, host: str) -> int:
    address = f"[{host}]:0" if ":" in host else f"{host}:0"
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as e:
        raise ParallelTuningError(f"the tuning oracle cannot listen on {address} (tuning.oracle_bind_host)") from e
    if not port:
        raise ParallelTuningError(f"the tuning oracle cannot listen on {address} (tuning.oracle_bind_host)")
    return port


def search_in_parallel(
    tuner_fn,
    module_file: Path,
    fn_args: FnArgs,
    workers: int,
    log_dir: Path,
    *,
    engine: Optional[Engine] = None,
    bind_host: str = "127.0.0.1",
    advertise: Optional[str] = None,
    start_timeout: float = 600.0,
    log: Callable[[str], None] = print,
) -> Search:
    """Serve the search to `workers` KerasTuner workers (local processes, or Celery tasks with `engine`)."""
    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import exit_chief
    from keras_tuner.src.engine.oracle import synchronized

    with _environ({"KERASTUNER_TUNER_ID": "chief"}):
        tuner = tuner_fn(fn_args).tuner  # the chief's tuner: its oracle is the one every worker asks
    oracle, handed = tuner.oracle, {}
    servicer = _servicer(oracle, handed)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))  # one call at a time, as KerasTuner serves it
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    port = _bind(server, bind_host)
    server.start()
    fields = {f.name: getattr(fn_args, f.name) for f in dataclasses.fields(fn_args) if f.name != "data_accessor"}
    job = {"module_file": str(module_file), "fn_args": fields}
    host = advertised_host(bind_host, advertise) if engine else "127.0.0.1"
    search, members = Search(tuner, {}, {}, {}, {}), {}
    app = scaleout.celery_app(engine.broker, engine.backend) if engine else None
    try:
        for i in range(workers):
            name, log_file = (f"w{i}" if engine else f"local{i}"), log_dir / f"worker-{i}.log"
            env = {"KERASTUNER_TUNER_ID": name, "KERASTUNER_ORACLE_IP": host, "KERASTUNER_ORACLE_PORT": str(port)}
            if engine:
                spec = {"entry": ENTRY, "job": job, "env": env, "log": str(log_file)}
                members[name] = scaleout.TaskMember(app, f"tuning worker {name}", spec, engine.queue)
            else:
                members[name] = scaleout.LocalMember(f"tuning worker {name}", ENTRY, job, env, log_file)
        if engine:
            log(f"{workers} tuning worker task(s) sent to queue {engine.queue}; the oracle is at {host}:{port}")
        _serve(oracle, servicer, members, search, start_timeout, log, exit_chief, synchronized(_lose))
    finally:
        server.stop(grace=5)
        cancel_all(members.values())
    # Celery: the worker each task ran on; local processes are known by their tuner ids
    search.workers = {name: (m.worker if engine else name) for name, m in members.items() if m.worker}
    search.ran_by = {trial: search.workers.get(name, name) for trial, name in handed.items()}
    for trial in oracle.trials.values():
        if trial.status == "RUNNING":  # no worker was left to run it
            trial.status, trial.message = "FAILED", "its worker was gone and no worker was left to run it again"
            search.lost_trials.setdefault(trial.trial_id, trial.message)
    if search.failed and not any(t.status == "COMPLETED" for t in oracle.trials.values()):
        lines = ["no tuning trial completed:", *(f"tuning worker {n} {what}" for n, what in search.failed.items())]
        name = next(iter(search.failed))
        tail = members[name].log_tail() if name in members else ""
        raise ParallelTuningError("\n".join([*lines, f"tuning worker {name}'s log ends:", tail]))
    return search


def _serve(oracle, servicer, members: dict, search: Search, start_timeout: float, log, exit_chief, lose) -> None:
    """Until KerasTuner's chief would stop (every trial handed out and ended, every worker told so) or no worker is
    left; a worker that failed or was lost gives up its trial."""
    began = time.monotonic()
    while True:
        time.sleep(POLL_SECONDS)
        statuses = {name: m.status() for name, m in members.items()}
        for name, status in statuses.items():
            if status.phase in (FAILED, LOST) and name not in search.failed:
                where = members[name].worker or "no worker"
                why = f"{status.detail} (on {where})" if members[name].queue else status.detail
                search.failed[name] = why
                trial = lose(oracle, name, why)
                if trial:
                    search.lost_trials[trial] = why
                log(f"tuning worker {name} {why}" + (f"; its trial {trial} is lost" if trial else ""))
        if servicer.stop_triggered and exit_chief(oracle):
            return
        phases = [s.phase for s in statuses.values()]
        if all(p in ENDED for p in phases):
            return
        if all(p in ENDED + (WAITING,) for p in phases) and not any(p == "done" for p in phases):
            if time.monotonic() - began > start_timeout:
                queue = next(iter(members.values())).queue
                raise ParallelTuningError(
                    f"no worker took a tuning worker task on queue {queue} within {start_timeout:.0f} s"
                )


def worker_main() -> None:
    from trainpipe_assets.module.keras2_compat import keras2_saving
    from trainpipe_assets.module.loader import user_function

    job = process.job()
    tuner_fn = user_function(job["module_file"], "tuner_fn")
    with keras2_saving():
        result = tuner_fn(FnArgs(**job["fn_args"]))
        result.tuner.search(**result.fit_kwargs)
    process.report({"tuner_id": os.environ.get("KERASTUNER_TUNER_ID")})


if __name__ == "__main__":
    worker_main()
