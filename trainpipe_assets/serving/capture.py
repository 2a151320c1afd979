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
BATCH_LINES = 1000  # lines written per write() call at most
GATHER_SECONDS = 0.1  # after a write of fewer lines, the writer waits this long for more (the queue holds them)
log = logging.getLogger("trainpipe.capture")
_STOP = object()
_encode_string = json.encoder.encode_basestring_ascii


def new_request_id() -> str:
    return uuid.uuid4().hex


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
        data.decode("utf-8")  # a body json read in another encoding would garble the line: dropped instead
        if b"\n" not in data and b"\r" not in data:
            return data
        value = json.loads(data)  # pretty-printed: one line per request, so encode it again
    elif hasattr(value, "DESCRIPTOR"):
        from google.protobuf import json_format

        value = json_format.MessageToDict(value, preserving_proto_field_name=True)
    return json.dumps(value, default=_jsonable, separators=(",", ":")).encode()


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
    ):
        if not 0.0 <= sampling_rate <= 1.0:
            raise ValueError(f"sampling rate must be between 0 and 1, is {sampling_rate}")
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, is {max_queue}")
        self.directory, self.sampling_rate = Path(directory), sampling_rate
        self.written = 0
        self._full = 0  # dropped by record() (event loop): the queue was full, or the capture closed
        self._failed = 0  # dropped by the writer: not JSON, or the disk refused
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
        for (model, day), lines in groups.items():
            try:
                if (model, day) not in self._open:
                    name = f"{os.getpid()}-{self._token}-{next(self._files)}"  # never a name used before
                    self._open[(model, day)] = _DayFile(self.directory / model, day, name)
                self._open[(model, day)].write(b"".join(lines))
                self.written += len(lines)
            except OSError as e:
                log.error("capture: %d requests of %s on %s not written: %s", len(lines), model, day, e)
                self._failed += len(lines)

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
