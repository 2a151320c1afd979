"""Tuning trials in worker processes with KerasTuner's own distributed mode. This process is the chief: it holds the
tuner's oracle and serves it over gRPC (KerasTuner's OracleServicer, served by `_serve` rather than `tuner.search`, so
that the chief notices dead workers and never waits forever); each worker runs the module's tuner_fn with the same
FnArgs as `KERASTUNER_TUNER_ID=<its name>` and asks the oracle for trials until the search is over. (TFX raises
ValueError for this outside Google Cloud.)

Workers: `num_parallel_trials` local processes (`local0`, `local1`, ...: `python -m
trainpipe_assets.model.tuning_workers job.json`) and, with `tuning.remote_workers > 0`, any number of `trainpipe
tuning-worker` processes on other machines, for which the chief publishes the search as
<TRAINPIPE_HOME>/tuning/open/<search>.json (the oracle's advertised address and the job) until it is over. The chief
does not wait for remote workers: its local workers start at once, and a remote worker that joins later takes the
trials not handed out yet (after the last one, it gets none).

Dead workers: KerasTuner's oracle never notices one. Its trial stays "ongoing", its id registered, and KerasTuner's
chief waits for both forever (a worker restarted under the same name gets the same trial back; no other worker does).
Here the chief sends the trial of a worker that is gone (a local process that exited; a remote worker whose heartbeat,
tuning/workers/<search>/<name>.json, reports its exit or has not changed for STALE_SECONDS) to the oracle's retry
queue: the next worker asking for a trial runs it. A trial no worker is left to run ends FAILED. The search fails only
when no trial completed and a worker failed."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Optional

from trainpipe_assets.core.storage import write_text
from trainpipe_assets.module.api import FnArgs

STALE_SECONDS = 60.0  # a remote worker whose heartbeat has not changed this long (by this host's clock) is gone
IDLE_SECONDS = 120.0  # a published search with no live worker ends after this long with the trials done so far
LOOPBACK = ("127.0.0.1", "localhost", "::1")
ANY_ADDRESS = ("0.0.0.0", "::", "")


class ParallelTuningError(RuntimeError):
    """No trial completed and a worker failed; the message carries the end of its output."""


@dataclasses.dataclass
class Search:
    tuner: Any  # the chief's tuner: its oracle holds every trial
    ran_by: dict[str, str]  # trial id -> the worker that ran it (the last one, for a trial that ran again)
    workers: list[str]  # every worker that asked for a trial, in the order they first asked
    failed: dict[str, str]  # worker -> what happened to it (exited with a code, gone while holding a trial)


def open_searches(home) -> Path:
    """Where chiefs publish the searches remote workers may join."""
    return Path(home) / "tuning" / "open"


def heartbeats(home, search: str) -> Path:
    return Path(home) / "tuning" / "workers" / search


def advertised_host(bind_host: str, advertise: Optional[str]) -> str:
    """What other machines connect to: the setting, else 127.0.0.1 for a loopback oracle, else this host's name."""
    if advertise:
        return advertise
    return "127.0.0.1" if bind_host in LOOPBACK else socket.gethostname()


def job_for(module_file, fn_args: FnArgs, home=None) -> dict:
    import trainpipe_assets

    fields = {f.name: getattr(fn_args, f.name) for f in dataclasses.fields(fn_args) if f.name != "data_accessor"}
    package = str(Path(trainpipe_assets.__file__).parent)
    return {"module_file": str(module_file), "fn_args": fields, "home": home and str(home), "package_dir": package}


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


class _Liveness:
    """Which workers are still there: a local process until it exits; a remote worker while its heartbeat file keeps
    changing (as this process's clock sees it: the hosts' clocks need not agree) and reports no exit."""

    def __init__(self, procs: dict[str, subprocess.Popen], beats: Optional[Path]):
        self.procs, self.beats = procs, beats
        self.seen: dict[str, tuple[str, float]] = {}

    def alive(self, name: str) -> bool:
        if name in self.procs:
            return self.procs[name].poll() is None
        text = ""
        if self.beats is not None:
            try:
                text = (self.beats / f"{name}.json").read_text()
            except OSError:
                pass
        now = time.monotonic()
        if name not in self.seen or self.seen[name][0] != text:
            self.seen[name] = (text, now)  # a worker with no heartbeat at all is gone STALE_SECONDS after first seen
        try:
            if text and json.loads(text).get("returncode") is not None:
                return False
        except ValueError:
            pass
        return now - self.seen[name][1] < STALE_SECONDS

    def any_alive(self) -> bool:
        remote = [p.stem for p in self.beats.glob("*.json")] if self.beats and self.beats.is_dir() else []
        return any(self.alive(name) for name in [*self.procs, *remote])


def _release(oracle, name: str) -> Optional[str]:
    """Forget a worker that is gone; its ongoing trial goes to the retry queue (create_trial hands those out first)."""
    oracle.tuner_ids.discard(name)
    trial = oracle.ongoing_trials.pop(name, None)
    if trial is None:
        return None
    oracle._retry_queue.append(trial.trial_id)
    return trial.trial_id


def _record_runners(oracle, ran_by: dict[str, str], workers: list[str]) -> None:
    create_trial = oracle.create_trial  # what the gRPC servicer calls for a worker's CreateTrial

    def recorded(tuner_id):
        if tuner_id not in workers:
            workers.append(tuner_id)
        trial = create_trial(tuner_id)
        if trial.status == "RUNNING":
            ran_by[trial.trial_id] = tuner_id
        return trial

    oracle.create_trial = recorded


def _serve(oracle, servicer, liveness: _Liveness, failed: dict[str, str], log: Callable[[str], None]) -> None:
    """Until every trial is handed out and ended and every worker told to stop (KerasTuner's own end), releasing the
    trials of workers that are gone; with no live worker, the search ends at once (only local workers) or after
    IDLE_SECONDS (a published search, which a remote worker may still join)."""
    from keras_tuner.src.distribute.oracle_chief import exit_chief
    from keras_tuner.src.engine.oracle import synchronized

    release = synchronized(_release)  # under the oracle's lock, like its own methods
    idle_since = None
    while True:
        time.sleep(1)
        for name in list(oracle.tuner_ids):
            if not liveness.alive(name):
                trial = release(oracle, name)
                failed.setdefault(name, f"gone while running trial {trial}" if trial else "gone")
                log(f"tuning worker {name} is gone" + (f"; trial {trial} goes back to the queue" if trial else ""))
        if servicer.stop_triggered and exit_chief(oracle):
            return
        if liveness.any_alive():
            idle_since = None
        elif idle_since is None:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since >= (IDLE_SECONDS if liveness.beats else 0):
            log("no tuning worker is left: the search ends with the trials done so far")
            return


def _bind(server, host: str) -> int:
    address = f"[{host}]:0" if ":" in host else f"{host}:0"
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as e:
        raise ParallelTuningError(f"the tuning oracle cannot listen on {address} (tuning.oracle_bind_host)") from e
    if not port:
        raise ParallelTuningError(f"the tuning oracle cannot listen on {address} (tuning.oracle_bind_host)")
    return port


def _reap(proc: subprocess.Popen) -> int:
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()


def search_in_parallel(
    tuner_fn,
    module_file: Path,
    fn_args: FnArgs,
    workers: int,
    log_dir: Path,
    *,
    home=None,
    bind_host: str = "127.0.0.1",
    advertise: Optional[str] = None,
    publish_as: Optional[str] = None,
    log: Callable[[str], None] = print,
) -> Search:
    """Serve the search to `workers` local worker processes (logs in log_dir) and, with `publish_as` (a search name)
    and `home`, to the remote workers that join it."""
    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    with _environ({"KERASTUNER_TUNER_ID": "chief"}):
        tuner = tuner_fn(fn_args).tuner  # the chief's tuner: its oracle is the one every worker asks
    oracle = tuner.oracle
    search = Search(tuner, {}, [], {})
    _record_runners(oracle, search.ran_by, search.workers)
    servicer = OracleServicer(oracle)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))  # one call at a time, as KerasTuner serves it
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    port = _bind(server, bind_host)
    server.start()
    published = beats = None
    procs: dict[str, subprocess.Popen] = {}
    logs = []
    try:
        job = job_for(module_file, fn_args, home)
        write_text(log_dir / "tuning_job.json", json.dumps(job))
        if publish_as and home:
            beats, published = heartbeats(home, publish_as), open_searches(home) / f"{publish_as}.json"
            address = {"host": advertised_host(bind_host, advertise), "port": port}
            write_text(published, json.dumps({**job, "search": publish_as, "oracle": address}))
            log(f"tuning search {publish_as} is open to remote workers at {address['host']}:{port}")
        local_host = "127.0.0.1" if bind_host in LOOPBACK + ANY_ADDRESS else bind_host
        for i in range(workers):
            logs.append(open(log_dir / f"worker-{i}.log", "w"))
            env = {
                **os.environ,
                "KERASTUNER_ORACLE_IP": local_host,
                "KERASTUNER_ORACLE_PORT": str(port),
                "KERASTUNER_TUNER_ID": f"local{i}",
            }
            command = [sys.executable, "-m", "trainpipe_assets.model.tuning_workers", str(log_dir / "tuning_job.json")]
            procs[f"local{i}"] = subprocess.Popen(command, env=env, stdout=logs[-1], stderr=subprocess.STDOUT)
        _serve(oracle, servicer, _Liveness(procs, beats), search.failed, log)
    finally:
        server.stop(grace=5)
        if published is not None:
            published.unlink(missing_ok=True)
            shutil.rmtree(beats, ignore_errors=True)
        codes = {name: _reap(proc) for name, proc in procs.items()}
        for f in logs:
            f.close()
    for i, (name, code) in enumerate(codes.items()):
        if code != 0:
            search.failed[name] = f"exited with {code} (log {log_dir / f'worker-{i}.log'})"
    for trial in oracle.trials.values():
        if trial.status == "RUNNING":  # handed back to the queue, but no worker was left to run it
            trial.status, trial.message = "FAILED", "its worker was gone and no worker was left to run it again"
    if search.failed and not any(t.status == "COMPLETED" for t in oracle.trials.values()):
        raise ParallelTuningError(_failure_message(search.failed, codes, log_dir))
    return search


def _failure_message(failed: dict[str, str], codes: dict[str, int], log_dir: Path) -> str:
    lines = ["no tuning trial completed:", *(f"tuning worker {name} {what}" for name, what in failed.items())]
    for i, (name, code) in enumerate(codes.items()):
        if code != 0:
            tail = (log_dir / f"worker-{i}.log").read_text(errors="replace")[-2000:]
            return "\n".join([*lines, f"tuning worker {name}'s log ends:", tail])
    return "\n".join(lines)


def worker_main(job_path: str) -> None:
    from trainpipe_assets.module.keras2_compat import keras2_saving
    from trainpipe_assets.module.loader import user_function

    job = json.loads(Path(job_path).read_text())
    tuner_fn = user_function(job["module_file"], "tuner_fn")
    with keras2_saving():
        result = tuner_fn(FnArgs(**job["fn_args"]))
        result.tuner.search(**result.fit_kwargs)


if __name__ == "__main__":
    worker_main(sys.argv[1])
