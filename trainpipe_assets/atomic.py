"""The one way trainpipe writes: into a temporary sibling, then a rename, so a crash never leaves half an artifact."""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


def staging_sibling(final: Path) -> Path:
    """A new empty folder next to `final` (same filesystem, so the rename is atomic)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    path = final.parent / f".staging-{final.name}-{uuid.uuid4().hex[:12]}"
    path.mkdir()
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


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))
