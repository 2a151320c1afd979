"""The batcher's queueing rules, merged calls on the real model, and :classify / :regress on a TF1-style SavedModel."""

import asyncio
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from trainpipe_assets.core.records import read_records
from trainpipe_assets.serving.batching import Batcher
from trainpipe_assets.serving.codec import ApiError
from trainpipe_assets.serving.metrics import Metrics
from trainpipe_assets.serving.model_store import ModelStore
from trainpipe_assets.serving.predict import classify_or_regress, parse_predict, run_alone, run_merged
from trainpipe_assets_tests.conftest import DAYS
from trainpipe_assets_tests.serving.helpers import b64


def run_batcher(requests, max_batch_size=4, timeout=0.02, num_threads=1, work_seconds=0.0):
    """Submit (key, rows, delay) requests; returns each request's batch (the items of the call it ran in)."""
    calls = []

    def run_batch(items):
        calls.append(list(items))
        time.sleep(work_seconds)
        return [list(items) for _ in items]

    async def main():
        batcher = Batcher(run_batch, ThreadPoolExecutor(num_threads), max_batch_size, timeout, num_threads)

        async def one(i, key, rows, delay):
            await asyncio.sleep(delay)
            return await batcher.submit(key, i, rows)

        return await asyncio.gather(*(one(i, *r) for i, r in enumerate(requests)))

    return asyncio.run(main()), calls


def test_batches_close_when_full_or_timed_out_and_never_mix_keys():
    answers, calls = run_batcher([("a", 1, 0)] * 6 + [("b", 1, 0)] + [("a", 3, 0)])
    assert sorted(map(sorted, calls)) == [[0, 1, 2, 3], [4, 5], [6], [7]]  # 4 rows full; 2 + 3 > 4 rows: 7 alone
    assert answers[0] == [0, 1, 2, 3] and answers[6] == [6]


def test_a_batch_that_times_out_while_the_worker_is_busy_keeps_filling():
    # the first call holds the only worker for 0.8 s; requests arriving meanwhile form ONE batch, not several
    requests = [("a", 1, 0)] + [("a", 1, 0.03 + 0.01 * i) for i in range(8)]
    _, calls = run_batcher(requests, max_batch_size=32, timeout=0.005, work_seconds=0.8)
    assert [len(c) for c in calls] == [1, 8]


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
def tf1_model(tmp_path_factory):
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
    return store.serving()


def test_classify_and_regress_on_signatures_with_those_methods(tf1_model):
    result = classify_or_regress(tf1_model, {"examples": [{"x": 0.0}, {"x": 1.0}]}, "classify")["result"]
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
