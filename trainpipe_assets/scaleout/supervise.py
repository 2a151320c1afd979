"""Waiting for the members of a distributed step, shared by tuning and training: for a worker to take each task
(with the addresses they report), for every member to end; the first member to fail or be lost fails the wait, named
with its Celery worker and the end of its log, and the caller cancels the others (`cancel_all`)."""

from __future__ import annotations

import time
from typing import Callable, Iterable

from trainpipe_assets.scaleout.members import DONE, ENDED, FAILED, LOST, WAITING

POLL_SECONDS = 0.5


class MemberError(RuntimeError):
    """A member failed, was lost, did not start or did not finish; the message names it and ends with its log."""


def failure(member, what: str) -> MemberError:
    where = f"on Celery worker {member.worker}" if member.queue else f"as a process of {member.worker}"
    return MemberError(
        f"{member.name} {what} ({where}); the other processes were stopped. Its log ({member.log}) ends:\n"
        f"{member.log_tail()}"
    )


def not_taken(member, timeout: float) -> MemberError:
    short = member.name.split(" (")[0]  # "rank 1", without the TF_CONFIG task
    return MemberError(f"no worker took {short} on queue {member.queue} within {timeout:.0f} s")


def _check(member, status) -> None:
    if status.phase in (FAILED, LOST):
        raise failure(member, status.detail)


def wait_for_workers(members: list, timeout: float, log: Callable[[str], None] = print) -> None:
    """Until a worker took every task (each then reports its address), or MemberError naming the first not taken."""
    started = time.monotonic()
    while True:
        waiting = []
        for member in members:
            status = member.status()
            _check(member, status)
            if status.phase == WAITING:
                waiting.append(member)
        if not waiting:
            log("workers: " + ", ".join(f"{m.name} on {m.worker} at {m.address}" for m in members))
            return
        if time.monotonic() - started > timeout:
            raise not_taken(waiting[0], timeout)
        time.sleep(POLL_SECONDS)


def supervise(members: list, start_timeout: float, finish_grace: float) -> list:
    """Until every member is done (returns their results), or MemberError for the first to fail, be lost, not start
    within start_timeout, or not finish within finish_grace of the first to finish."""
    began, first_done = time.monotonic(), None
    while True:
        statuses = [(m, m.status()) for m in members]
        for member, status in statuses:
            _check(member, status)
        if all(s.phase == DONE for _, s in statuses):
            return [s.result for _, s in statuses]
        now = time.monotonic()
        if any(s.phase == DONE for _, s in statuses):
            first_done = first_done or now
        for member, status in statuses:
            if status.phase == WAITING and now - began > start_timeout:
                raise not_taken(member, start_timeout)
            if first_done is not None and status.phase not in ENDED and now - first_done > finish_grace:
                raise failure(member, f"had not finished {finish_grace:.0f} s after another process finished")
        time.sleep(POLL_SECONDS)


def store_cluster(app, cluster_id: str, env: dict[str, dict]) -> None:
    """Every member's environment, where the waiting member tasks read it (the result backend)."""
    app.backend.store_result(cluster_id, {"env": env}, "SUCCESS")


def cancel_all(members: Iterable, app=None, cluster_id: str | None = None) -> None:
    """Stop every member still running (revoke(terminate=True) for tasks) and forget their results."""
    if app is not None and cluster_id is not None:
        app.backend.forget(cluster_id)
    for member in members:
        member.cancel()
        member.forget()
