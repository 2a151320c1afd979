import builtins
import datetime as dt
import json
import os
import random
import threading

import pytest

from trainpipe_assets.serving import capture as capture_module
from trainpipe_assets.serving.capture import REQUEST_ID_HEADER, Capture, new_request_id, read_day, recover

DAY = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.timezone.utc)


class Clock:
    def __init__(self, now: dt.datetime):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def record(capture: Capture, n: int = 1, model: str = "m", version: int = 1, start: int = 0) -> None:
    for i in range(start, start + n):
        capture.record(model, version, "serving_default", "predict", {"instances": [i]}, {"predictions": [i]}, f"r{i}")


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_request_ids_are_unique_and_the_header_is_tf_servings():
    assert REQUEST_ID_HEADER == "x-request-id"
    ids = {new_request_id() for _ in range(100)}
    assert len(ids) == 100 and all(isinstance(i, str) and i for i in ids)


def test_close_writes_every_line_to_a_closed_daily_file(tmp_path):
    capture = Capture(tmp_path, 1.0, clock=Clock(DAY))
    record(capture, 5)
    capture.close()
    [path] = (tmp_path / "m").iterdir()
    assert path.name.startswith(f"2024-03-01.{os.getpid()}-") and path.name.endswith(".jsonl")
    found = lines(path)
    assert [e["request_id"] for e in found] == [f"r{i}" for i in range(5)]
    assert found[0] == {
        "model": "m",
        "version": 1,
        "signature": "serving_default",
        "method": "predict",
        "time": "2024-03-01T12:00:00.000Z",
        "request_id": "r0",
        "request": {"instances": [0]},
        "response": {"predictions": [0]},
    }
    assert capture.written == 5 and capture.dropped == 0
    assert not capture._thread.is_alive()
    record(capture, 1)  # after close: counted, never written
    assert capture.dropped == 1


def test_bytes_in_a_request_are_written_as_b64(tmp_path):
    capture = Capture(tmp_path, 1.0, clock=Clock(DAY))
    capture.record("m", 1, "s", "predict", {"instances": [b"\x00\x01"]}, {"predictions": [1]}, "r")
    capture.close()
    [entry] = lines(next((tmp_path / "m").iterdir()))
    assert entry["request"] == {"instances": [{"b64": "AAE="}]}


def test_sampling_keeps_about_the_rate_and_never_at_zero(tmp_path):
    none = Capture(tmp_path / "none", 0.0, clock=Clock(DAY))
    some = Capture(tmp_path / "some", 0.25, clock=Clock(DAY), rng=random.Random(1))
    record(none, 400)
    record(some, 400)
    none.close()
    some.close()
    assert none.written == 0 and not (tmp_path / "none" / "m").exists()
    draws = random.Random(1)
    expected = sum(draws.random() < 0.25 for _ in range(400))  # the same draws
    assert some.written == expected and 60 < expected < 140
    with pytest.raises(ValueError, match="between 0 and 1"):
        Capture(tmp_path, 1.5)


class StuckWriter:
    """Holds the writer thread inside its first write until released."""

    def __init__(self, monkeypatch):
        self.entered, self.release = threading.Event(), threading.Event()
        real = Capture._write

        def write(capture, entries):
            self.entered.set()
            assert self.release.wait(30)
            real(capture, entries)

        monkeypatch.setattr(Capture, "_write", write)


def test_record_never_blocks_or_touches_files_and_a_full_queue_drops_and_counts(tmp_path, monkeypatch):
    stuck = StuckWriter(monkeypatch)
    capture = Capture(tmp_path, 1.0, max_queue=3, clock=Clock(DAY))
    record(capture, 1)
    assert stuck.entered.wait(30)  # the writer holds that one request and is stuck
    caller = threading.get_ident()

    def guarded(real):
        def call(*args, **kwargs):
            if threading.get_ident() == caller:
                raise AssertionError("record() opened a file")
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(builtins, "open", guarded(builtins.open))
    monkeypatch.setattr(os, "open", guarded(os.open))
    real_put = capture._queue.put

    def put(item, block=True, timeout=None):
        assert not block, "record() waited for room in the queue"
        return real_put(item, block, timeout)

    monkeypatch.setattr(capture._queue, "put", put)
    record(capture, 8, start=1)  # with the writer stuck: 3 fit in the queue, 5 are dropped, and every call returns
    monkeypatch.undo()
    assert capture.dropped == 5 and capture.written == 0
    stuck.release.set()
    capture.close()
    assert capture.written == 4
    assert [e["request_id"] for e in lines(next((tmp_path / "m").iterdir()))] == ["r0", "r1", "r2", "r3"]


def test_a_day_boundary_closes_the_days_file_even_when_idle(tmp_path):
    clock = Clock(DAY.replace(hour=23, minute=59, second=59))
    capture = Capture(tmp_path, 1.0, clock=clock, poll_seconds=0.01)
    record(capture, 2)
    record(capture, 1, model="other", start=2)
    folder = tmp_path / "m"
    wait_for(lambda: capture.written == 3)
    [partial] = folder.iterdir()
    assert partial.name.endswith(".jsonl.partial")  # the open day's file: readers do not read it
    assert read_day(tmp_path, "m", "2024-03-01")[0] == []
    clock.now = DAY + dt.timedelta(hours=12, seconds=2)  # 2024-03-02 00:00:01, no request since
    wait_for(lambda: not list(folder.glob("*.partial")))
    [closed] = folder.iterdir()
    assert closed.name == partial.name[: -len(".partial")]
    entries, facts = read_day(tmp_path, "m", "2024-03-01")
    assert [e["request_id"] for e in entries] == ["r0", "r1"] and facts["files"] == [closed.name]
    record(capture, 1, start=3)  # the next day gets a file of its own
    capture.close()
    assert [e["request_id"] for e in read_day(tmp_path, "m", "2024-03-02")[0]] == ["r3"]
    assert [e["request_id"] for e in read_day(tmp_path, "other", "2024-03-01")[0]] == ["r2"]


def test_a_late_line_of_a_closed_day_goes_to_a_new_file_never_over_the_closed_one(tmp_path):
    clock = Clock(DAY)
    capture = Capture(tmp_path, 1.0, clock=clock, poll_seconds=0.01)
    record(capture, 1)
    wait_for(lambda: capture.written == 1)
    clock.now = DAY + dt.timedelta(days=1)
    wait_for(lambda: not list((tmp_path / "m").glob("*.partial")))
    capture._queue.put((DAY, "m", 1, "s", "predict", {}, {}, "late"))  # stamped before midnight, written after
    capture.close()
    assert sorted(e["request_id"] for e in read_day(tmp_path, "m", "2024-03-01")[0]) == ["late", "r0"]
    assert len(list((tmp_path / "m").iterdir())) == 2


def test_two_servers_on_one_folder_and_a_killed_one_lose_nothing(tmp_path):
    first, second = Capture(tmp_path, 1.0, clock=Clock(DAY)), Capture(tmp_path, 1.0, clock=Clock(DAY))
    record(first, 2)
    record(second, 2, start=2)
    wait_for(lambda: first.written == 2 and second.written == 2)
    # A third server killed mid-day: its partial file has two whole lines and a torn third one, and no lock.
    dead = tmp_path / "m" / "2024-03-01.999-deadbeef-1.jsonl.partial"
    dead.write_text('{"request_id": "d0"}\n{"request_id": "d1"}\n{"request_id": "d2", "requ')
    entries, facts = read_day(tmp_path, "m", "2024-03-01")
    assert sorted(e["request_id"] for e in entries) == ["d0", "d1"]  # the live servers' files are still open
    assert facts["orphaned_files"] == [dead.name] and len(facts["open_files"]) == 2 and not facts["bad_lines"]
    assert recover(tmp_path) == [dead.with_name(dead.name[: -len(".partial")])]  # the live ones are left alone
    assert dead.with_name(dead.name[: -len(".partial")]).read_text().endswith('"d1"}\n')
    first.close()
    restarted = Capture(tmp_path, 1.0, clock=Clock(DAY))  # the same pid, as in a container
    record(restarted, 1, start=9)
    restarted.close()
    second.close()
    entries, facts = read_day(tmp_path, "m", "2024-03-01")
    assert sorted(e["request_id"] for e in entries) == ["d0", "d1", "r0", "r1", "r2", "r3", "r9"]
    assert len(facts["files"]) == 4 and not facts["open_files"] and not facts["orphaned_files"]


def test_a_server_restarted_after_a_kill_closes_the_file_it_left(tmp_path):
    (tmp_path / "m").mkdir()
    left = tmp_path / "m" / f"2024-03-01.{os.getpid()}-0000-1.jsonl.partial"
    left.write_text('{"request_id": "a"}\n{"req')
    empty = tmp_path / "m" / "2024-03-01.1-0000-1.jsonl.partial"
    empty.write_text('{"torn')
    Capture(tmp_path, 1.0, clock=Clock(DAY)).close()
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [left.name[: -len(".partial")]]
    assert [e["request_id"] for e in read_day(tmp_path, "m", "2024-03-01")[0]] == ["a"]


def test_an_unwritable_folder_counts_drops_and_keeps_the_writer_alive(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(capture_module._DayFile, "__init__", refuse)
    capture = Capture(tmp_path, 1.0, clock=Clock(DAY))
    record(capture, 3)
    record(capture, 1, model="..")  # never a path outside the folder
    capture.close()
    assert capture.dropped == 4 and capture.written == 0


def wait_for(condition, seconds: float = 30.0) -> None:
    event = threading.Event()
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        event.wait(0.01)
    raise AssertionError("condition not reached")


def test_raw_json_is_written_as_it_came_and_messages_are_encoded_on_the_writer_thread(tmp_path):
    """The server hands over the body as received and the answer as sent (RawJSON), and gRPC messages as they are:
    the line holds them as JSON, one line per request even when a client pretty-printed its body."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    capture = Capture(tmp_path, 1.0, clock=Clock(DAY))
    raw = capture_module.RawJSON(b'{"instances":[{"b64":"AAE="}]}')
    capture.record("m", 1, "serving_default", "predict", raw, capture_module.RawJSON(b'{"predictions":[[0.5]]}'), "a")
    pretty = capture_module.RawJSON(b'{\n  "instances": [1, 2]\n}')
    capture.record("m", 1, "serving_default", "predict", pretty, {"predictions": [1, 2]}, "b")
    message = predict_pb2.PredictRequest()
    message.model_spec.name = "m"
    message.inputs["examples"].CopyFrom(tf.make_tensor_proto([b"\x00\x01"], dtype=tf.string))
    capture.record("m", 1, "serving_default", "predict", message, {"predictions": [[0.25]]}, "c")
    capture.close()
    [path] = (tmp_path / "m").iterdir()
    found = lines(path)
    assert [e["request_id"] for e in found] == ["a", "b", "c"]  # three lines: the pretty body was put on one
    assert found[0]["request"] == {"instances": [{"b64": "AAE="}]} and found[0]["response"] == {"predictions": [[0.5]]}
    assert found[1]["request"] == {"instances": [1, 2]}
    assert found[2]["request"]["model_spec"] == {"name": "m"}
    assert found[2]["request"]["inputs"]["examples"]["string_val"] == ["AAE="]  # proto JSON: bytes in base64
