"""The versions a server holds: loaded and warmed up before they serve, swapped in one assignment, the old one kept
when a new one fails to load. Follows TF Serving's layout, the rollback pin, a labels file (or labels from the model
config file) and a version policy (which versions on disk to load: all, the latest N or specific ones); a version
that is pinned or carries a label is loaded too, whatever the policy, so rollback and labels keep working with only
what serves in memory. A version unloaded releases its memory: the store drops its last reference and collects the
reference cycles TensorFlow's loaded objects form, then hands the freed heap back to the system (release_memory).

The pin and the labels file are read by refresh() (the watch thread), never by a request: requests read the values
kept in memory. A file that cannot be read or parsed is kept as an error (pin_error, labels_error, for /healthz),
never raised into a request, and the last good value read from it stays in force -- so a garbled PINNED file neither
undoes a rollback (serving the highest version instead) nor stops a running server. Only when no good value has been
read since the server started is there nothing to fall back on: see pin_problem() and labels_problem()."""

from __future__ import annotations

import ctypes
import gc
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from trainpipe_assets.core.serving_layout import PIN_FILE, parse_version, read_pin, version_folders
from trainpipe_assets.serving.model_config import ALL_VERSIONS, VersionPolicy


@dataclass(frozen=True, eq=False)
class LoadedVersion:
    version: int
    model: Any
    loaded_at: float
    methods: dict = field(default_factory=dict)  # signature name -> method_name ("tensorflow/serving/classify", ...)
    # signature name -> the SignatureDef proto from saved_model.pb (tensor names, DataType enums), for the metadata
    signature_defs: dict = field(default_factory=dict)


def read_signature_defs(path: Path) -> dict:
    """Every SignatureDef of saved_model.pb, as TF Serving's metadata shows them (with __saved_model_init_op): the
    method_name and real tensor names, which tf.saved_model.load does not expose."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    return {k: v for graph in proto.meta_graphs for k, v in graph.signature_def.items()}


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


def read_labels(path: Path) -> dict[str, int]:
    """A labels file, JSON {"stable": 1, "canary": 2}; a ValueError names the file and what is wrong in it. A file
    that does not exist has no labels (it may be written later)."""
    if not path.exists():
        return {}
    try:
        labels = json.loads(path.read_text())
    except OSError as e:
        raise ValueError(f"{path}: cannot be read: {e.strerror or e}") from None
    except ValueError as e:  # bad JSON or not UTF-8
        raise ValueError(f"{path}: not JSON {{label: version}}: {e}") from None
    if not isinstance(labels, dict):
        raise ValueError(f"{path}: must be a JSON object {{label: version}}, is {type(labels).__name__}")
    for label, version in labels.items():
        number = version if isinstance(version, int) and not isinstance(version, bool) else None
        number = parse_version(str(number) if number is not None else version)
        if number is None:
            raise ValueError(f"{path}: label {label!r} must name a version number, names {json.dumps(version)[:50]}")
        labels[label] = number
    return labels


def release_memory() -> None:
    """Collect the reference cycles an unloaded version leaves (a loaded SavedModel's objects and functions refer
    to each other, so dropping the last reference does not free them) and give the freed heap back to the system:
    glibc keeps freed memory in its arenas, so resident memory would keep each unloaded version's high-water mark."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the memory is free for the process to reuse, just not returned
        pass


class ModelStore:
    """`policy` decides which versions on disk are loaded (all of them by default here; `trainpipe serve` passes
    --model-version-policy, latest 1 unless told); a version the rollback pin or a label names is loaded whatever the
    policy, so a pin or label is never silently ignored. `labels` (from a model config file) stand in
    for a labels file."""

    def __init__(
        self,
        name: str,
        base: Path,
        labels_file: Optional[Path] = None,
        policy: VersionPolicy = ALL_VERSIONS,
        labels: Optional[dict[str, int]] = None,
    ):
        self.name, self.base, self.labels_file = name, Path(base), labels_file
        self.policy, self.config_labels = policy, labels
        self._versions: dict[int, LoadedVersion] = {}
        self.errors: dict[int, str] = {}
        self.refreshed = False  # refresh() has run once: what can be loaded is (a version, or errors)
        self._failed_at: dict[int, float] = {}
        self._collect = 0  # refreshes left that release memory: set when versions are unloaded
        self._lock = threading.Lock()
        # The pin and labels as last read well (None: not yet), and what is wrong with the files now (None: nothing).
        self._pin: tuple[Optional[int]] | None = None
        self._labels: Optional[dict[str, int]] = None
        self.pin_error: Optional[str] = None
        self.labels_error: Optional[str] = None

    def _load(self, version: int) -> LoadedVersion:
        import tensorflow as tf

        path = self.base / str(version)  # the folder's name is str(version): parse_version refuses leading zeros
        model = tf.saved_model.load(str(path))
        if "serving_default" not in model.signatures:
            raise ValueError(f"version {version} has no serving_default signature")
        warm_up(model)
        defs = read_signature_defs(path)
        return LoadedVersion(version, model, time.time(), {k: v.method_name for k, v in defs.items()}, defs)

    def configure(self, policy: VersionPolicy, labels: Optional[dict[str, int]]) -> None:
        """A new policy and labels (the model config file changed); the next refresh() loads and unloads to match."""
        self.policy, self.config_labels = policy, labels
        if labels is not None:
            self._labels = dict(labels)

    def refresh(self, retry_failed_after: float = RETRY_FAILED_SECONDS) -> None:
        """Load the versions the policy (and pin) want, drop the others and those gone from disk; a failed load is
        reported, skipped, and retried after `retry_failed_after` seconds (it may have failed for want of memory).
        A version that fails counts as absent for the policy, so `latest 1` keeps the version before it serving."""
        self.read_files()
        on_disk = set(version_folders(self.base))
        loaded = dict(self._versions)
        now = time.time()
        errors = {
            v: e
            for v, e in self.errors.items()
            if v in on_disk and now - self._failed_at.get(v, now) < retry_failed_after
        }
        self._failed_at = {v: t for v, t in self._failed_at.items() if v in errors}
        while True:  # each pass loads or fails at least one version, so this ends
            wanted = self.policy.select(on_disk - set(errors)) | (self.kept() & on_disk)
            missing = sorted(wanted - set(loaded) - set(errors))
            if not missing:
                break
            for version in missing:
                try:
                    loaded[version] = self._load(version)
                except Exception as e:  # a broken version must not take the server down
                    errors[version] = f"{type(e).__name__}: {e}"
                    self._failed_at[version] = now
                self.read_files()  # a load may take minutes: do not leave a rollback waiting for all of them
        unloaded = set(loaded) - wanted
        for version in unloaded:
            del loaded[version]
        with self._lock:
            self._versions = loaded  # one assignment: requests see the old dict or the new one
            self.errors = errors  # the same for the errors /healthz reports
        self.refreshed = True
        if unloaded:  # now, and at the next refresh, once requests that still held the version are done
            self._collect = 2
        if self._collect:
            self._collect -= 1
            release_memory()

    def kept(self) -> set[int]:
        """Versions loaded whatever the policy: the one pinned and those a label names (as last read well)."""
        pinned = {self._pin[0]} if self._pin and self._pin[0] is not None else set()
        return pinned | set((self._labels or {}).values())

    def versions(self) -> dict[int, LoadedVersion]:
        return self._versions

    def read_files(self) -> None:
        """Reread the pin and the labels file; what cannot be read is kept as an error, the last good value stays.
        A new error is logged once (one line, no traceback), not at every poll."""
        pin_error, labels_error = None, None
        try:
            self._pin = (read_pin(self.base),)
        except (OSError, ValueError) as e:  # read_pin's ValueError names the file and the fix; say them for others
            pin = self.base / PIN_FILE
            pin_error = str(e) if str(pin) in str(e) else f"{pin}: {e}: fix it or run `trainpipe rollback --clear`"
        try:
            if self.config_labels is not None:
                self._labels = dict(self.config_labels)
            else:
                self._labels = {} if self.labels_file is None else read_labels(self.labels_file)
        except ValueError as e:
            labels_error = str(e)
        for error, before in ((pin_error, self.pin_error), (labels_error, self.labels_error)):
            if error and error != before:
                logging.getLogger(__name__).warning("%s (the last good value stays in force, if any)", error)
        self.pin_error, self.labels_error = pin_error, labels_error

    def labels(self) -> dict[str, int]:
        """The labels last read well; {} if none has been (see labels_problem)."""
        return self._labels or {}

    def labels_problem(self) -> Optional[str]:
        """Why label routes cannot answer: the labels file is broken and was never read well since the start."""
        return self.labels_error if self._labels is None else None

    def pin_problem(self) -> Optional[str]:
        """Why routes that follow the pin cannot answer: PINNED is broken and was never read well since the start."""
        return self.pin_error if self._pin is None else None

    def serving(self) -> Optional[LoadedVersion]:
        """The version pinned (as last read well) if it is loaded, else the highest loaded version; None if nothing
        is loaded or the pin has never been read well (pin_problem says why)."""
        versions, pin = self._versions, self._pin
        if pin is None and self.pin_error is not None:
            return None
        if pin is not None and pin[0] in versions:
            return versions[pin[0]]
        return versions[max(versions)] if versions else None
