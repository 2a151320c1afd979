"""Traffic capture (SageMaker's data capture, TF Serving's request logging): a sample of the requests a server
answers, with their responses, as JSON lines in daily files `<dir>/<model>/<YYYY-MM-DD>.<pid>-<token>-<n>.jsonl`.

`Capture.record` runs on the event loop: it samples, stamps the time and puts the request on a bounded queue, never
blocking and never touching a file; when the queue is full the request is dropped and counted (`dropped`). A writer
thread appends the lines to the open day's file, `<day>.<pid>-<token>-<n>.jsonl.partial`, which it holds under an
exclusive flock, and renames it to `<day>.<pid>-<token>-<n>.jsonl` (fsynced first) when the day is over or on
`close()`: readers only ever read closed files, which are complete. The token is new for every Capture and n for every
file it opens, so server processes sharing a folder, and a restarted server with the same pid (pid 1 in a container),
never write or rename onto each other's files. A server killed mid-day leaves its `.partial` unlocked: the next
Capture on the folder closes it (its last line cut if the kill tore it), and `read_day` reads it too, so no captured
line is lost.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import logging
import os
import queue
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

from trainpipe_assets.serving.capture_files import _DayFile, read_day, recover  # noqa: F401 (read_day: for readers)

REQUEST_ID_HEADER = "x-request-id"
MAX_REQUEST_ID_CHARS = 256  # a longer x-request-id is refused (400 / INVALID_ARGUMENT), never echoed or captured
BATCH_LINES = 1000  # lines written per write() call at most
GATHER_SECONDS = 0.1  # after a write of fewer lines, the writer waits this long for more (the queue holds them)
log = logging.getLogger("trainpipe.capture")
_STOP = object()
_encode_string = json.encoder.encode_basestring_ascii


def new_request_id() -> str:
    return uuid.uuid4().hex


def checked_request_id(sent: Optional[str]) -> Optional[str]:
    """A client's x-request-id as it is, or an ApiError (400) if it is longer than MAX_REQUEST_ID_CHARS or holds
    anything but printable ASCII: it is echoed in a header and written into the capture."""
    if sent is not None and (len(sent) > MAX_REQUEST_ID_CHARS or not sent.isascii() or not sent.isprintable()):
        from trainpipe_assets.serving.codec import ApiError

        raise ApiError(
            400,
            f"{REQUEST_ID_HEADER} must be at most {MAX_REQUEST_ID_CHARS} printable ASCII characters ({len(sent)} sent)",
        )
    return sent


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class RawJSON:
    """A request or response already encoded as JSON text (the body as received, the answer as sent), held by
    reference (no copy) and written into the line as it is, so the request path never pays for encoding it twice."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data


def _as_json_bytes(value: Any) -> bytes:
    """One request or response as JSON text (UTF-8), on the writer thread: raw JSON as it is (unless it spans lines),
    a protobuf message (gRPC) as TF Serving's JSON with proto field names, anything else through json."""
    if isinstance(value, RawJSON):
        data = bytes(value.data)
        if not data.startswith(_BOM) and b"\n" not in data and b"\r" not in data and _utf8(data):
            return data
        # pretty-printed, or in another encoding the server reads as json.loads does (a UTF-8 byte-order mark,
        # UTF-16 or -32): parsed as the server parsed it and written again, as one line of ASCII JSON
        value = json.loads(data)
    elif hasattr(value, "DESCRIPTOR"):
        from google.protobuf import json_format

        value = json_format.MessageToDict(value, preserving_proto_field_name=True)
    return json.dumps(value, default=_jsonable, separators=(",", ":")).encode()


_BOM = b"\xef\xbb\xbf"


def _utf8(data: bytes) -> bool:
    """Whether json.loads reads `data` as UTF-8 and it is valid UTF-8 (json reads lone surrogates that it is not)."""
    if json.detect_encoding(data) != "utf-8":
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _jsonable(value: Any) -> Any:
    """What json cannot write itself: bytes as TF Serving's {"b64": ...}, numpy values as numbers and lists."""
    if isinstance(value, (bytes, bytearray)):
        return {"b64": base64.b64encode(value).decode()}
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _string(value: str) -> str:
    """A str as a JSON string, as json.dumps writes it (ASCII, escaped)."""
    return _encode_string(value) if isinstance(value, str) else json.dumps(value)


def _safe_model_name(model: str) -> bool:
    return bool(model) and model not in (".", "..") and "/" not in model and "\0" not in model


class Capture:
    """Samples requests at `sampling_rate` (0..1) into daily JSON-lines files under `directory`, one folder per
    model; `clock`, `rng` and `poll_seconds` (how often an idle writer checks for a day's end) are for tests."""

    def __init__(
        self,
        directory: Path,
        sampling_rate: float,
        max_queue: int = 10000,
        *,
        clock: Callable[[], dt.datetime] = utc_now,
        rng: Optional[random.Random] = None,
        poll_seconds: float = 1.0,
        file_mode: int = 0o600,
    ):
        if not 0.0 <= sampling_rate <= 1.0:
            raise ValueError(f"sampling rate must be between 0 and 1, is {sampling_rate}")
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, is {max_queue}")
        self.directory, self.sampling_rate = Path(directory), sampling_rate
        self.written = 0
        self._full = 0  # dropped by record() (event loop): the queue was full, or the capture closed
        self._failed = 0  # dropped by the writer: not JSON, or the disk refused
        self.write_failed = 0  # of those, the ones the disk refused (full, or over a size limit)
        self.error: Optional[str] = None  # why the last write lost lines; None once a write keeps them all again
        self.file_mode = file_mode
        self._clock, self._rng, self._poll = clock, rng or random.Random(), poll_seconds
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._token, self._files = uuid.uuid4().hex[:8], itertools.count(1)
        self._open: dict[tuple[str, str], _DayFile] = {}
        self._closed = False
        self._logged_drops = 0
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        return self._full + self._failed

    def health(self) -> dict:
        """For /healthz: `capture` "ok", or "degraded" while writes lose lines (with the error)."""
        error = self.error
        facts = {"capture": "degraded" if error else "ok", "capture_dropped": self.dropped}
        return {**facts, "capture_error": error} if error else facts

    def sampled(self) -> bool:
        """Whether the next request is to be recorded (a draw at the sampling rate): asked before anything is copied."""
        return self.sampling_rate >= 1.0 or self._rng.random() < self.sampling_rate

    def record(
        self,
        model: str,
        version: int,
        signature: str,
        method: str,
        request: Any,
        response: Any,
        request_id: str,
        sample: bool = True,
    ) -> None:
        """Queue one answered request (sampled, unless `sample` is False: the caller asked sampled() already); never
        blocks, never does I/O. `request` and `response` (JSON-able values, RawJSON, or protobuf messages) must not
        be changed afterwards: they are encoded later, on the writer thread."""
        if sample and not self.sampled():
            return
        if self._closed:
            self._full += 1
            return
        entry = (self._clock(), model, version, signature, method, request, response, request_id)
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self._full += 1

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, close (rename) the open files and stop the writer thread."""
        if self._closed:
            return
        self._closed = True
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.error("capture writer is stuck: %d queued requests are lost", self._queue.qsize())
            return
        self._thread.join(timeout)

    # The writer thread.

    def _run(self) -> None:
        try:
            for path in recover(self.directory):
                log.warning("capture: closed %s, left open by a server that stopped", path)
        except OSError as e:
            log.error("capture: cannot recover files under %s: %s", self.directory, e)
        stop = False
        while not stop:
            batch = []
            try:
                batch.append(self._queue.get(timeout=self._poll))
                while len(batch) < BATCH_LINES:
                    batch.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            stop = _STOP in batch
            entries = [e for e in batch if e is not _STOP]
            if entries:
                self._write(entries)
                if not stop and len(batch) < BATCH_LINES:
                    time.sleep(GATHER_SECONDS)  # let lines gather: fewer wake-ups and writes taking the GIL
            self._rotate(None if stop else self._clock().astimezone(dt.timezone.utc).date().isoformat())
            self._report_drops()

    def _write(self, entries: list[tuple]) -> None:
        groups: dict[tuple[str, str], list[bytes]] = {}
        stamps: dict = {}  # the lines of one write share a few distinct times: each is formatted once
        for when, model, version, signature, method, request, response, request_id in entries:
            if not _safe_model_name(model):
                self._failed += 1
                continue
            stamp = stamps.get(when)
            if stamp is None:
                utc = when.astimezone(dt.timezone.utc)
                iso = utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")
                stamp = stamps[when] = (utc.date().isoformat(), iso)
            day, iso = stamp
            try:
                head = (
                    f'{{"model":{_string(model)},"version":{json.dumps(version)},"signature":{_string(signature)},'
                    f'"method":{_string(method)},"time":"{iso}","request_id":{json.dumps(request_id)},"request":'
                )
                text = b"".join(
                    (head.encode(), _as_json_bytes(request), b',"response":', _as_json_bytes(response), b"}\n")
                )
            except (TypeError, ValueError) as e:  # UnicodeDecodeError is a ValueError
                log.warning("capture: request %s not written: %s", request_id, e)
                self._failed += 1
                continue
            groups.setdefault((model, day), []).append(text)
        errors = []
        for (model, day), lines in groups.items():
            try:
                if (model, day) not in self._open:
                    name = f"{os.getpid()}-{self._token}-{next(self._files)}"  # never a name used before
                    self._open[(model, day)] = _DayFile(self.directory / model, day, name, self.file_mode)
                day_file = self._open[(model, day)]
                written = day_file.write(lines)
                error = day_file.error
            except OSError as e:
                written, error = 0, e
            self.written += written
            if written < len(lines):
                self._failed += len(lines) - written
                self.write_failed += len(lines) - written
                errors.append(f"{len(lines) - written} requests of {model} on {day} not written: {error}")
        if errors and self.error is None:  # logged when writes start failing, not for every batch
            log.error("capture: %s", errors[0])
        elif self.error and groups and not errors:
            log.warning("capture: writing again (%d requests dropped so far)", self.dropped)
        self.error = errors[0] if errors else None if groups else self.error

    def _rotate(self, today: Optional[str]) -> None:
        """Close the files of days before `today` (every file when None)."""
        for key, day_file in list(self._open.items()):
            if today is None or day_file.day < today:
                del self._open[key]
                try:
                    day_file.close()
                except OSError as e:
                    log.error("capture: cannot close %s: %s (it stays a .partial file)", day_file.path, e)

    def _report_drops(self) -> None:
        if self.dropped != self._logged_drops:
            log.warning("capture: %d requests dropped so far (queue full or not writable)", self.dropped)
            self._logged_drops = self.dropped
