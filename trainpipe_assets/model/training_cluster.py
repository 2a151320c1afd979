"""Training ranks on other machines (`training: {workers: N, remote_workers: M}`): the chief publishes the job in the
shared TRAINPIPE_HOME, `trainpipe training-worker` processes on the training machines claim its last M ranks (each
with its own host and port), and once every rank is claimed the chief writes the cluster (TF_CONFIG's addresses) and
all ranks start. Every file of a job lives in its folder `$TRAINPIPE_HOME/training/jobs/<id>/`:

    job.json            what each rank runs (module file, FnArgs, per-rank folders)     written by the chief
    claim-<rank>.json   {"host", "port", "name", "pid"} of the machine running a rank     by a worker (O_EXCL)
    cluster.json        every rank's host:port                                          by the chief
    beat-<rank>         touched by a worker while its rank runs (a minute silent: lost)  by a worker
    exit-<rank>.json    the rank's exit code                                           by a worker
    cancel              the chief gave up: workers stop their rank                      by the chief

and the open job is listed in `$TRAINPIPE_HOME/training/open/<id>.json` until every rank is claimed. A remote rank's
log is written to the chief's log folder (shared too), so a failure shows its tail like a local rank's."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Optional

from trainpipe_assets.core.storage import write_text

LOST_SECONDS = 60.0  # a remote rank whose heartbeat is older than this is taken as gone
LOST = -1000  # the exit code a lost remote rank reports (no process exit code is this)
POLL_SECONDS = 0.5


def open_jobs(home) -> Path:
    return Path(home) / "training" / "open"


def job_folder(home, job_id: str) -> Path:
    return Path(home) / "training" / "jobs" / job_id


def publish(home, job_id: str, job: dict) -> Path:
    """Write the job into its folder and list it as open; returns the folder."""
    folder = job_folder(home, job_id)
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / "job.json", json.dumps(job))
    write_text(open_jobs(home) / f"{job_id}.json", json.dumps({**job, "id": job_id}))
    return folder


def unpublish(home, job_id: str) -> None:
    (open_jobs(home) / f"{job_id}.json").unlink(missing_ok=True)


def claim(folder: Path, ranks: list[int], host: str, port: int, name: str) -> Optional[int]:
    """Claim the first unclaimed rank of `ranks` for this machine (atomic: O_EXCL), None if all are taken."""
    for rank in ranks:
        try:
            fd = os.open(folder / f"claim-{rank}.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as f:
            json.dump({"host": host, "port": port, "name": name, "pid": os.getpid()}, f)
        return rank
    return None


def claims(folder: Path, ranks: list[int]) -> dict[int, dict]:
    found = {}
    for rank in ranks:
        try:
            found[rank] = json.loads((folder / f"claim-{rank}.json").read_text())
        except (OSError, ValueError):  # not claimed, or being written
            pass
    return found


def wait_for_claims(folder: Path, ranks: list[int], timeout: float, log) -> dict[int, dict]:
    """Every remote rank's claim; a TimeoutError saying how many machines never came."""
    deadline, said = time.monotonic() + timeout, -1
    while True:
        found = claims(folder, ranks)
        if len(found) != said:
            said = len(found)
            log(
                f"{said} of {len(ranks)} remote training rank(s) claimed "
                + str({r: c["name"] for r, c in found.items()})
            )
        if len(found) == len(ranks):
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{len(ranks) - len(found)} of {len(ranks)} remote training rank(s) were not claimed within "
                f"{timeout:.0f}s: start `trainpipe training-worker` on the training machines (with the same "
                "TRAINPIPE_HOME), or lower training.remote_workers"
            )
        time.sleep(POLL_SECONDS)


def write_cluster(folder: Path, addresses: list[str]) -> None:
    write_text(folder / "cluster.json", json.dumps({"addresses": addresses}))


def read_cluster(folder: Path) -> Optional[list[str]]:
    try:
        return json.loads((folder / "cluster.json").read_text())["addresses"]
    except (OSError, ValueError, KeyError):
        return None


class RemoteRank:
    """A rank running on another machine, watched through its files: wait() returns its exit code (LOST when its
    heartbeat went silent), poll() the code if it has exited, kill() asks the worker to stop it."""

    def __init__(self, folder: Path, rank: int, lost_seconds: float = LOST_SECONDS):
        self.folder, self.rank, self.lost_seconds = folder, rank, lost_seconds
        self.since = time.time()

    def poll(self) -> Optional[int]:
        try:
            return int(json.loads((self.folder / f"exit-{self.rank}.json").read_text())["code"])
        except (OSError, ValueError, KeyError):
            return None

    def silent_for(self) -> float:
        try:
            last = (self.folder / f"beat-{self.rank}").stat().st_mtime
        except OSError:
            last = self.since
        return time.time() - max(last, self.since)

    def wait(self) -> int:
        while (code := self.poll()) is None:
            if self.silent_for() > self.lost_seconds:
                return LOST
            time.sleep(POLL_SECONDS)
        return code

    def kill(self) -> None:
        if self.folder.is_dir():
            (self.folder / "cancel").touch()
