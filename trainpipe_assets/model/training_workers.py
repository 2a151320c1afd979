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
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

from trainpipe_assets.core.net import free_port
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


def tf_config(ports: list[int], rank: int) -> dict:
    hosts = [f"localhost:{port}" for port in ports]
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
) -> dict:
    """Run the module's run_fn in `workers` processes; returns what they report ({"keras2_compat": [...]}) once all
    exited 0. The chief's outputs are fn_args' own folders."""
    log_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="trainpipe-training-workers-"))
    fields = {f.name: getattr(fn_args, f.name) for f in dataclasses.fields(fn_args) if f.name != "data_accessor"}
    per_rank = [{}] + [
        {key: str(scratch / f"worker-{rank}" / key) for key in ("serving_model_dir", "model_run_dir", "working_dir")}
        for rank in range(1, workers)
    ]
    job = scratch / "training_job.json"
    job.write_text(json.dumps({"module_file": str(module_file), "fn_args": fields, "per_rank": per_rank}))
    ports: list[int] = []
    while len(ports) < workers:  # distinct, although each is free only until its process binds it
        ports += [port] if (port := free_port()) not in ports else []
    procs: list[subprocess.Popen] = []
    try:
        for rank in range(workers):
            with open(log_dir / f"worker-{rank}.log", "w") as log:  # the child keeps its own descriptor
                env = {**os.environ, "TF_CONFIG": json.dumps(tf_config(ports, rank)), "PYTHONUNBUFFERED": "1"}
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "trainpipe_assets.model.training_workers", str(job), str(rank)],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                    )
                )
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
                proc.wait()
        shutil.rmtree(scratch, ignore_errors=True)


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
