from dagster import AssetKey, Definitions

from trainpipe_assets.definitions import defs


def test_definitions_load_with_every_asset_check_job_and_sensor():
    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == {
        "examples", "statistics", "schema", "transform_graph", "best_hyperparameters", "trained_model",
        "model_evaluation", "pushed_model",
    }
    assert sorted(c.name for c in graph.asset_check_keys) == ["examples_valid", "model_blessed"]
    assert defs.resolve_sensor_def("new_data_sensor").job_name == "ingest_job"


def test_jobs_select_their_assets():
    ingest = defs.resolve_job_def("ingest_job")
    assert ingest.asset_layer.executable_asset_keys == {AssetKey("examples"), AssetKey("statistics")}
    training = defs.resolve_job_def("training_job")
    assert training.asset_layer.executable_asset_keys == {
        AssetKey(k) for k in ("schema", "transform_graph", "best_hyperparameters", "trained_model", "model_evaluation", "pushed_model")
    }
    assert ingest.partitions_def is not None and training.partitions_def == ingest.partitions_def


def test_training_assets_read_a_window_of_days():
    graph = defs.resolve_asset_graph()
    mapping = graph.get_partition_mapping(AssetKey("schema"), AssetKey("statistics"))
    assert mapping.start_offset == -6 and mapping.end_offset == 0


def test_every_asset_has_a_code_version():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        assert graph.get(key).code_version, key
