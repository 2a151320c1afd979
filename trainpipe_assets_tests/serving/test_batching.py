"""The batcher's rules (by counting calls, never by timing), batching on by default, merged calls on the real model, and
:classify / :regress on a TF1-style SavedModel."""

import argparse
import asyncio
import base64
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from trainpipe_assets.core.example_reader import read_records
from trainpipe_assets.serving.batching import Batcher
from trainpipe_assets.serving.codec import ApiError, serialize_example
from trainpipe_assets.serving.flags import add_serve_arguments
from trainpipe_assets.serving.main import build_app
from trainpipe_assets.serving.metrics import Metrics
from trainpipe_assets.serving.model_store import ModelStore
from trainpipe_assets.serving.options import BatchingOptions, ServeOptions
from trainpipe_assets.serving.predict import classify_or_regress, parse_predict, run_alone, run_merged
from trainpipe_assets_tests.conftest import DAYS
from trainpipe_assets_tests.serving.helpers import b64, sample


class Gated:
    """run_batch for a Batcher: records each call's items and holds the call until released, so a test decides
    when a thread frees up and nothing depends on timing."""

    def __init__(self, hold: bool = True):
        self.calls, self.gates, self.hold = [], [], hold

    def __call__(self, items):
        gate = threading.Event()
        self.calls.append(list(items))
        self.gates.append(gate)
        if self.hold:
            gate.wait(60)
        return [f"answer {item}" for item in items]

    def release(self, call: int) -> None:
        self.gates[call].set()

    async def started(self, n: int) -> None:
        """Wait (on the loop) until n calls have started; a bound that fails rather than hangs."""
        for _ in range(60_000):
            if len(self.calls) >= n:
                return
            await asyncio.sleep(0.001)
        raise AssertionError(f"{len(self.calls)} calls started, expected {n}: {self.calls}")


def batcher(run_batch, max_batch_size=32, timeout=3600.0, num_threads=1) -> Batcher:
    """A huge timeout by default: anything that starts does so by the batcher's rules, never by its timer."""
    return Batcher(run_batch, ThreadPoolExecutor(num_threads), max_batch_size, timeout, num_threads)


async def settle(b: Batcher, waiting_items: int) -> None:
    """Let submitted tasks reach the batcher: until its waiting queues hold `waiting_items` requests."""
    for _ in range(1000):
        if sum(len(q.items) for q in b.waiting) == waiting_items:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"waiting: {[q.items for q in b.waiting]}, expected {waiting_items} requests")


def test_a_lone_client_never_waits_for_the_timeout():
    gated = Gated(hold=False)

    async def main():
        b = batcher(gated, timeout=3600.0, num_threads=2)  # an hour: a request waiting for it would hang the test
        answers = [await asyncio.wait_for(b.submit("a", i, 1), 60) for i in range(5)]
        return b, answers

    b, answers = asyncio.run(main())
    assert answers == [f"answer {i}" for i in range(5)]
    assert gated.calls == [[i] for i in range(5)] and b.calls == b.alone == 5


def test_requests_arriving_while_every_thread_is_busy_go_as_one_call():
    gated = Gated()

    async def main():
        b = batcher(gated, num_threads=1)
        first = asyncio.create_task(b.submit("a", 0, 1))
        await gated.started(1)
        rest = [asyncio.create_task(b.submit("a", i, 1)) for i in range(1, 9)]
        await settle(b, 8)
        assert len(gated.calls) == 1 and b.busy == 1  # they wait for the thread, however long the call takes
        gated.release(0)
        await gated.started(2)
        gated.release(1)
        return await asyncio.gather(first, *rest), b

    answers, b = asyncio.run(main())
    assert gated.calls == [[0], list(range(1, 9))] and b.alone == 1
    assert answers == [f"answer {i}" for i in range(9)]


def test_with_a_thread_free_a_queue_goes_when_full_or_at_its_timeout_and_never_mixes_keys():
    gated = Gated()

    async def main():
        b = batcher(gated, max_batch_size=4, num_threads=2)
        tasks = [asyncio.create_task(b.submit("a", 0, 1))]
        await gated.started(1)
        # one thread free: a, a, b, then 3 rows of "a" that do not fit in its queue (2 + 3 > 4), which closes it and
        # it starts on the free thread; a 1-row "a" fills the new queue (4 rows); both threads busy, two queues wait
        for i, (key, rows) in enumerate([("a", 1), ("a", 1), ("b", 1), ("a", 3), ("a", 1)], start=1):
            tasks.append(asyncio.create_task(b.submit(key, i, rows)))
        await gated.started(2)
        await settle(b, 3)
        assert gated.calls == [[0], [1, 2]] and b.busy == 2
        gated.release(0)  # the freed thread takes the oldest queue as it is
        await gated.started(3)
        gated.release(1)
        await gated.started(4)
        gated.release(2)
        gated.release(3)
        await asyncio.gather(*tasks)
        # timeout 0 with a thread free: requests of one turn of the loop go together at the next turn
        b0 = batcher(gated, timeout=0.0, num_threads=2)
        tasks = [asyncio.create_task(b0.submit("a", 10, 1))]
        await gated.started(5)
        tasks += [asyncio.create_task(b0.submit("a", i, 1)) for i in (11, 12, 13)]
        await gated.started(6)
        for gate in gated.gates:
            gate.set()
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert gated.calls == [[0], [1, 2], [3], [4, 5], [10], [11, 12, 13]]


def test_a_failing_call_fails_each_of_its_requests():
    def run_batch(items):
        raise RuntimeError("broken")

    async def main():
        b = batcher(run_batch)
        return await asyncio.gather(*(b.submit("a", i, 1) for i in range(3)), return_exceptions=True)

    assert [str(e) for e in asyncio.run(main())] == ["broken"] * 3


def test_batching_is_the_default_and_can_be_turned_off():
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    required = ["--model-name", "m", "--model-base-path", "b"]
    assert parser.parse_args(required).enable_batching is True
    assert parser.parse_args(required + ["--enable-batching"]).enable_batching is True
    for off in (["--disable-batching"], ["--enable-batching=false"], ["--enable-batching", "false"]):
        assert parser.parse_args(required + off).enable_batching is False, off
    with pytest.raises(SystemExit):
        parser.parse_args(required + ["--enable-batching=maybe"])


@pytest.fixture(scope="module")
def loaded(pipeline, tmp_path_factory):
    base = tmp_path_factory.mktemp("inproc") / "trips_model"
    shutil.copytree(pipeline["home"] / "serving" / "trips_model" / "1", base / "1")
    store = ModelStore("trips_model", base)
    store.refresh()
    examples = read_records([str(pipeline["home"] / "artifacts/examples" / DAYS[0] / "Split-eval" / "*.gz")])[:6]
    return store.serving(), examples


def test_merged_call_splits_back_and_a_bad_request_gets_its_own_400(loaded):
    version, examples = loaded
    assert version.methods["serving_default"] == "tensorflow/serving/predict"
    good = [parse_predict(version, {"instances": b64(examples[i : i + 2])}) for i in (0, 2, 4)]
    alone = [run_alone(c) for c in good]
    metrics = Metrics()
    assert _close(run_merged(good, metrics), alone)

    def calls(le):
        return metrics.registry.get_sample_value("trainpipe_batch_size_bucket", {"le": le})

    assert calls("4.0") == 0 and calls("8.0") == 1  # one call of 6 rows
    assert metrics.registry.get_sample_value("trainpipe_batch_fallbacks_total") == 0
    bad = parse_predict(version, {"inputs": {"examples": [{"b64": "bm90IGFuIGV4YW1wbGU="}]}})
    outcomes = run_merged([good[0], bad, good[1]], metrics)
    assert isinstance(outcomes[1], ApiError) and outcomes[1].status == 400
    assert metrics.registry.get_sample_value("trainpipe_batch_fallbacks_total") == 1
    assert _close(outcomes[0::2], alone[:2])


def _close(answers, expected) -> bool:
    def flat(xs):
        return [p for a in xs for row in a["outputs"] for p in row]

    return flat(answers) == pytest.approx(flat(expected), abs=1e-6)


def test_inputs_that_cannot_be_merged_are_not_given_a_row_count(loaded):
    version, examples = loaded
    assert parse_predict(version, {"inputs": {"examples": b64(examples[:3])}}).rows == 3
    assert parse_predict(version, {"inputs": "scalar"}).rows is None


@pytest.fixture(scope="module")
def tf1_store(tmp_path_factory):
    """A TF1-style SavedModel with classify and regress signatures on serialized tf.Examples with feature x."""
    import tensorflow as tf

    base = tmp_path_factory.mktemp("tf1") / "scorer"
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        serialized = tf.compat.v1.placeholder(tf.string, [None], name="tf_example")
        x = tf.io.parse_example(serialized, {"x": tf.io.FixedLenFeature([1], tf.float32)})["x"]
        score = tf.sigmoid(2.0 * x)
        scores = tf.concat([1.0 - score, score], axis=1)
        classes = tf.tile(tf.constant([["no", "yes"]]), [tf.shape(scores)[0], 1])
        builder = tf.compat.v1.saved_model.Builder(str(base / "1"))
        builder.add_meta_graph_and_variables(
            session,
            ["serve"],
            signature_def_map={
                "serving_default": tf.compat.v1.saved_model.classification_signature_def(serialized, classes, scores),
                "regression": tf.compat.v1.saved_model.regression_signature_def(serialized, 2.0 * x),
            },
        )
        builder.save()
    store = ModelStore("scorer", base)
    store.refresh()
    assert store.errors == {}
    return store


@pytest.fixture(scope="module")
def tf1_model(tf1_store):
    return tf1_store.serving()


def test_the_app_batches_by_default_and_a_lone_request_never_waits(tf1_store):
    import httpx

    # an hour's timeout: a lone request that waited for it would hang the test, not make it slower
    app = build_app(tf1_store, ServeOptions(batching=BatchingOptions(32, 3_600_000_000, 2)))
    example = {"b64": base64.b64encode(serialize_example({"x": 1.0})).decode()}

    async def main():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            answers = []
            for _ in range(3):
                body = {"signature_name": "regression", "instances": [example]}
                answers.append(await asyncio.wait_for(client.post("/v1/models/scorer:predict", json=body), 60))
            return answers, (await client.get("/metrics")).text

    answers, text = asyncio.run(main())
    assert [a.status_code for a in answers] == [200] * 3, answers[0].text
    assert sample(text, "trainpipe_batch_size_count") == 3 and sample(text, "trainpipe_batch_size_sum") == 3


def test_classify_and_regress_on_signatures_with_those_methods(tf1_model):
    result = classify_or_regress(tf1_model, {"examples": [{"x": 0.0}, {"x": 1.0}]}, "classify")["results"]
    assert [[label for label, _ in row] for row in result] == [["no", "yes"]] * 2
    assert result[0][1][1] == pytest.approx(0.5) and result[1][1][1] == pytest.approx(0.8807971)
    body = {"signature_name": "regression", "context": {"x": 3.0}, "examples": [{}, {"x": 0.5}]}
    regress = classify_or_regress(tf1_model, body, "regress")
    assert regress == {"results": [6.0, 1.0]}
    with pytest.raises(ApiError, match="method_name tensorflow/serving/regress"):
        classify_or_regress(tf1_model, {"examples": [{"x": 1.0}]}, "regress")
    with pytest.raises(ApiError, match="(?i)data types? .*float"):  # as TF Serving: 1 is an int64 feature, 1.0 a float
        classify_or_regress(tf1_model, {"examples": [{"x": 1}]}, "classify")
    with pytest.raises(ApiError, match="values must be"):
        classify_or_regress(tf1_model, {"examples": [{"x": [1.0, "a"]}]}, "classify")
    with pytest.raises(ApiError, match="'examples'"):
        classify_or_regress(tf1_model, {"examples": []}, "classify")


def test_the_store_retries_a_failed_version_and_forgets_a_deleted_one(tmp_path):
    base = tmp_path / "m"
    (base / "3").mkdir(parents=True)
    (base / "3" / "saved_model.pb").write_bytes(b"garbage")
    store = ModelStore("m", base)
    store.refresh()
    assert set(store.errors) == {3} and store.serving() is None
    first = store.errors[3]
    store.refresh()  # within the retry window: not tried again
    assert store.errors == {3: first}
    failed_at = store._failed_at[3]
    time.sleep(0.01)
    store.refresh(retry_failed_after=0)  # past it: tried again (and fails again)
    assert set(store.errors) == {3} and store._failed_at[3] > failed_at
    shutil.rmtree(base / "3")
    store.refresh()
    assert store.errors == {}
