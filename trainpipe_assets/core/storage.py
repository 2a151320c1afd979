"""The one way trainpipe writes: into a temporary sibling, then a rename, so a crash never leaves half an artifact.
Files (write_bytes/write_text), folders that replace what was there (replace_dir), folders that must be new
(commit_new_dir, copy_dir) and the per-run staging folders assets fill (staging_dir) all go through here."""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from pathlib import Path
from typing import Optional


def staging_sibling(final: Path) -> Path:
    """A new empty folder next to `final` (same filesystem, so the rename is atomic)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    path = final.parent / f".staging-{final.name}-{uuid.uuid4().hex[:12]}"
    path.mkdir()
    return path


class PartitionBusy(RuntimeError):
    """Another run holds the write lock of this asset and partition."""


_LOCKS: dict[Path, tuple[int, str]] = {}  # lock file -> (open descriptor, holder) held by this process


def lock_partition(artifacts_dir: Path, asset_name: str, partition_key: str, holder: str) -> None:
    """Take the write lock of one asset partition for `holder` (a run id) until `unlock_partition` or the end of the
    process (the kernel drops it when a killed process dies). Re-entrant for the same holder; another holder gets
    PartitionBusy naming the run that has it."""
    path = artifacts_dir / asset_name / f".lock-{partition_key}"
    if path in _LOCKS:
        if _LOCKS[path][1] == holder:
            return
        unlock_partition(artifacts_dir, asset_name, partition_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another run"
        os.close(fd)
        raise PartitionBusy(
            f"{asset_name} {partition_key} is being written by run {other}; this run does not write it too "
            f"(wait for that run to finish, or cancel it)"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, holder.encode(), 0)
    _LOCKS[path] = (fd, holder)


def unlock_partition(artifacts_dir: Path, asset_name: str, partition_key: str) -> None:
    held = _LOCKS.pop(artifacts_dir / asset_name / f".lock-{partition_key}", None)
    if held is not None:
        os.close(held[0])  # closing the descriptor drops the flock


def staging_dir(artifacts_dir: Path, asset_name: str, partition_key: str, run_id: str) -> Path:
    """A fresh folder an asset fills before its IO manager renames it into place. The caller holds the partition's
    write lock, so no other run is writing here: what earlier runs left behind for the partition is removed."""
    parent = artifacts_dir / asset_name
    for stale in parent.glob(f".staging-{partition_key}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    path = parent / f".staging-{partition_key}-{run_id}"
    path.mkdir(parents=True)
    return path


def replace_dir(staging: Path, final: Path) -> None:
    """Move a filled staging folder to `final`, replacing what was there; readers see the old or the new, never half."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if not final.exists():
        os.rename(staging, final)
        return
    trash = final.parent / f".trash-{final.name}-{uuid.uuid4().hex[:12]}"
    os.rename(final, trash)
    os.rename(staging, final)
    shutil.rmtree(trash, ignore_errors=True)


def commit_new_dir(staging: Path, final: Path, what: str = "folder") -> None:
    """Rename a filled staging folder to `final`, which must not exist: what is committed is never overwritten."""
    if final.exists():
        raise FileExistsError(f"{final} exists: a {what} is never overwritten")
    final.parent.mkdir(parents=True, exist_ok=True)
    os.rename(staging, final)


def copy_dir(
    source: Path, final: Path, last: Optional[str] = None, what: str = "folder", extra: Optional[dict[str, str]] = None
) -> Path:
    """Copy `source` to a new folder `final` atomically: a hidden sibling, `extra` files written into it, the file
    named `last` copied last (a reader treats it as "complete"), then one rename."""
    if final.exists():
        raise FileExistsError(f"{final} exists: a {what} is never overwritten")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    try:
        shutil.copytree(source, tmp, ignore=shutil.ignore_patterns(last) if last else None)
        for name, text in (extra or {}).items():
            write_text(tmp / name, text)
        if last:
            shutil.copy2(source / last, tmp / last)
        commit_new_dir(tmp, final, what)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))
