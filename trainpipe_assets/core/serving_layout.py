"""TF Serving's model base path layout: `<base>/<version>/saved_model.pb`, integer versions; the highest serves
unless a `PINNED` file beside the versions names another (a rollback)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Optional

from trainpipe_assets.core.storage import copy_dir, write_text


def list_versions(base: Path) -> list[int]:
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file())


PIN_FILE = "PINNED"


def read_pin(base: Path) -> int | None:
    pin = base / PIN_FILE
    if not pin.is_file():
        return None
    text = pin.read_text().strip()
    if not text.isdigit():
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
