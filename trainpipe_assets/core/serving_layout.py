"""TF Serving's model base path layout: `<base>/<version>/saved_model.pb`, integer versions; the highest serves
unless a `PINNED` file beside the versions names another (a rollback).

A version is what TF Serving reads as one: a folder under the base path named in decimal ASCII digits that fit an
int64 (`parse_version`), holding saved_model.pb. Anything else is not a version and is ignored, with one warning per
folder (not one per poll): a folder named `²` or `١` (digits to str.isdigit, not to TF Serving), a number past int64,
a leading zero (`07` would read as the folder `7`), and a symlink that leads out of the base path. The store, the
pusher and rollback all list versions here, so they agree."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Optional

from trainpipe_assets.core.storage import copy_dir, write_text

INT64_MAX = 2**63 - 1
_warned: set[tuple[str, str]] = set()  # (folder, why) already warned about: each once per process


def parse_version(text: str) -> Optional[int]:
    """A version folder's name (or a version path segment) as TF Serving reads it: decimal ASCII digits, no leading
    zero, at most int64; None for anything else (never a ValueError, never a 4301-digit int())."""
    if not isinstance(text, str) or not 0 < len(text) <= 19 or not text.isascii() or not text.isdigit():
        return None
    if len(text) > 1 and text[0] == "0":
        return None
    value = int(text)
    return value if value <= INT64_MAX else None


def _ignored(entry: Path, why: str) -> None:
    key = (str(entry), why)
    if key not in _warned:
        _warned.add(key)
        logging.getLogger(__name__).warning("%s ignored: %s", entry, why)


def version_folders(base: Path) -> dict[int, Path]:
    """The complete versions under `base` (with saved_model.pb), by number; what is not a version is skipped with one
    warning. Hidden entries (a push in progress: `.tmp-*`) and files (PINNED, ...) are not versions and pass
    silently; so does a version folder still without saved_model.pb."""
    try:
        entries = list(os.scandir(base))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    found, root = {}, None
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir():  # follows a symlink: a link to a folder is a folder
            continue
        path = Path(entry.path)
        version = parse_version(entry.name)
        if version is None:
            _ignored(path, "not a version folder (TF Serving's are decimal ASCII digits that fit an int64)")
            continue
        if entry.is_symlink():
            root = root or Path(base).resolve()
            target = path.resolve()
            if target != root and root not in target.parents:
                _ignored(path, f"a symlink to {target}, outside the base path {root}")
                continue
        if (path / "saved_model.pb").is_file():
            found[version] = path
    return dict(sorted(found.items()))


def list_versions(base: Path) -> list[int]:
    return list(version_folders(base))


PIN_FILE = "PINNED"


def read_pin(base: Path) -> int | None:
    pin = base / PIN_FILE
    if not pin.is_file():
        return None
    text = pin.read_text().strip()
    if parse_version(text) is None:
        raise ValueError(
            f"{pin} should hold a version number, holds {text[:50]!r}: fix it or run `trainpipe rollback --clear`"
        )
    return int(text)


def write_pin(base: Path, version: int) -> None:
    if version not in list_versions(base):
        raise ValueError(f"version {version} is not under {base} (versions: {list_versions(base)})")
    write_text(base / PIN_FILE, f"{version}\n")


def clear_pin(base: Path) -> None:
    (base / PIN_FILE).unlink(missing_ok=True)


def serving_version(base: Path) -> int | None:
    """What a server following this folder serves: the pinned version, else the highest."""
    return read_pin(base) or max(list_versions(base), default=None)


PUSH_RECORD = "PUSH.json"  # inside a version: which run pushed which model, written before the rename


def copy_saved_model(source: Path, base: Path, version: int, record: Optional[dict] = None) -> Path:
    """Copy a SavedModel to `<base>/<version>/` atomically, with its push record, saved_model.pb last (a server
    treats it as "complete"). The record lets a version whose push event was never written be recognised."""
    if parse_version(str(version)) is None:
        raise ValueError(f"version {version} is not one TF Serving reads (a positive int64)")
    extra = {PUSH_RECORD: json.dumps({**record, "version": version}, indent=2)} if record else None
    return copy_dir(source, base / str(version), last="saved_model.pb", what="serving version", extra=extra)


def read_push_record(base: Path, version: int) -> Optional[dict]:
    try:
        return json.loads((base / str(version) / PUSH_RECORD).read_text())
    except (OSError, ValueError):
        return None


def version_of_model(base: Path, source_model: str) -> Optional[int]:
    """The version already holding this trained model (pushed before, by any run), if still on disk."""
    for version in reversed(list_versions(base)):
        record = read_push_record(base, version)
        if record and record.get("source_model") == source_model:
            return version
    return None


def prune_versions(base: Path, keep: int, protected: set[int]) -> list[int]:
    """Delete all but the newest `keep` versions, never a protected one (the one serving); returns what went."""
    versions = list_versions(base)
    doomed = [v for v in versions[:-keep] if v not in protected] if keep < len(versions) else []
    for version in doomed:
        shutil.rmtree(base / str(version))
    return doomed
