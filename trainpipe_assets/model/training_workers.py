"""run_fn in N local processes with TF_CONFIG set (`training: {workers: N}`): a chief and N-1 workers, the cluster
tf.distribute.MultiWorkerMirroredStrategy reads, as on Vertex. Every process gets the same FnArgs except its output
folders: the chief writes to the model's serving_model_dir and model_run_dir, each worker to folders of its own that
are removed afterwards (TF's multi-worker saving has every task save, each to a different path). Process i logs to
`<log_dir>/worker-<i>.log` (0 is the chief).

A process is `python -m trainpipe_assets.model.training_workers <job.json> <i>`: it prints its TF_CONFIG task, marks
itself started once the module file is loaded, and calls run_fn. The first process to exit non-zero fails the
training at once, with the end of its log, and the others are killed; so are all of them when one has not started
within `start_timeout`, or has not finished within `finish_grace` of the first to finish."""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Callable, Optional

from trainpipe_assets.core.net import free_port
from trainpipe_assets.model.training_cluster import (
    LOST,
    RemoteRank,
    job_folder,
    publish,
    unpublish,
    wait_for_claims,
    write_cluster,
)
from trainpipe_assets.module.api import FnArgs

START_TIMEOUT_SECONDS = 600.0  # importing TensorFlow and the module file on a busy machine
FINISH_GRACE_SECONDS = 600.0  # after the first process finished: the others end the same collective training
POLL_SECONDS = 0.5
TAIL_CHARS = 3000


class DistributedTrainingError(RuntimeError):
    """A training process failed, did not start, or did not finish; the message names it and ends with its log."""


def task_of(rank: int) -> dict:
    """TF_CONFIG's task for process `rank`: 0 is the chief, the others are workers 0..N-2."""
    return {"type": "chief", "index": 0} if rank == 0 else {"type": "worker", "index": rank - 1}


def tf_config(addresses: list, rank: int) -> dict:
    """TF_CONFIG for process `rank` of a cluster of host:port addresses (bare ports mean localhost)."""
    hosts = [a if isinstance(a, str) else f"localhost:{a}" for a in addresses]
    return {"cluster": {"chief": hosts[:1], "worker": hosts[1:]}, "task": task_of(rank)}


def describe(rank: int) -> str:
    task = task_of(rank)
    return f"training process {rank} (TF_CONFIG task {task['type']} {task['index']})"


def _tail(log: Path) -> str:
    text = log.read_text(errors="replace") if log.is_file() else ""
    return ("..." + text[-TAIL_CHARS:]) if len(text) > TAIL_CHARS else text


def train_in_processes(
    module_file: Path,
    fn_args: FnArgs,
    workers: int,
    log_dir: Path,
    start_timeout: float = START_TIMEOUT_SECONDS,
    finish_grace: float = FINISH_GRACE_SECONDS,
    remote_workers: int = 0,
    home: Optional[Path] = None,
    advertise_host: Optional[str] = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Run the module's run_fn in `workers` processes; returns what they report ({"keras2_compat": [...]}) once all
    exited 0. The chief's outputs are fn_args' own folders. The last `remote_workers` ranks run on the machines whose
    `trainpipe training-worker` claims them (training_cluster.py); the job's files are then in the shared `home`."""
    import trainpipe_assets

    log_dir.mkdir(parents=True, exist_ok=True)
    job_id = uuid.uuid4().hex[:12]
    scratch = job_folder(home, job_id) if remote_workers else Path(tempfile.mkdtemp(prefix="trainpipe-training-"))
    scratch.mkdir(parents=True, exist_ok=True)
    fields = {f.name: getattr(fn_args, f.name) for f in dataclasses.fields(fn_args) if f.name != "data_accessor"}
    per_rank = [{}] + [
        {key: str(scratch / f"worker-{rank}" / key) for key in ("serving_model_dir", "model_run_dir", "working_dir")}
        for rank in range(1, workers)
    ]
    job = {
        "module_file": str(module_file),
        "fn_args": fields,
        "per_rank": per_rank,
        "log_dir": str(log_dir),
        "home": str(home) if home else None,
        "package_dir": str(Path(trainpipe_assets.__file__).parent),
        "remote_ranks": list(range(workers - remote_workers, workers)),
    }
    (scratch / "job.json").write_text(json.dumps(job))
    procs: list = []
    try:
        local = workers - remote_workers
        if remote_workers:
            host = advertise_host or socket.gethostname()
            publish(home, job_id, job)
            log(
                f"training job {job_id} waits for {remote_workers} remote rank(s) "
                f"(`trainpipe training-worker` on the training machines)"
            )
            try:
                claimed = wait_for_claims(scratch, job["remote_ranks"], start_timeout, log)
            except TimeoutError as e:
                raise DistributedTrainingError(str(e)) from None
            finally:
                unpublish(home, job_id)
            addresses = [f"{host}:{port}" for port in _ports(local)]
            addresses += [f"{claimed[r]['host']}:{claimed[r]['port']}" for r in job["remote_ranks"]]
            write_cluster(scratch, addresses)
            log("training cluster: " + ", ".join(f"{describe(r)} at {a}" for r, a in enumerate(addresses)))
        else:
            addresses = [f"localhost:{port}" for port in _ports(workers)]
        for rank in range(local):
            with open(log_dir / f"worker-{rank}.log", "w") as out:  # the child keeps its own descriptor
                env = {**os.environ, "TF_CONFIG": json.dumps(tf_config(addresses, rank)), "PYTHONUNBUFFERED": "1"}
                procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "trainpipe_assets.model.training_workers",
                            str(scratch / "job.json"),
                            str(rank),
                        ],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                    )
                )
        procs += [RemoteRank(scratch, rank) for rank in job["remote_ranks"]]
        _supervise(procs, scratch, log_dir, start_timeout, finish_grace)
        compat = set()
        for rank in range(workers):
            result = scratch / f"result-{rank}.json"
            if result.is_file():
                compat |= set(json.loads(result.read_text()).get("keras2_compat", []))
        return {"keras2_compat": sorted(compat)}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                if isinstance(proc, subprocess.Popen):
                    proc.wait()
        if remote_workers:
            unpublish(home, job_id)
            (scratch / "cancel").touch()  # a remote worker still waiting for the cluster stops waiting
            time.sleep(0 if all(p.poll() is not None for p in procs) else POLL_SECONDS * 4)
        shutil.rmtree(scratch, ignore_errors=True)


def _ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:  # distinct, although each is free only until its process binds it
        ports += [port] if (port := free_port()) not in ports else []
    return ports


def _failure(rank: int, log_dir: Path, what: str) -> DistributedTrainingError:
    log = log_dir / f"worker-{rank}.log"
    return DistributedTrainingError(
        f"{describe(rank)} {what}; the other processes were stopped. Its log ({log}) ends:\n{_tail(log)}"
    )


def _supervise(procs: list[subprocess.Popen], scratch: Path, log_dir: Path, start_timeout: float, grace: float):
    """Returns once every process exited 0; raises at the first (in time) to exit otherwise, or to overstay."""
    exits: queue.Queue = queue.Queue()  # ranks in the order they exit: the first failure is the cause, not an echo
    for rank, proc in enumerate(procs):
        threading.Thread(target=lambda rank=rank, proc=proc: exits.put((rank, proc.wait())), daemon=True).start()
    launched, first_done, running = time.monotonic(), None, set(range(len(procs)))
    while running:
        try:
            rank, code = exits.get(timeout=POLL_SECONDS)
        except queue.Empty:
            pass
        else:
            running.discard(rank)
            if code == LOST:
                raise _failure(rank, log_dir, "on a remote machine stopped answering (no heartbeat for a minute)")
            if code != 0:
                raise _failure(rank, log_dir, f"exited with {code}")
            first_done = first_done or time.monotonic()
            continue
        waited = time.monotonic() - launched
        not_started = [rank for rank in sorted(running) if not (scratch / f"started-{rank}").exists()]
        if not_started and waited > start_timeout:
            raise _failure(not_started[0], log_dir, f"had not started run_fn {start_timeout:.0f}s after launch")
        if first_done is not None and time.monotonic() - first_done > grace:
            raise _failure(min(running), log_dir, f"had not finished {grace:.0f}s after another process finished")


def worker_main(job_path: str, rank: int) -> None:
    from trainpipe_assets.module import keras2_compat
    from trainpipe_assets.module.loader import user_function

    job = json.loads(Path(job_path).read_text())
    print(f"trainpipe {describe(rank)}: TF_CONFIG={os.environ.get('TF_CONFIG')}", flush=True)
    fn_args = FnArgs(**{**job["fn_args"], **job["per_rank"][rank]})
    if rank:
        Path(fn_args.working_dir).mkdir(parents=True, exist_ok=True)
    try:
        run_fn = user_function(job["module_file"], "run_fn")
        (Path(job_path).parent / f"started-{rank}").touch()
        with keras2_compat.keras2_saving():
            run_fn(fn_args)
    except BaseException:
        traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)  # at once: a normal exit could wait on TF's cluster shutdown for peers that never come
    result = {"keras2_compat": sorted(keras2_compat.used)}
    (Path(job_path).parent / f"result-{rank}.json").write_text(json.dumps(result))
    print(f"trainpipe {describe(rank)}: run_fn returned", flush=True)


if __name__ == "__main__":
    worker_main(sys.argv[1], int(sys.argv[2]))
