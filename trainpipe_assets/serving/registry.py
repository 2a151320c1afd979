"""The models one server serves, by name: a ModelStore each, from --model-name/--model-base-path (one model, every
version) or from a model config file (several, each with its version policy and labels), and which version a request
names. REST and gRPC both resolve here, so they answer alike.

A watch thread loads and unloads versions every --poll-seconds and, with --model-config-file-poll-wait-seconds, rereads
the config file: a model added is loaded, one removed is unloaded (requests already holding its version finish), one
whose policy or labels changed follows them. A config file that became broken is logged once (the file and the parse
error), reported by /healthz as config_error, and the last good config stays in force."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Optional

from trainpipe_assets.serving.codec import ApiError
from trainpipe_assets.serving.model_config import parse_model_config, read_config_text
from trainpipe_assets.serving.model_store import LoadedVersion, ModelStore

log = logging.getLogger(__name__)


class ModelRegistry:
    def __init__(self, stores: list[ModelStore], config_file: Optional[Path] = None):
        self._stores = {s.name: s for s in stores}  # replaced in one assignment: requests see the old or the new
        self.config_file = config_file
        self.config_error: Optional[str] = None
        self._config_text: Optional[str] = None
        self.started = False  # every model of the starting config has been loaded (or has failed) once

    @classmethod
    def from_config_file(cls, path: Path) -> ModelRegistry:
        """The models of a config file; a ValueError names the file and what is wrong (the server must not start)."""
        text = read_config_text(Path(path))
        configs = parse_model_config(text, path)
        registry = cls([ModelStore(c.name, c.base_path, policy=c.policy, labels=c.labels) for c in configs])
        registry.config_file, registry._config_text = Path(path), text
        return registry

    def stores(self) -> dict[str, ModelStore]:
        return self._stores

    def get(self, name: str) -> ModelStore:
        store = self._stores.get(name)
        if store is None:
            raise ApiError(404, f"model {name!r} not found (serving {sorted(self._stores)})")
        return store

    def resolve(self, name: str, version: Optional[int] = None, label: Optional[str] = None) -> LoadedVersion:
        """The version a request names: a version number, a label, or (neither) the one serving. 404 for an unknown
        model, version or label; 503 while nothing is loaded or the pin (labels) were never read well."""
        store = self.get(name)
        if version is not None and label:
            raise ApiError(400, f"both a version ({version}) and a label ({label!r}) were given; name one")
        versions = store.versions()
        if label:
            problem = store.labels_problem()
            if problem:
                raise ApiError(503, f"labels cannot be resolved: {problem}")
            labels = store.labels()
            if label not in labels:
                raise ApiError(404, f"label {label!r} of {name!r} not found (labels: {sorted(labels)})")
            version = labels[label]
        elif version is None:
            serving = store.serving()
            if serving is None:
                problem = store.pin_problem()
                if problem:
                    raise ApiError(503, f"the rollback pin cannot be read: {problem}")
                raise ApiError(503, f"no version of {name!r} is loaded yet")
            return serving
        if version not in versions:
            if not versions:
                raise ApiError(503, f"no version of {name!r} is loaded yet")
            raise ApiError(404, f"version {version} of {name!r} not found (loaded: {sorted(versions)})")
        return versions[version]

    def status_versions(self, name: str, version: Optional[int] = None, label: Optional[str] = None) -> list:
        """The versions a status request lists: the one named, else every loaded version (whatever the pin, as TF
        Serving), newest first."""
        if version is not None or label:
            return [self.resolve(name, version, label)]
        store = self.get(name)
        versions = sorted(store.versions().values(), key=lambda v: -v.version)
        if not versions:
            raise ApiError(503, f"no version of {name!r} is loaded yet")
        return versions

    def health(self) -> tuple[bool, dict]:
        """(ready, /healthz body). Per model: status (ok; degraded when the pin or labels cannot be read, or the pin
        never was; loading before its first load; unavailable when that found nothing to load), the version the pin
        picks (serving_version) and any problem: versions that failed to load (errors), pin_error, labels_error.
        One model from --model-name: its fields at the top, ready while a version is loaded. From a config file:
        {"models": {name: fields}} and config_error; ready once every model of the starting config has been loaded
        (or failed) and some model has a version, so a model added or not yet pushed does not take the server out."""
        models = {}
        for name, store in self._stores.items():
            serving, versions = store.serving(), store.versions()
            pin_error, labels_error = store.pin_error, store.labels_error
            status = "ok" if serving and not (pin_error or labels_error) else "degraded"
            if not versions:
                status = "unavailable" if store.refreshed and self.config_file else "loading"
            body = {"status": status, "serving_version": serving and serving.version}
            if store.errors:  # versions that failed to load, e.g. for the infra validator to stop waiting
                body["errors"] = {str(v): e for v, e in dict(store.errors).items()}
            if pin_error:
                body["pin_error"] = pin_error
            if labels_error:
                body["labels_error"] = labels_error
            models[name] = body
        if self.config_file is None and len(models) == 1:
            return models[name]["status"] != "loading", models[name]
        ready = self.started and any(m["serving_version"] is not None for m in models.values())
        statuses = {m["status"] for m in models.values()}
        status = "loading" if not self.started else "ok" if statuses == {"ok"} and not self.config_error else "degraded"
        body = {"status": status, "models": models}
        if self.config_error:
            body["config_error"] = self.config_error
        return ready, body

    def refresh(self) -> None:
        for store in list(self._stores.values()):
            try:
                store.refresh()
            except Exception:  # e.g. the base path unreadable for a moment: keep watching
                log.exception("refreshing %s failed", store.base)

    def reload_config(self) -> None:
        """Reread the config file if it changed (or was broken); apply it, or keep the last good one and say why."""
        try:
            text = read_config_text(self.config_file)
        except ValueError as e:
            return self._config_failed(str(e))
        if text == self._config_text and self.config_error is None:
            return
        self._config_text = text
        try:
            configs = parse_model_config(text, self.config_file)
        except ValueError as e:
            return self._config_failed(str(e))
        stores = {}
        for config in configs:
            store = self._stores.get(config.name)
            if store is not None and store.base == config.base_path:
                store.configure(config.policy, config.labels)  # loaded versions are kept, not reloaded
            else:
                store = ModelStore(config.name, config.base_path, policy=config.policy, labels=config.labels)
            stores[config.name] = store
        added, removed = sorted(set(stores) - set(self._stores)), sorted(set(self._stores) - set(stores))
        self._stores, self.config_error = stores, None
        log.warning("%s reloaded: models %s (added %s, removed %s)", self.config_file, sorted(stores), added, removed)

    def _config_failed(self, error: str) -> None:
        if error != self.config_error:
            log.warning("%s (the last good model config stays in force)", error)
        self.config_error = error

    def start(self, poll_seconds: float, config_poll_seconds: float = 0.0) -> threading.Thread:
        """Load every model now (on the thread), then keep watching; config_poll_seconds 0: read the file once."""

        def loop():
            self.refresh()
            self.started = True
            next_config = time.monotonic() + config_poll_seconds
            next_refresh = time.monotonic() + poll_seconds
            while True:
                now = time.monotonic()
                wake = min(next_refresh, next_config) if config_poll_seconds > 0 and self.config_file else next_refresh
                time.sleep(max(0.0, wake - now))
                if config_poll_seconds > 0 and self.config_file and time.monotonic() >= next_config:
                    next_config = time.monotonic() + config_poll_seconds
                    try:
                        self.reload_config()
                    except Exception:
                        log.exception("reloading %s failed", self.config_file)
                    self.refresh()  # a model just added is loaded now, not a poll later
                    next_refresh = time.monotonic() + poll_seconds
                if time.monotonic() >= next_refresh:
                    next_refresh = time.monotonic() + poll_seconds
                    self.refresh()

        thread = threading.Thread(target=loop, daemon=True, name="model-registry-watch")
        thread.start()
        return thread
