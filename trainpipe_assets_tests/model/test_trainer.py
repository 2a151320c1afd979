import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from dagster import AssetKey, build_output_context

from trainpipe_assets.core.artifacts import Model
from trainpipe_assets.core.example_reader import read_records
from trainpipe_assets.core.io_managers.saved_model import SavedModelIOManager
from trainpipe_assets.data.example_gen import examples
from trainpipe_assets.data.schema_gen import schema
from trainpipe_assets.data.statistics_gen.component import statistics
from trainpipe_assets.model.trainer import trained_model
from trainpipe_assets.model.transform import transform_graph
from trainpipe_assets.model.tuner import best_hyperparameters
from trainpipe_assets_tests.helpers import (
    DAYS,
    PNG_MAGIC,
    failure_message,
    inline_pngs,
    make_config,
    materialize,
    resources_for,
    write_config,
)


@pytest.fixture(scope="module")
def model_event(pipeline):
    [event] = [
        e
        for e in pipeline["training"].get_asset_materialization_events()
        if e.asset_key.to_user_string() == "trained_model"
    ]
    return event.materialization.metadata


def test_model_is_kept_under_partition_and_run_id(pipeline, model_event):
    path = model_event["path"].value
    assert path == str(pipeline["home"] / "artifacts" / "trained_model" / DAYS[-1] / pipeline["training"].run_id)
    assert (
        pipeline["home"]
        / "artifacts/trained_model"
        / DAYS[-1]
        / pipeline["training"].run_id
        / "Format-Serving"
        / "saved_model.pb"
    ).is_file()
    assert list(
        (pipeline["home"] / "artifacts/trained_model" / DAYS[-1] / pipeline["training"].run_id / "model_run").rglob(
            "events.out.tfevents.*"
        )
    )


def test_serving_default_takes_raw_serialized_examples(pipeline, model_event):
    loaded = tf.saved_model.load(model_event["path"].value + "/Format-Serving")
    assert {"serving_default", "transform_features"} <= set(loaded.signatures)
    raw = read_records([str(pipeline["home"] / "artifacts/examples" / DAYS[0] / "Split-eval" / "*.gz")])[:10]
    scores = loaded.signatures["serving_default"](examples=tf.constant(raw))["outputs"].numpy()
    assert scores.shape == (10, 1) and np.all((scores >= 0) & (scores <= 1))
    transformed = loaded.signatures["transform_features"](examples=tf.constant(raw))
    assert "fare_xf" in transformed and "payment_type_xf" in transformed


def test_metadata_has_metrics_parameters_size_and_lineage(model_event):
    assert 0 < model_event["metric_validation_binary_accuracy"].value <= 1
    assert model_event["metric_train_loss"].value > 0
    assert model_event["parameters"].value > 1000 and model_event["size_bytes"].value > 10_000
    assert model_event["example_partitions"].value == list(DAYS)
    assert model_event["train_steps"].value == 40
    [curves] = inline_pngs(model_event["learning_curves"].value)  # a learning-curve image from the TensorBoard logs
    assert curves.startswith(PNG_MAGIC)
    logdir = model_event["tensorboard"].value.split("--logdir ")[1].split("\n")[0]
    assert list(Path(logdir).rglob("events.out.tfevents.*"))  # the command points at the logs where they are now


def test_a_model_is_never_overwritten(tmp_path):
    manager = SavedModelIOManager(home=str(tmp_path))
    for attempt in range(2):
        staging = tmp_path / f"staging{attempt}"
        staging.mkdir()
        context = build_output_context(asset_key=AssetKey("trained_model"), partition_key="2024-03-01")
        if attempt == 0:
            manager.handle_output(context, Model(uri=str(staging), partition="2024-03-01", run_id="run-a"))
        else:
            with pytest.raises(FileExistsError, match="never overwritten"):
                manager.handle_output(context, Model(uri=str(staging), partition="2024-03-01", run_id="run-a"))
    assert (tmp_path / "artifacts/trained_model/2024-03-01/run-a/artifact.json").is_file()


def train_with_module(pipeline, instance, tmp_path, module):
    """Only trained_model, with `module`'s run_fn, on copies of the session pipeline's upstream artifacts."""
    home = tmp_path / "home"
    for asset in ("schema", "transform_graph", "best_hyperparameters"):
        shutil.copytree(pipeline["home"] / "artifacts" / asset, home / "artifacts" / asset)
    trainpipe = make_config(home, write_config(tmp_path / "cfg.yaml", module_file=str(module)))
    result = materialize(
        [examples, statistics, schema, transform_graph, best_hyperparameters, trained_model],
        selection=[trained_model],
        partition_key=DAYS[-1],
        resources=resources_for(trainpipe),
        instance=instance,
        raise_on_error=False,
    )
    return home, result


def test_run_fn_that_saves_nothing_fails_clearly(pipeline, instance, tmp_path):
    module = tmp_path / "lazy_module.py"
    module.write_text("def run_fn(fn_args):\n    print('training... not really')\n")
    home, result = train_with_module(pipeline, instance, tmp_path, module)
    assert not result.success
    assert f"run_fn in {module} returned without writing a SavedModel to fn_args.serving_model_dir" in failure_message(
        result
    )
    assert not list((home / "artifacts" / "trained_model").glob(f"{DAYS[-1]}/*"))


NAN_LOSS_MODULE = '''
import tensorflow as tf


def run_fn(fn_args):
    """Logs a NaN epoch loss the way Keras' TensorBoard callback does, and saves a model anyway."""
    with tf.summary.create_file_writer(fn_args.model_run_dir + "/train").as_default():
        tf.summary.scalar("epoch_loss", float("nan"), step=0)
    module = tf.Module()
    module.serve = tf.function(lambda x: {"y": x}, input_signature=[tf.TensorSpec([None], tf.string)])
    tf.saved_model.save(module, fn_args.serving_model_dir, signatures={"serving_default": module.serve})
'''


def test_a_nan_loss_fails_the_step_and_keeps_no_model(pipeline, instance, tmp_path):
    module = tmp_path / "nan_module.py"
    module.write_text(NAN_LOSS_MODULE)
    home, result = train_with_module(pipeline, instance, tmp_path, module)
    assert not result.success
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    message = failure_message(result)
    assert "trained to a non-finite loss ({'train_loss': nan})" in message and str(module) in message
    assert not list((home / "artifacts" / "trained_model").glob(f"{DAYS[-1]}/*"))
