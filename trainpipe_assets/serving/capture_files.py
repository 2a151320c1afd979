"""The capture's files: the open day's `.partial` file a writer holds under an exclusive flock (_DayFile), the
recovery of files a killed server left open (recover), and the reading of a day's files, closed and orphaned
(read_day). The format and its guarantees are described in capture.py."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator, Optional

PARTIAL = ".partial"
log = logging.getLogger("trainpipe.capture")


def _try_lock(handle) -> bool:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _cut_torn_tail(handle) -> int:
    """Truncate an open file after its last newline (a line a kill tore in half was never captured); its new size."""
    size = handle.seek(0, os.SEEK_END)
    end = size
    while end > 0:
        start = max(0, end - 65536)
        handle.seek(start)
        chunk = handle.read(end - start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            end = start + newline + 1
            break
        end = start
    if end != size:
        handle.truncate(end)
    return end


def orphaned(partial: Path) -> Optional[Any]:
    """The partial file opened and locked when no live writer holds it (its writer died), else None."""
    try:
        handle = open(partial, "r+b")
    except OSError:
        return None
    if _try_lock(handle):
        return handle
    handle.close()
    return None


def recover(directory: Path) -> list[Path]:
    """Close every partial file under `directory` that no live writer holds: cut a torn last line, rename it to its
    closed name (an empty one is removed). Returns the files closed."""
    closed = []
    for partial in sorted(Path(directory).glob(f"*/*.jsonl{PARTIAL}")):
        handle = orphaned(partial)
        if handle is None:
            continue
        with handle:
            try:
                if _cut_torn_tail(handle) == 0:
                    partial.unlink()
                    continue
                final = partial.with_name(partial.name[: -len(PARTIAL)])
                os.rename(partial, final)
                closed.append(final)
            except FileNotFoundError:  # another process recovered it first
                continue
    return closed


def day_files(directory: Path, model: str, day: str) -> tuple[list[Path], list[Path]]:
    """(the day's closed files, its partial files) under `<directory>/<model>/`. Partial files are listed first, so
    one closed between the two listings is among the closed ones, and left out of the partial ones."""
    folder = Path(directory) / model
    partial = sorted(folder.glob(f"{day}.*jsonl{PARTIAL}"))
    closed = sorted(p for p in folder.glob(f"{day}.*jsonl") if p.is_file())
    names = {p.name for p in closed}
    return closed, [p for p in partial if p.name[: -len(PARTIAL)] not in names]


def _lines(data: bytes, where: str, bad: list[str]) -> Iterator[dict]:
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as e:
            bad.append(f"{where}:{number}: {e}")
            continue
        if isinstance(entry, dict):
            yield entry
        else:
            bad.append(f"{where}:{number}: not a JSON object")


def read_day(directory: Path, model: str, day: str) -> tuple[list[dict], dict]:
    """Every captured line of `model` on `day`: all closed files (every server process's), plus the complete lines of
    partial files whose writer is gone. Files a live server is still writing are left out and named: read a day once
    it is over."""
    closed, partials = day_files(directory, model, day)
    entries: list[dict] = []
    bad: list[str] = []
    still_open, orphans = [], []
    for path in closed:
        entries.extend(_lines(path.read_bytes(), path.name, bad))
    for path in partials:
        handle = orphaned(path)
        if handle is None:
            if path.exists():
                still_open.append(path.name)
            continue
        with handle:
            handle.seek(0)
            data = handle.read()
        orphans.append(path.name)
        entries.extend(_lines(data[: data.rfind(b"\n") + 1], path.name, bad))
    facts = {
        "files": [p.name for p in closed],
        "orphaned_files": orphans,
        "open_files": still_open,
        "bad_lines": bad,
    }
    return entries, facts


def folder_mode(file_mode: int) -> int:
    """A capture folder's mode for its files' mode: x wherever r (0o600 -> 0o700, 0o640 -> 0o750)."""
    return file_mode | ((file_mode & 0o444) >> 2)


class _DayFile:
    """The open day's `.partial` file, locked, written only in whole lines: a line that does not fit (a full disk, a
    file size limit) is cut off again, so the file always ends at a line boundary. `mode`: the file's permissions
    (its folder gets folder_mode(mode)); both are further narrowed by the umask."""

    def __init__(self, folder: Path, day: str, name: str, mode: int = 0o600):
        folder.parent.mkdir(parents=True, exist_ok=True, mode=folder_mode(mode))
        folder.mkdir(exist_ok=True, mode=folder_mode(mode))
        self.day, self.size, self.error = day, 0, None
        self.path = folder / f"{day}.{name}.jsonl{PARTIAL}"
        # Locked before it has its name, so no other process's recovery ever takes it for a dead writer's file.
        creating = folder / f".{self.path.name}.creating"
        fd = os.open(creating, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        self.handle = os.fdopen(fd, "ab", buffering=0)
        if not _try_lock(self.handle):  # a name of its own: only a bug could make this happen
            self.handle.close()
            raise OSError(f"{creating} is locked by another writer")
        os.rename(creating, self.path)

    def write(self, lines: list[bytes]) -> int:
        """Append whole lines (all in one write, else line by line when that fails); returns how many were written.
        `error` is the last write's error (None once everything fitted)."""
        self.error = None
        if self._append(b"".join(lines)):
            return len(lines)
        written = sum(self._append(line) for line in lines)
        if written == len(lines):
            self.error = None
        return written

    def _append(self, data: bytes) -> bool:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.handle.fileno(), view) :]
        except OSError as e:
            self.error = e
            os.ftruncate(self.handle.fileno(), self.size)  # the cut line goes: the file ends where it did
            return False
        self.size += len(data)
        return True

    def close(self) -> Path:
        """fsync, rename to the closed name while still holding the lock, then release it."""
        final = self.path.with_name(self.path.name[: -len(PARTIAL)])
        try:
            os.fsync(self.handle.fileno())
            os.rename(self.path, final)
        finally:
            self.handle.close()
        return final
