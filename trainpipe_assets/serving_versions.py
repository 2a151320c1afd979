"""TF Serving's model base path layout: `<base>/<version>/saved_model.pb`, integer versions; the highest serves
unless a `PINNED` file beside the versions names another (a rollback)."""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


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
        raise ValueError(f"{pin} should hold a version number, holds {text[:50]!r}: fix it or run `trainpipe rollback --clear`")
    return int(text)


def write_pin(base: Path, version: int) -> None:
    from .atomic import write_text

    if version not in list_versions(base):
        raise ValueError(f"version {version} is not under {base} (versions: {list_versions(base)})")
    write_text(base / PIN_FILE, f"{version}\n")


def clear_pin(base: Path) -> None:
    (base / PIN_FILE).unlink(missing_ok=True)


def serving_version(base: Path) -> int | None:
    """What a server following this folder serves: the pinned version, else the highest."""
    return read_pin(base) or max(list_versions(base), default=None)


def copy_saved_model(source: Path, base: Path, version: int) -> Path:
    """Copy a SavedModel to `<base>/<version>/` atomically: a hidden temp folder, saved_model.pb last, one rename."""
    final = base / str(version)
    if final.exists():
        raise FileExistsError(f"serving version {final} exists")
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".tmp-{version}-{uuid.uuid4().hex[:8]}"
    try:
        shutil.copytree(source, tmp, ignore=shutil.ignore_patterns("saved_model.pb"))
        shutil.copy2(source / "saved_model.pb", tmp / "saved_model.pb")  # a server treats this file as "complete"
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def prune_versions(base: Path, keep: int, protected: set[int]) -> list[int]:
    """Delete all but the newest `keep` versions, never a protected one (the one serving); returns what went."""
    versions = list_versions(base)
    doomed = [v for v in versions[:-keep] if v not in protected] if keep < len(versions) else []
    for version in doomed:
        shutil.rmtree(base / str(version))
    return doomed
