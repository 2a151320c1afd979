"""run_fn in N processes with TF_CONFIG set (`training: {workers: N}`): a chief and N-1 workers, the cluster
tf.distribute.MultiWorkerMirroredStrategy reads, as on Vertex. The chief (rank 0) is a child process of the step and
writes the model's serving_model_dir and model_run_dir; each other rank writes its outputs to temporary folders of its
own, removed when it ends (TF's multi-worker saving has every task save, each to a different path). Rank i logs to
`<log_dir>/worker-<i>.log`.

Where the other ranks run (trainpipe_assets/scaleout/): without Celery, child processes of the step on free local
ports; with `execution.executor: celery`, Celery tasks on `training.queue` (default the queue of trained_model): each
task picks a port on its worker's machine and reports it through the result backend, the step stores the cluster
there once every rank is taken (or fails with "no worker took rank 1 on queue training within N s" after
`training.start_timeout`), and each rank then runs with the same TF_CONFIG as the local mode. The first rank to fail,
or to be lost with its worker, fails the training at once with the end of its log, and the other ranks are stopped
(tasks revoked)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import sys
import tempfile
import traceback
import uuid
from pathlib import Path
from typing import Callable, Optional

from trainpipe_assets.core.net import free_port
from trainpipe_assets.module.api import FnArgs
from trainpipe_assets.scaleout import members as scaleout
from trainpipe_assets.scaleout import process
from trainpipe_assets.scaleout.members import Engine
from trainpipe_assets.scaleout.supervise import MemberError, cancel_all, store_cluster, supervise, wait_for_workers

ENTRY = "trainpipe_assets.model.training_workers"
START_TIMEOUT_SECONDS = 600.0  # importing TensorFlow and the module file on a busy machine
FINISH_GRACE_SECONDS = 600.0  # after the first process finished: the others end the same collective training


class DistributedTrainingError(RuntimeError):
    """A training rank failed, did not start, or did not finish; the message names it and ends with its log."""


def task_of(rank: int) -> dict:
    """TF_CONFIG's task for process `rank`: 0 is the chief, the others are workers 0..N-2."""
    return {"type": "chief", "index": 0} if rank == 0 else {"type": "worker", "index": rank - 1}


def tf_config(addresses: list, rank: int) -> dict:
    """TF_CONFIG for process `rank` of a cluster of host:port addresses (bare ports mean localhost)."""
    hosts = [a if isinstance(a, str) else f"localhost:{a}" for a in addresses]
    return {"cluster": {"chief": hosts[:1], "worker": hosts[1:]}, "task": task_of(rank)}


def describe(rank: int) -> str:
    task = task_of(rank)
    return f"rank {rank} (TF_CONFIG task {task['type']} {task['index']})"


def train_in_processes(
    module_file: Path,
    fn_args: FnArgs,
    workers: int,
    log_dir: Path,
    engine: Optional[Engine] = None,
    start_timeout: float = START_TIMEOUT_SECONDS,
    finish_grace: float = FINISH_GRACE_SECONDS,
    advertise_host: Optional[str] = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Run the module's run_fn in `workers` processes; once all exited 0 returns {"keras2_compat": [...], "workers":
    {rank: where it ran}}. The chief's outputs are fn_args' own folders."""
    log_dir.mkdir(parents=True, exist_ok=True)
    fields = {f.name: getattr(fn_args, f.name) for f in dataclasses.fields(fn_args) if f.name != "data_accessor"}

    def job(rank: int) -> dict:
        return {"module_file": str(module_file), "fn_args": fields, "rank": rank}

    def rank_log(rank: int) -> Path:
        return log_dir / f"worker-{rank}.log"

    members: list = []
    app = cluster_id = None
    try:
        if engine is None:
            addresses = [f"localhost:{port}" for port in _ports(workers)]
            for rank in range(workers):
                env = {"TF_CONFIG": json.dumps(tf_config(addresses, rank))}
                members.append(scaleout.LocalMember(describe(rank), ENTRY, job(rank), env, rank_log(rank)))
        else:
            app, cluster_id = scaleout.celery_app(engine.broker, engine.backend), f"trainpipe-cluster-{uuid.uuid4()}"
            for rank in range(1, workers):
                spec = {"entry": ENTRY, "job": job(rank), "log": str(rank_log(rank)), "cluster": cluster_id}
                spec["wait_seconds"] = start_timeout + 60
                members.append(scaleout.TaskMember(app, describe(rank), spec, engine.queue))
            log(f"training ranks 1-{workers - 1} sent to queue {engine.queue}")
            wait_for_workers(members, start_timeout, log)
            chief = f"{advertise_host or socket.gethostname()}:{free_port('0.0.0.0')}"
            addresses = [chief] + [m.address for m in members]
            store_cluster(
                app,
                cluster_id,
                {m.name: {"TF_CONFIG": json.dumps(tf_config(addresses, r + 1))} for r, m in enumerate(members)},
            )
            env = {"TF_CONFIG": json.dumps(tf_config(addresses, 0))}
            members.insert(0, scaleout.LocalMember(describe(0), ENTRY, job(0), env, rank_log(0), chief))
            log("training cluster: " + ", ".join(f"{m.name} at {a} on {m.worker}" for m, a in zip(members, addresses)))
        results = supervise(members, start_timeout, finish_grace)
    except MemberError as e:
        raise DistributedTrainingError(str(e)) from None
    finally:
        cancel_all(members, app, cluster_id)
    compat = sorted({name for result in results for name in (result or {}).get("keras2_compat", [])})
    return {"keras2_compat": compat, "workers": {str(rank): m.worker for rank, m in enumerate(members)}}


def _ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:  # distinct, although each is free only until its process binds it
        ports += [port] if (port := free_port()) not in ports else []
    return ports


def worker_main() -> None:
    from trainpipe_assets.module import keras2_compat
    from trainpipe_assets.module.loader import user_function

    job = process.job()
    rank = job["rank"]
    print(f"trainpipe {describe(rank)}: TF_CONFIG={os.environ.get('TF_CONFIG')}", flush=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"trainpipe-rank-{rank}-")) if rank else None
    own = {k: str(scratch / k) for k in ("serving_model_dir", "model_run_dir", "working_dir")} if scratch else {}
    fn_args = FnArgs(**{**job["fn_args"], **own})
    if scratch:
        Path(fn_args.working_dir).mkdir(parents=True, exist_ok=True)
    try:
        run_fn = user_function(job["module_file"], "run_fn")
        with keras2_compat.keras2_saving():
            run_fn(fn_args)
    except BaseException:
        traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        os._exit(1)  # at once: a normal exit could wait on TF's cluster shutdown for peers that never come
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"trainpipe {describe(rank)}: run_fn returned", flush=True)
    process.report({"keras2_compat": sorted(keras2_compat.used)})


if __name__ == "__main__":
    worker_main()
