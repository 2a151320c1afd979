from dagster import AssetKey, Definitions

from trainpipe_assets.definitions import defs


def test_definitions_load_with_every_asset_check_job_and_sensor():
    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == {
        "examples", "statistics", "schema", "transform_graph", "best_hyperparameters", "trained_model",
        "model_evaluation", "infra_validation", "pushed_model", "batch_predictions", "serving_model_performance",
    }
    assert sorted(c.name for c in graph.asset_check_keys) == ["examples_valid", "infra_blessed", "model_blessed"]
    assert defs.resolve_sensor_def("new_data_sensor").job_name == "ingest_job"
    assert defs.resolve_sensor_def("retrain_on_degradation_sensor").job_name == "training_job"


def test_jobs_select_their_assets():
    ingest = defs.resolve_job_def("ingest_job")
    assert ingest.asset_layer.executable_asset_keys == {AssetKey("examples"), AssetKey("statistics")}
    training = defs.resolve_job_def("training_job")
    assert training.asset_layer.executable_asset_keys == {
        AssetKey(k) for k in ("schema", "transform_graph", "best_hyperparameters", "trained_model", "model_evaluation",
                              "infra_validation", "pushed_model")
    }
    batch = defs.resolve_job_def("batch_inference_job")
    assert batch.asset_layer.executable_asset_keys == {AssetKey("batch_predictions"), AssetKey("serving_model_performance")}
    assert ingest.partitions_def is not None and training.partitions_def == ingest.partitions_def == batch.partitions_def


def test_executors_fit_the_shape_of_each_job():
    """Chains in one process; the independent steps of batch_inference_job in forked processes side by side."""
    assert defs.resolve_job_def("ingest_job").executor_def.name == "in_process"
    assert defs.resolve_job_def("training_job").executor_def.name == "in_process"
    batch = defs.resolve_job_def("batch_inference_job").executor_def
    assert batch.name == "forkserver_multiprocess_executor"


def test_training_assets_read_a_window_of_days():
    graph = defs.resolve_asset_graph()
    mapping = graph.get_partition_mapping(AssetKey("schema"), AssetKey("statistics"))
    assert mapping.start_offset == -6 and mapping.end_offset == 0


def test_every_asset_has_a_code_version():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        assert graph.get(key).code_version, key
