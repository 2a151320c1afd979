import json
import shutil

import keras_tuner

from trainpipe_assets.data.example_gen import examples
from trainpipe_assets.data.schema_gen import schema
from trainpipe_assets.data.statistics_gen.component import statistics
from trainpipe_assets.model.transform import transform_graph
from trainpipe_assets.model.tuner import best_hyperparameters
from trainpipe_assets_tests.helpers import DAYS, make_config, materialize, resources_for, write_config


def test_best_hyperparameters_txt_is_tfx_json_of_get_config(pipeline):
    path = pipeline["home"] / "artifacts" / "best_hyperparameters" / DAYS[-1] / "best_hyperparameters.txt"
    config = json.loads(path.read_text())
    hp = keras_tuner.HyperParameters.from_config(config)
    assert set(hp.values) == {"hidden_units", "num_layers", "learning_rate"}


def test_trials_table_and_tuner_steps_in_metadata(pipeline):
    [event] = [
        e
        for e in pipeline["training"].get_asset_materialization_events()
        if e.asset_key.to_user_string() == "best_hyperparameters"
    ]
    metadata = event.materialization.metadata
    assert metadata["mode"].value == "tuned" and metadata["num_trials"].value == 2
    assert metadata["tuner_train_steps"].value == 8  # 20% of train_steps=40
    table = metadata["trials"].value.splitlines()
    # One column per hyperparameter, the objective named, the best trial marked.
    header = "| trial | score (val_binary_accuracy, max) | worker | hidden_units | learning_rate | num_layers |"
    assert table[0] == header
    assert len(table) == 4 and "(best)**" in table[2] and metadata["objective"].value == "val_binary_accuracy, max"
    assert {row["worker"] for row in metadata["trials_json"].value} == {"chief"}  # in-process search
    assert 0 < metadata["best_score"].value <= 1


def test_fixed_mode_skips_the_search(pipeline, instance, tmp_path):
    config = write_config(
        tmp_path / "fixed.yaml",
        partitions_start=DAYS[0],  # this home has no landing data to find the first partition from
        tuning={"enabled": False, "hyperparameters": {"hidden_units": 8, "num_layers": 1, "learning_rate": 0.01}},
    )
    home = tmp_path / "home"
    for asset in ("schema", "transform_graph"):  # this window's upstream artifacts, in a home of its own
        shutil.copytree(pipeline["home"] / "artifacts" / asset, home / "artifacts" / asset)
    trainpipe = make_config(home, config)
    result = materialize(
        [examples, statistics, schema, transform_graph, best_hyperparameters],
        selection=[best_hyperparameters],
        partition_key=DAYS[-1],
        resources=resources_for(trainpipe),
        instance=instance,
    )
    metadata = result.asset_materializations_for_node("best_hyperparameters")[0].metadata
    assert metadata["mode"].value.startswith("fixed") and "trials" not in metadata
    saved = json.loads((home / "artifacts/best_hyperparameters" / DAYS[-1] / "best_hyperparameters.txt").read_text())
    assert keras_tuner.HyperParameters.from_config(saved).values == {
        "hidden_units": 8,
        "num_layers": 1,
        "learning_rate": 0.01,
    }


def test_parallel_trials_run_in_worker_processes(pipeline, instance, tmp_path):
    config = write_config(
        tmp_path / "parallel.yaml",
        partitions_start=DAYS[0],  # this home has no landing data to find the first partition from
        tuning={"num_parallel_trials": 2},
        custom_config={"max_trials": 3},
    )
    home = tmp_path / "home"
    for asset in ("schema", "transform_graph"):
        shutil.copytree(pipeline["home"] / "artifacts" / asset, home / "artifacts" / asset)
    result = materialize(
        [examples, statistics, schema, transform_graph, best_hyperparameters],
        selection=[best_hyperparameters],
        partition_key=DAYS[-1],
        resources=resources_for(make_config(home, config)),
        instance=instance,
    )
    metadata = result.asset_materializations_for_node("best_hyperparameters")[0].metadata
    assert metadata["parallel_trials"].value == 2 and metadata["num_trials"].value == 3
    assert {row["worker"] for row in metadata["trials_json"].value} <= {"local0", "local1"}
    assert "failed_workers" not in metadata and not (home / "tuning").exists()  # nothing published: no remote_workers
    out = home / "artifacts/best_hyperparameters" / DAYS[-1]
    hp = keras_tuner.HyperParameters.from_config(json.loads((out / "best_hyperparameters.txt").read_text()))
    assert set(hp.values) == {"hidden_units", "num_layers", "learning_rate"}
    logs = sorted(p.name for p in (out / "workers").glob("worker-*.log"))
    assert logs == ["worker-0.log", "worker-1.log"]
