"""Captured requests in every format the server records, decoded into features and predictions; the skew measures."""

import base64

import numpy as np
import pytest
from google.protobuf import json_format

from trainpipe_assets.core.example_reader import decode_examples
from trainpipe_assets.data.statistics_gen.compare import feature_skews, features_of, jensen_shannon
from trainpipe_assets.data.statistics_gen.component import feature_statistics
from trainpipe_assets.monitoring.live_labels import live_metrics, read_labels
from trainpipe_assets.monitoring.served_statistics import merge_statistics, served_batch, served_statistics
from trainpipe_assets.monitoring.traffic_decode import decode_traffic, request_rows, response_predictions
from trainpipe_assets_tests.helpers import example

ROW = {"fare": [12.5], "company": [b"Flash Cab"], "hour": [13]}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def serialized() -> bytes:
    return example(fare=12.5, company="Flash Cab", hour=13)


def grpc_json(message) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)  # as the gRPC API records it


def test_rest_requests_in_every_format():
    one = {"b64": b64(serialized())}
    assert request_rows({"instances": [one, one]}) == [ROW, ROW]
    assert request_rows({"instances": [{"examples": one}]}) == [ROW]
    assert request_rows({"inputs": {"examples": [one]}}) == [ROW]
    assert request_rows({"inputs": [one]}) == [ROW]
    assert request_rows({"instances": [{"fare": 12.5, "company": "Flash Cab", "hour": [13]}]}) == [ROW]
    assert request_rows({"inputs": {"fare": [12.5, 3.0], "company": ["Flash Cab", {"b64": b64(b"x")}]}}) == [
        {"fare": [12.5], "company": [b"Flash Cab"]},
        {"fare": [3.0], "company": [b"x"]},
    ]
    assert request_rows(
        {"context": {"hour": 13, "fare": 1.0}, "examples": [{"fare": 12.5, "company": "Flash Cab"}]}
    ) == [{"hour": [13], "fare": [12.5], "company": [b"Flash Cab"]}]


def test_grpc_requests_as_the_server_records_them():
    import tensorflow as tf
    from tensorflow_serving.apis import classification_pb2, predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    request.inputs["examples"].CopyFrom(tf.make_tensor_proto([serialized(), serialized()]))
    assert request_rows(grpc_json(request)) == [ROW, ROW]
    assert request_rows({"inputs": grpc_json(request)["inputs"]}) == [ROW, ROW]  # no model_spec: still a TensorProto

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    request.inputs["fare"].CopyFrom(tf.make_tensor_proto(np.array([[12.5], [3.0]], dtype=np.float32)))  # content
    request.inputs["hour"].CopyFrom(tf.make_tensor_proto([13, 14], dtype=tf.int64))
    assert request_rows(grpc_json(request)) == [{"fare": [12.5], "hour": [13]}, {"fare": [3.0], "hour": [14]}]

    request = classification_pb2.ClassificationRequest()
    given = request.input.example_list_with_context
    given.context.ParseFromString(example(hour=13))
    given.examples.add().ParseFromString(example(fare=12.5, company="Flash Cab"))
    assert request_rows(grpc_json(request)) == [ROW]


def test_answers_in_every_format():
    import tensorflow as tf
    from tensorflow_serving.apis import classification_pb2, predict_pb2, regression_pb2

    assert response_predictions({"predictions": [[0.25], [0.75]]}) == [[0.25], [0.75]]
    assert response_predictions({"predictions": [{"a": 1, "b": [0.5]}]}, key="b") == [[0.5]]
    assert response_predictions({"outputs": [[0.25]]}) == [[0.25]]
    assert response_predictions({"outputs": {"a": [[1.0]], "b": [[0.5]]}}, key="b") == [[0.5]]
    assert response_predictions({"result": [[["0", 0.2], ["1", 0.8]]]}) == [[0.2, 0.8]]
    assert response_predictions({"results": [1.5, 2.0]}) == [[1.5], [2.0]]
    answer = predict_pb2.PredictResponse()
    answer.outputs["outputs"].CopyFrom(tf.make_tensor_proto(np.array([[0.25], [0.75]], dtype=np.float32)))
    assert response_predictions(grpc_json(answer)) == [[0.25], [0.75]]
    answer = classification_pb2.ClassificationResponse()
    answer.result.classifications.add().classes.add(label="1", score=0.5)
    assert response_predictions(grpc_json(answer)) == [[0.5]]
    answer = regression_pb2.RegressionResponse()
    answer.result.regressions.add(value=2.5)
    assert response_predictions(grpc_json(answer)) == [[2.5]]
    with pytest.raises(ValueError, match="no output 'z'"):
        response_predictions({"predictions": [{"a": 1}]}, key="z")


def test_unreadable_requests_are_counted_and_rows_keep_their_predictions():
    entries = [
        {"request_id": "a", "version": 1, "request": {"instances": [[1.0, 2.0]]}, "response": {"predictions": [[0.9]]}},
        {"request_id": "b", "version": 2, "request": {"instances": [{"fare": 1.0}]}, "response": {"error": "x"}},
        {
            "request_id": "c",
            "version": 2,
            "request": {"instances": [{"fare": 1.0}] * 2},
            "response": {"predictions": [[1]]},
        },
    ]
    traffic = decode_traffic(entries)
    assert traffic.rows == [None, {"fare": [1.0]}, {"fare": [1.0]}, {"fare": [1.0]}]
    assert traffic.predictions == [[0.9], None, None, None]
    assert traffic.keys == [("a", 0), ("b", 0), ("c", 0), ("c", 1)] and traffic.versions == [1, 2, 2, 2]
    assert traffic.skipped == {
        "features unreadable: instances are tensors, not features": 1,
        "predictions unreadable: no predictions, outputs, result or results in the answer": 1,
        "2 rows but 1 predictions": 1,
    }


def test_served_statistics_are_the_statistics_assets_own():
    records = [example(fare=float(i), company=["A", "B"][i % 2], hour=i) for i in range(20)] + [example(hour=3)]
    rows = [request_rows({"instances": [{"b64": b64(r)}]})[0] for r in records]
    served = served_statistics(rows, {}).datasets[0]
    assert served == feature_statistics(decode_examples(records), "served")
    # A JSON 3 for a FLOAT feature is a float, as in training; strings stay strings whatever training had.
    batch = served_batch([{"fare": [3]}, {"fare": [2.5]}, {"company": [b"A"]}], {"fare": "FLOAT"})
    assert batch.column("fare").to_pylist() == [[3.0], [2.5], None] and str(batch.schema.field("fare").type) == (
        "large_list<item: float>"
    )


def stats(records):
    return feature_statistics(decode_examples(records), "d")


def test_a_shifted_numeric_feature_and_a_changed_string_feature_are_the_most_skewed():
    rng = np.random.default_rng(0)
    training = [
        example(fare=float(f), hour=int(h), pay=p)
        for f, h, p in zip(rng.normal(10, 2, 300), rng.integers(0, 24, 300), rng.choice(["a", "b"], 300))
    ]
    same = [
        example(fare=float(f), hour=int(h), pay=p)
        for f, h, p in zip(rng.normal(10, 2, 300), rng.integers(0, 24, 300), rng.choice(["a", "b"], 300))
    ]
    shifted = [
        example(fare=float(f) + 30, hour=int(h), pay=p)
        for f, h, p in zip(rng.normal(10, 2, 300), rng.integers(0, 24, 300), rng.choice(["a", "b"], 300))
    ]
    base = stats(training)
    calm = {f.feature: f.skew for f in feature_skews(base, stats(same))}
    assert max(calm.values()) < 0.1
    skews = feature_skews(base, stats(shifted))
    assert skews[0].feature == "fare" and skews[0].js > 0.99 and skews[0].linf is None
    cash = [example(fare=10.0, hour=1, pay="cash")] * 50
    assert feature_skews(base, stats(cash))[0].feature == "pay"
    assert jensen_shannon(features_of(base)["fare"], features_of(base)["fare"]) == pytest.approx(0, abs=1e-12)


def test_merged_days_are_the_statistics_of_all_their_rows():
    rng = np.random.default_rng(1)
    days = [[example(fare=float(rng.normal(d, 1)), pay=str(rng.integers(0, 3))) for _ in range(100)] for d in (5, 9)]
    days[1] += [example(pay="0")] * 10  # fare missing on day 2 for 10 rows
    merged = merge_statistics([stats(d) for d in days], "window")
    whole = stats(days[0] + days[1])
    m, w = features_of(merged), features_of(whole)
    assert merged.num_examples == whole.num_examples == 210
    assert m["fare"].num_stats.common_stats == w["fare"].num_stats.common_stats
    assert m["fare"].num_stats.mean == pytest.approx(w["fare"].num_stats.mean)
    assert m["fare"].num_stats.std_dev == pytest.approx(w["fare"].num_stats.std_dev)
    assert (m["fare"].num_stats.min, m["fare"].num_stats.max) == (w["fare"].num_stats.min, w["fare"].num_stats.max)
    assert sum(b.sample_count for b in m["fare"].num_stats.histograms[0].buckets) == pytest.approx(200)
    assert {b.label: b.sample_count for b in m["pay"].string_stats.rank_histogram.buckets} == {
        b.label: b.sample_count for b in w["pay"].string_stats.rank_histogram.buckets
    }
    assert jensen_shannon(m["fare"], w["fare"]) < 0.02


def test_labels_from_csv_and_jsonl_join_rows_by_request_and_position(tmp_path):
    (tmp_path / "a.csv").write_text("request_id,label,index\nr1,1,0\nr1,0,1\nr2,x,0\n")
    (tmp_path / "b.jsonl").write_text('{"request_id": "r3", "label": 1}\nnot json\n')
    (tmp_path / "ignored.txt").write_text("r4,1\n")
    labels, bad = read_labels(tmp_path)
    assert labels == {("r1", 0): 1, ("r1", 1): 0, ("r3", 0): 1}
    assert [b.split(":")[0:2] for b in bad] == [["a.csv", "4"], ["b.jsonl", "2"]]
    entries = [
        {
            "request_id": "r1",
            "version": 1,
            "request": {"instances": [{"f": 1}] * 2},
            "response": {"predictions": [0.9, 0.8]},
        },
        {"request_id": "r3", "version": 2, "request": {"instances": [{"f": 1}]}, "response": {"predictions": [0.2]}},
        {"request_id": "r5", "version": 2, "request": {"instances": [{"f": 1}]}, "response": {"predictions": [0.2]}},
    ]
    metrics, labelled = live_metrics(decode_traffic(entries), labels, ["accuracy"], "probabilities")
    assert labelled == 3
    assert metrics == {"1": {"example_count": 2.0, "accuracy": 0.5}, "2": {"example_count": 1.0, "accuracy": 0.0}}
