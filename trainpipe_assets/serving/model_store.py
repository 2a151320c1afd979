"""The versions a server holds: loaded and warmed up before they serve, swapped in one assignment, the old one kept
when a new one fails to load. Follows TF Serving's layout, the rollback pin and a labels file."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from trainpipe_assets.core.serving_layout import list_versions, read_pin


@dataclass(frozen=True, eq=False)
class LoadedVersion:
    version: int
    model: Any
    loaded_at: float
    methods: dict = field(default_factory=dict)  # signature name -> method_name ("tensorflow/serving/classify", ...)


def signature_methods(path: Path) -> dict[str, str]:
    """Each signature's method_name, which tf.saved_model.load does not expose: read from saved_model.pb."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    return {k: v.method_name for graph in proto.meta_graphs for k, v in graph.signature_def.items()}


def warm_up(model: Any) -> None:
    """Call every signature once on an empty batch, so the first request does not pay for graph optimisation.
    Best effort: a signature that rejects an empty batch is simply left cold."""
    import tensorflow as tf

    for signature in model.signatures.values():
        try:
            specs = signature.structured_input_signature[1]
            signature(**{k: tf.zeros([0] + [d or 1 for d in s.shape[1:]], s.dtype) for k, s in specs.items()})
        except Exception:
            pass


RETRY_FAILED_SECONDS = 30.0


class ModelStore:
    def __init__(self, name: str, base: Path, labels_file: Optional[Path] = None):
        self.name, self.base, self.labels_file = name, Path(base), labels_file
        self._versions: dict[int, LoadedVersion] = {}
        self.errors: dict[int, str] = {}
        self._failed_at: dict[int, float] = {}
        self._lock = threading.Lock()

    def _load(self, version: int) -> LoadedVersion:
        import tensorflow as tf

        path = self.base / str(version)
        model = tf.saved_model.load(str(path))
        if "serving_default" not in model.signatures:
            raise ValueError(f"version {version} has no serving_default signature")
        warm_up(model)
        return LoadedVersion(version, model, time.time(), signature_methods(path))

    def refresh(self, retry_failed_after: float = RETRY_FAILED_SECONDS) -> None:
        """Load versions that appeared, drop those that are gone; a failed load is reported, skipped, and retried
        after `retry_failed_after` seconds (it may have failed for want of memory)."""
        on_disk = set(list_versions(self.base))
        loaded = dict(self._versions)
        now = time.time()
        errors = {
            v: e
            for v, e in self.errors.items()
            if v in on_disk and now - self._failed_at.get(v, now) < retry_failed_after
        }
        for version in sorted(on_disk - set(loaded) - set(errors)):
            try:
                loaded[version] = self._load(version)
            except Exception as e:  # a broken version must not take the server down
                errors[version] = f"{type(e).__name__}: {e}"
                self._failed_at[version] = now
        for version in set(loaded) - on_disk:
            del loaded[version]
        with self._lock:
            self._versions = loaded  # one assignment: requests see the old dict or the new one
            self.errors = errors  # the same for the errors /healthz reports

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
                try:
                    self.refresh()
                except Exception:  # e.g. the base path unreadable for a moment: keep watching
                    logging.getLogger(__name__).exception("refreshing %s failed", self.base)

        thread = threading.Thread(target=loop, daemon=True, name="model-store-watch")
        thread.start()
        return thread
