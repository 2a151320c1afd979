import numpy as np
from apache_beam.ml.inference.base import PredictionResult
from dagster import instance_for_test

from trainpipe_assets.core.artifacts import MANIFEST, from_manifest
from trainpipe_assets.core.example_reader import read_records
from trainpipe_assets.data.example_gen import examples
from trainpipe_assets.deploy.beam_inference import Chunk, OutputSpec, arrow_schema, predictions_table
from trainpipe_assets.deploy.bulk_inferrer import batch_predictions
from trainpipe_assets.model.evaluator.component import score_serialized
from trainpipe_assets_tests.helpers import (
    DAYS,
    FAST_TRAINING,
    failure_message,
    make_config,
    materialize,
    metadata_of,
    resources_for,
    write_config,
)


def predict(trainpipe, instance, day=DAYS[0]):
    return materialize(
        [examples, batch_predictions],
        selection=[batch_predictions],
        partition_key=day,
        resources=resources_for(trainpipe),
        instance=instance,
        raise_on_error=False,
    )


def test_every_example_of_the_day_is_scored_by_the_serving_model(pipeline):
    result = predict(pipeline["trainpipe"], pipeline["instance"])
    assert result.success, failure_message(result)
    metadata = metadata_of(result)
    version = metadata["model_version"].value
    model_dir = pipeline["home"] / "serving" / "trips_model" / str(version)
    assert metadata["serving_path"].value == str(model_dir) and version >= 1
    predictions = from_manifest((pipeline["home"] / "artifacts/batch_predictions" / DAYS[0] / MANIFEST).read_text())
    assert predictions.model_version == version and predictions.output_keys == ["outputs"]
    table = predictions.load()
    day_examples = from_manifest((pipeline["home"] / "artifacts/examples" / DAYS[0] / MANIFEST).read_text())
    assert table.num_rows == day_examples.num_rows == metadata["rows"].value > 0
    assert metadata["rows_per_second"].value > 0 and "| split | index | outputs |" in metadata["preview"].value
    for split, rows in day_examples.row_counts.items():
        part = table.filter(np.array(table["split"].to_pylist()) == split)
        assert part["index"].to_pylist() == list(range(rows))  # keyed by position in the split's file
        expected = score_serialized(model_dir, read_records(day_examples.file_patterns[split]), None)
        np.testing.assert_allclose(part["outputs"].to_numpy(), expected.ravel(), atol=1e-5)

    again = predict(pipeline["trainpipe"], pipeline["instance"])  # same model, same examples: reused
    assert metadata_of(again)["cached"].value is True and metadata_of(again)["model_version"].value == version


def test_nothing_pushed_fails_clearly(pipeline):
    with instance_for_test() as empty:  # the pipeline's files, but an event log without any push
        result = predict(pipeline["trainpipe"], empty)
    assert not result.success
    assert "no model pushed yet under" in failure_message(result)


def test_a_prediction_key_the_model_lacks_is_named(pipeline, tmp_path):
    config = write_config(
        tmp_path / "bad.yaml", **FAST_TRAINING, batch_inference={"split": "eval", "prediction_key": "probabilities"}
    )
    result = predict(make_config(pipeline["home"], config), pipeline["instance"])
    assert not result.success
    assert "batch_inference.prediction_key 'probabilities' is not an output of serving_default" in failure_message(
        result
    )


def test_multi_value_outputs_become_list_columns():
    schema = arrow_schema(
        [OutputSpec("probs", np.dtype(np.float32), False), OutputSpec("score", np.dtype(np.float32), True)]
    )
    result = PredictionResult(
        Chunk("eval", 5, [b"a", b"b"]),
        {"probs": np.array([[0.1, 0.9], [0.3, 0.7]], np.float32), "score": np.array([[0.5], [0.2]], np.float32)},
    )
    table = predictions_table(result, schema)
    assert table.column_names == ["split", "index", "probs", "score"]
    assert table["index"].to_pylist() == [5, 6]
    np.testing.assert_allclose(np.array(table["probs"].to_pylist()), [[0.1, 0.9], [0.3, 0.7]])
    np.testing.assert_allclose(table["score"].to_numpy(), [0.5, 0.2])
