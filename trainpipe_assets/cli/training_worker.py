"""`trainpipe training-worker`: run ranks of the distributed trainings that `trained_model` chiefs publish in the shared
TRAINPIPE_HOME (with `training.remote_workers > 0`): claim one rank of an open job, wait for the chief to write the
cluster, run run_fn as that rank (TF_CONFIG set, MultiWorkerMirroredStrategy's contract) in a child process whose log
goes to the chief's log folder, report its exit code, then watch for the next job (--once: exit with the rank's exit
code after one). This machine needs the same module code and Python packages as the chief; TRAINPIPE_HOME may be
mounted at another path. TensorFlow's collective ops connect to --advertise-host (default: this host's name) on a
free port of this machine.

While the rank runs, this process touches a heartbeat the chief watches (a minute silent: the rank is taken as lost and
the training fails with its log); it stops the child when the chief cancels the job or the job's folder disappears.
Stopped with SIGTERM or Ctrl-C, it stops its child too."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from trainpipe_assets.cli.tuning_worker import _stop, localized, worker_setup


def localized_job(job: dict, home) -> dict:
    """The job with the chief's paths moved to where this machine has the shared home and the package."""
    moved = localized({**job, "fn_args": {"per_rank": job["per_rank"], "log_dir": job["log_dir"]}}, home)["fn_args"]
    return {**localized(job, home), **moved}


def next_job(folder: Path, done: set[str]) -> Optional[dict]:
    paths = []
    for path in folder.glob("*.json"):
        try:
            paths.append((path.stat().st_mtime, path))
        except OSError:  # claimed fully and unpublished meanwhile
            pass
    for _, path in sorted(paths):
        if path.stem in done:
            continue
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return None


def run_rank(job: dict, rank: int, folder: Path, poll_seconds: float, name: str) -> int:
    """Wait for the cluster, run the rank in a child process, report its exit code; the code."""
    from trainpipe_assets.core.storage import write_text
    from trainpipe_assets.model.training_cluster import read_cluster
    from trainpipe_assets.model.training_workers import describe, tf_config

    while (addresses := read_cluster(folder)) is None:
        if (folder / "cancel").exists() or not folder.is_dir():
            print(f"{name}: training job {job['id']} was cancelled before it started", flush=True)
            return 143
        (folder / f"beat-{rank}").touch()
        time.sleep(min(poll_seconds, 1.0))
    job_file = folder / f"job-rank-{rank}.json"
    job_file.write_text(json.dumps(job))
    log_dir = Path(job["log_dir"])
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"{name} runs {describe(rank)} of training job {job['id']} at {addresses[rank]}", flush=True)
    with open(log_dir / f"worker-{rank}.log", "w") as out:
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config(addresses, rank)), "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "trainpipe_assets.model.training_workers", str(job_file), str(rank)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        while True:
            try:
                code = proc.wait(timeout=min(poll_seconds, 10.0))
                break
            except subprocess.TimeoutExpired:
                pass
            if (folder / "cancel").exists() or not folder.is_dir():
                print(f"{name}: training job {job['id']} was cancelled by its chief; stopping the rank", flush=True)
                code = _stop(proc)
                break
            (folder / f"beat-{rank}").touch()
    finally:
        if proc.poll() is None:  # SIGTERM, Ctrl-C or an error here: no training process left behind
            _stop(proc)
    if folder.is_dir():
        write_text(folder / f"exit-{rank}.json", json.dumps({"code": code, "name": name}))
    return code


def run(args: argparse.Namespace) -> int:
    from trainpipe_assets.core.net import free_port
    from trainpipe_assets.model.training_cluster import claim, job_folder, open_jobs

    name, home, folder = worker_setup(args, open_jobs)
    host = args.advertise_host or socket.gethostname()
    print(f"training worker {name}: watching {folder} for open training jobs", flush=True)
    done: set[str] = set()
    while True:
        job = next_job(folder, done)
        if job is None:
            time.sleep(args.poll_seconds)
            continue
        done.add(job["id"])
        job = localized_job(job, home)
        jobdir = job_folder(home, job["id"])
        rank = claim(jobdir, job["remote_ranks"], host, free_port("0.0.0.0"), name)
        if rank is None:
            continue  # every rank was taken by other machines
        (jobdir / f"beat-{rank}").touch()
        print(f"{name} claimed rank {rank} of training job {job['id']}", flush=True)
        code = run_rank(job, rank, jobdir, args.poll_seconds, name)
        print(f"{name} finished rank {rank} of training job {job['id']}: exit code {code}", flush=True)
        if args.once:
            return code if code >= 0 else 128 - code


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true", help="exit after one job (with its rank's exit code)")
    parser.add_argument("--poll-seconds", type=float, default=2.0, help="how often to look for open jobs")
    parser.add_argument("--name", help="this worker's name in the chief's log (default: <host>-<pid>)")
    parser.add_argument(
        "--advertise-host", help="the name or address other training machines reach this one at (default: host name)"
    )


def register(sub) -> None:
    worker = sub.add_parser(
        "training-worker", help="run ranks of the distributed trainings published in $TRAINPIPE_HOME/training/open"
    )
    add_arguments(worker)
    worker.set_defaults(func=run)
