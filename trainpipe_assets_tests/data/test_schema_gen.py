import datetime as dt

from dagster import AssetKey
from tensorflow_metadata.proto.v0 import schema_pb2

from trainpipe_assets.core.artifacts import Schema
from trainpipe_assets.core.io_managers.artifact_dir import read_artifact
from trainpipe_assets.data.example_gen import examples
from trainpipe_assets.data.example_validator import example_anomalies
from trainpipe_assets.data.sample_data import write_days
from trainpipe_assets.data.schema_gen import schema as schema_asset
from trainpipe_assets.data.statistics_gen.component import statistics
from trainpipe_assets_tests.helpers import DAYS, make_config, materialize, resources_for


def test_schema_is_inferred_from_the_window_and_says_which_days_it_lacked(pipeline):
    artifact = read_artifact(pipeline["home"] / "artifacts" / "schema" / DAYS[-1])
    assert isinstance(artifact, Schema) and artifact.inferred_from == DAYS
    schema = artifact.load()
    features = {f.name: f for f in schema.feature}
    assert features["fare"].type == schema_pb2.FLOAT and features["trip_seconds"].type == schema_pb2.INT
    assert features["fare"].presence.min_fraction == 1.0 and [d.size for d in features["fare"].shape.dim] == [1]
    assert features["company"].presence.min_fraction == 0.0  # the sample data leaves company empty sometimes
    domains = {d.name: set(d.value) for d in schema.string_domain}
    assert domains[features["payment_type"].domain] == {"Credit Card", "Cash", "Mobile", "No Charge", "Unknown"}
    [record] = pipeline["instance"].fetch_materializations(AssetKey("schema"), limit=1).records
    window = record.asset_materialization.metadata["window"].value
    assert window["days_used"] == DAYS
    assert window["days_without_data"] == []  # partitions_start: auto begins at the first day of data
    assert "| payment_type | BYTES | 1 | [1] |" in record.asset_materialization.metadata["schema"].value


def test_a_user_schema_file_replaces_inference(home, instance, tmp_path):
    user_schema = tmp_path / "my_schema.pbtxt"
    user_schema.write_text('feature { name: "fare" type: FLOAT }\n')
    config = tmp_path / "trainpipe.yaml"
    config.write_text("label_key: big_tipper\nschema_file: my_schema.pbtxt\n")
    trainpipe = make_config(home, config)
    write_days(trainpipe.landing_dir, 1, 60, end=dt.date(2024, 3, 1))
    result = materialize(
        [examples, statistics, example_anomalies, schema_asset],  # schema only learns from judged days
        partition_key="2024-03-01",
        resources=resources_for(trainpipe),
        instance=instance,
    )
    artifact = read_artifact(home / "artifacts" / "schema" / "2024-03-01")
    assert artifact.imported_from == str(user_schema)
    assert [f.name for f in artifact.load().feature] == ["fare"]
    assert result.asset_materializations_for_node("schema")[0].metadata["source"].value == str(user_schema)
