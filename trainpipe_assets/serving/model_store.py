"""The versions a server holds: loaded and warmed up before they serve, swapped in one assignment, the old one kept
when a new one fails to load. Follows TF Serving's layout, the rollback pin and a labels file."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..serving_versions import list_versions, read_pin


@dataclass(frozen=True)
class LoadedVersion:
    version: int
    model: Any
    loaded_at: float


class ModelStore:
    def __init__(self, name: str, base: Path, labels_file: Optional[Path] = None):
        self.name, self.base, self.labels_file = name, Path(base), labels_file
        self._versions: dict[int, LoadedVersion] = {}
        self.errors: dict[int, str] = {}
        self._lock = threading.Lock()

    def _load(self, version: int) -> LoadedVersion:
        import tensorflow as tf

        model = tf.saved_model.load(str(self.base / str(version)))
        if "serving_default" not in model.signatures:
            raise ValueError(f"version {version} has no serving_default signature")
        return LoadedVersion(version, model, time.time())

    def refresh(self) -> None:
        """Load versions that appeared, drop those that are gone; a failed load is reported and skipped."""
        on_disk = set(list_versions(self.base))
        loaded = dict(self._versions)
        for version in sorted(on_disk - set(loaded) - set(self.errors)):
            try:
                loaded[version] = self._load(version)
            except Exception as e:  # a broken version must not take the server down
                self.errors[version] = f"{type(e).__name__}: {e}"
        for version in set(loaded) - on_disk:
            del loaded[version]
        with self._lock:
            self._versions = loaded  # one assignment: requests see the old dict or the new one

    def versions(self) -> dict[int, LoadedVersion]:
        return self._versions

    def labels(self) -> dict[str, int]:
        if self.labels_file is None or not self.labels_file.is_file():
            return {}
        return {k: int(v) for k, v in json.loads(self.labels_file.read_text()).items()}

    def serving(self) -> Optional[LoadedVersion]:
        """The rollback pin if it is loaded, else the highest loaded version."""
        versions = self._versions
        pin = read_pin(self.base)
        if pin in versions:
            return versions[pin]
        return versions[max(versions)] if versions else None

    def watch(self, poll_seconds: float) -> threading.Thread:
        def loop():
            while True:
                time.sleep(poll_seconds)
                self.refresh()

        thread = threading.Thread(target=loop, daemon=True, name="model-store-watch")
        thread.start()
        return thread
