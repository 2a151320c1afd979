from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from dagster import AssetKey

from trainpipe_assets.core.artifacts import TransformGraph
from trainpipe_assets.core.io_managers.artifact_dir import read_artifact
from trainpipe_assets.data.example_gen import examples
from trainpipe_assets.data.schema_gen import schema
from trainpipe_assets.data.statistics_gen.component import statistics
from trainpipe_assets.model.transform import transform_graph
from trainpipe_assets_tests.helpers import DAYS, failure_message, make_config, materialize, resources_for

EXPECTED_OUTPUTS = {
    "big_tipper",
    "company_xf",
    "fare_xf",
    "payment_type_xf",
    "pickup_area_xf",
    "trip_miles_xf",
    "trip_miles_xf_bucket",
    "trip_seconds_xf",
    "trip_start_hour_xf",
}


@pytest.fixture(scope="module")
def graph(pipeline) -> TransformGraph:
    return read_artifact(pipeline["home"] / "artifacts" / "transform_graph" / DAYS[-1])


def test_tfx_layout_loads_with_tft(graph):
    names = {p.name for p in Path(graph.uri).iterdir()}
    assert {"transform_fn", "transformed_metadata", "metadata", "Split-train", "Split-eval"} <= names
    output = tft.TFTransformOutput(graph.uri)
    assert set(output.transformed_feature_spec()) == EXPECTED_OUTPUTS
    assert "payment_type" in output.raw_feature_spec()  # the raw schema TFX keeps under metadata/
    assert output.vocabulary_size_by_name("payment_type") == 5


def test_every_split_is_transformed_and_train_is_z_scored(graph, pipeline):
    output = tft.TFTransformOutput(graph.uri)
    spec = output.transformed_feature_spec()
    examples = graph.transformed_examples
    for split in ("train", "eval"):
        files = [f for p in examples.file_patterns[split] for f in tf.io.gfile.glob(p)]
        rows = [tf.io.parse_single_example(r, spec) for r in tf.data.TFRecordDataset(files, "GZIP")]
        assert len(rows) == examples.row_counts[split] > 0
    train_files = [f for p in examples.file_patterns["train"] for f in tf.io.gfile.glob(p)]
    fares = np.array(
        [
            float(tf.io.parse_single_example(r, spec)["fare_xf"].numpy().ravel()[0])
            for r in tf.data.TFRecordDataset(train_files, "GZIP")
        ]
    )
    assert abs(fares.mean()) < 1e-3 and abs(fares.std() - 1) < 1e-2


def test_serving_graph_transforms_raw_examples(graph):
    output = tft.TFTransformOutput(graph.uri)
    layer = output.transform_features_layer()
    raw = tf.io.parse_example(
        tf.constant(
            [
                tf.train.Example(
                    features=tf.train.Features(
                        feature={
                            "fare": tf.train.Feature(float_list=tf.train.FloatList(value=[12.0])),
                            "trip_miles": tf.train.Feature(float_list=tf.train.FloatList(value=[2.0])),
                            "trip_seconds": tf.train.Feature(int64_list=tf.train.Int64List(value=[600])),
                            "trip_start_hour": tf.train.Feature(int64_list=tf.train.Int64List(value=[22])),
                            "pickup_area": tf.train.Feature(int64_list=tf.train.Int64List(value=[3])),
                            "payment_type": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"Cash"])),
                            "company": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"Flash Cab"])),
                            "big_tipper": tf.train.Feature(int64_list=tf.train.Int64List(value=[0])),
                        }
                    )
                ).SerializeToString()
            ]
        ),
        output.raw_feature_spec(),
    )
    transformed = layer(raw)
    assert int(transformed["trip_start_hour_xf"].numpy()[0]) == 22
    assert 0 <= int(transformed["payment_type_xf"].numpy()[0]) < 22


def test_metadata_names_the_window_and_counts(pipeline):
    [record] = pipeline["instance"].fetch_materializations(AssetKey("transform_graph"), limit=1).records
    metadata = record.asset_materialization.metadata
    # partitions_start: auto begins the partitions at the first day of data, so no day of the window lacks data.
    assert metadata["window"].value == {"days_used": DAYS, "days_without_data": []}
    assert metadata["analyzed_rows"].value == metadata["transformed_rows_train"].value
    assert set(metadata["transformed_features"].value) == EXPECTED_OUTPUTS


def test_a_missing_module_file_fails_with_its_path(pipeline, instance, tmp_path):
    config = tmp_path / "trainpipe.yaml"
    config.write_text("label_key: big_tipper\nmodule_file: no_such_module.py\n")
    trainpipe = make_config(pipeline["home"], config)
    result = materialize(
        [examples, statistics, schema, transform_graph],
        selection=[transform_graph],
        partition_key=DAYS[-1],
        resources=resources_for(trainpipe),
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    assert f"module_file {tmp_path / 'no_such_module.py'} does not exist" in failure_message(result)
