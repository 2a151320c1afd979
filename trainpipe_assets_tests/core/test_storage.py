"""Writes: staging folders belong to their run, and two runs of one asset partition cannot both write it."""

import subprocess
import sys
import textwrap

import pytest

from trainpipe_assets.core.storage import PartitionBusy, lock_partition, staging_dir, unlock_partition
from trainpipe_assets_tests.helpers import DAYS, failure_message, run_job


def hold_lock(artifacts_dir, asset: str, day: str, run_id: str) -> subprocess.Popen:
    """Another process (another run) holding the write lock of one asset partition until it is stopped."""
    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from trainpipe_assets.core.storage import lock_partition
        lock_partition(Path({str(artifacts_dir)!r}), {asset!r}, {day!r}, {run_id!r})
        print("locked", flush=True)
        time.sleep(300)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_holder_is_told_who_writes(tmp_path):
    holder = hold_lock(tmp_path, "schema", "2024-03-01", "run-a")
    try:
        with pytest.raises(PartitionBusy, match="schema 2024-03-01 is being written by run run-a"):
            lock_partition(tmp_path, "schema", "2024-03-01", "run-b")
        lock_partition(tmp_path, "schema", "2024-03-02", "run-b")  # another partition is free
        unlock_partition(tmp_path, "schema", "2024-03-02")
    finally:
        holder.kill()
        holder.wait()
    lock_partition(tmp_path, "schema", "2024-03-01", "run-b")  # the kernel dropped the dead holder's lock
    unlock_partition(tmp_path, "schema", "2024-03-01")


def test_a_second_run_of_a_partition_fails_clearly_and_leaves_the_first_runs_staging(pipeline):
    artifacts = pipeline["trainpipe"].artifacts_dir
    theirs = artifacts / "schema" / f".staging-{DAYS[-1]}-run-a"
    holder = hold_lock(artifacts, "schema", DAYS[-1], "run-a")
    try:
        theirs.mkdir(parents=True)
        result = run_job(pipeline["defs"], "training_job", DAYS[-1], pipeline["instance"], raise_on_error=False)
        assert not result.success
        assert f"schema {DAYS[-1]} is being written by run run-a" in failure_message(result)
        assert theirs.is_dir()  # its staging folder is left alone
    finally:
        holder.kill()
        holder.wait()
        theirs.rmdir()


def test_the_lock_holder_cleans_up_what_earlier_runs_left(tmp_path):
    left = tmp_path / "schema" / ".staging-2024-03-01-dead-run"
    left.mkdir(parents=True)
    lock_partition(tmp_path, "schema", "2024-03-01", "run-c")
    try:
        mine = staging_dir(tmp_path, "schema", "2024-03-01", "run-c")
        assert mine.is_dir() and not left.exists()
    finally:
        unlock_partition(tmp_path, "schema", "2024-03-01")
