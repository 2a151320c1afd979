from dagster import AssetKey, Definitions

from trainpipe_assets.definitions import defs


def test_definitions_load_with_every_asset_check_job_and_sensor():
    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == {
        "examples",
        "statistics",
        "example_anomalies",
        "schema",
        "transform_graph",
        "best_hyperparameters",
        "trained_model",
        "model_evaluation",
        "infra_validation",
        "pushed_model",
        "batch_predictions",
        "serving_model_performance",
        "served_traffic",
    }
    assert sorted(c.name for c in graph.asset_check_keys) == ["examples_valid", "infra_blessed", "model_blessed"]
    # example_anomalies sits between statistics and the training group (the gate reads its verdicts)
    assert graph.get(AssetKey("example_anomalies")).parent_keys == {AssetKey("statistics")}
    assert AssetKey("example_anomalies") in graph.get(AssetKey("schema")).parent_keys
    assert defs.resolve_sensor_def("new_data_sensor").job_name == "ingest_job"
    assert defs.resolve_sensor_def("retrain_on_degradation_sensor").job_name == "training_job"


def test_jobs_select_their_assets():
    ingest = defs.resolve_job_def("ingest_job")
    assert ingest.asset_layer.executable_asset_keys == {
        AssetKey("examples"),
        AssetKey("statistics"),
        AssetKey("example_anomalies"),
    }
    training = defs.resolve_job_def("training_job")
    assert training.asset_layer.executable_asset_keys == {
        AssetKey(k)
        for k in (
            "schema",
            "transform_graph",
            "best_hyperparameters",
            "trained_model",
            "model_evaluation",
            "infra_validation",
            "pushed_model",
        )
    }
    batch = defs.resolve_job_def("batch_inference_job")
    assert batch.asset_layer.executable_asset_keys == {
        AssetKey("batch_predictions"),
        AssetKey("serving_model_performance"),
    }
    traffic = defs.resolve_job_def("served_traffic_job")
    assert traffic.asset_layer.executable_asset_keys == {AssetKey("served_traffic")}
    assert (
        ingest.partitions_def is not None and training.partitions_def == ingest.partitions_def == batch.partitions_def
    )
    assert traffic.partitions_def == ingest.partitions_def


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


def test_settings_enter_only_through_build_definitions(tmp_path):
    """partitions_start, window_days and retrain_hour come from the settings object passed in, not the environment."""
    from trainpipe_assets.definitions import build_definitions
    from trainpipe_assets_tests.helpers import make_config, write_config

    config = write_config(tmp_path / "other.yaml", partitions_start="2025-06-01", window_days=3, retrain_hour=7)
    other = build_definitions(make_config(tmp_path / "home", config))
    graph = other.resolve_asset_graph()
    assert other.resolve_job_def("training_job").partitions_def.get_first_partition_key() == "2025-06-01"
    assert graph.get_partition_mapping(AssetKey("transform_graph"), AssetKey("examples")).start_offset == -2
    assert other.resolve_schedule_def("retraining_schedule").cron_schedule == "0 7 * * *"
    assert other.resolve_job_def("ingest_job").partitions_def.get_first_partition_key() == "2025-06-01"


def test_partitions_start_auto_is_the_first_day_of_data(tmp_path):
    """The bundled settings say auto: the partitions begin with the earliest landed file, or 7 days before today."""
    import datetime as dt

    from trainpipe_assets.data.sample_data import write_days
    from trainpipe_assets.definitions import build_definitions
    from trainpipe_assets_tests.helpers import make_config

    empty = build_definitions(make_config(tmp_path / "empty"))
    first = empty.resolve_job_def("ingest_job").partitions_def.get_first_partition_key()
    assert first == (dt.date.today() - dt.timedelta(days=7)).isoformat()
    trainpipe = make_config(tmp_path / "home")
    write_days(trainpipe.landing_dir, 3, 10, end=dt.date(2024, 3, 3))
    (trainpipe.landing_dir / "notes.txt").write_text("not a day")
    keys = build_definitions(trainpipe).resolve_job_def("ingest_job").partitions_def.get_partition_keys()
    assert keys[0] == "2024-03-01" and "2024-02-29" not in keys


def test_loading_the_definitions_warns_of_nothing_deprecated():
    import subprocess
    import sys

    command = [sys.executable, "-W", "error::DeprecationWarning", "-c", "import trainpipe_assets.definitions"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
