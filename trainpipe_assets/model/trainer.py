"""`trained_model` (TFX Trainer): the module's run_fn with TFX's FnArgs; every model kept under its run id.

With `training: {workers: N}` (N > 1) run_fn runs in N processes with TF_CONFIG set (training_workers.py; with Celery
the ranks other than the chief are tasks on `training.queue`); the chief's SavedModel is kept, with every process's
log under `workers/` and the Celery worker of every rank in `training_ranks_on`."""

import math
import time

import numpy as np
from dagster import AssetExecutionContext, MetadataValue, Output

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.artifacts import Hyperparameters, Model, Schema, TransformGraph
from trainpipe_assets.core.cache import function_fingerprint
from trainpipe_assets.core.faults import kill_point
from trainpipe_assets.core.io_managers import artifact_path
from trainpipe_assets.core.partitions import pipeline_asset
from trainpipe_assets.core.retry import TRANSIENT_RETRY
from trainpipe_assets.core.settings import TrainpipeConfig
from trainpipe_assets.core.step import Step, fail
from trainpipe_assets.model.tensorboard_logs import epoch_series, learning_curves_markdown
from trainpipe_assets.model.training_workers import DistributedTrainingError, train_in_processes
from trainpipe_assets.module import keras2_compat
from trainpipe_assets.module.api import fn_args_for
from trainpipe_assets.module.loader import load_module_file, module_function
from trainpipe_assets.scaleout.members import engine_for

CODE_VERSION = "training-v1"


def folder_size(path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def parameter_count(saved_model_dir) -> int:
    """Values in the SavedModel's variables checkpoint (weights; the transform graph's tables are assets)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(saved_model_dir / "variables" / "variables"))
    shapes = reader.get_variable_to_shape_map()
    return int(
        sum(np.prod(shape) for name, shape in shapes.items() if not name.startswith("_CHECKPOINTABLE_OBJECT_GRAPH"))
    )


@pipeline_asset(
    io_manager_key="saved_model_io_manager",
    kinds={"tensorflow", "keras"},
    group_name="training",
    pool="training",
    retry_policy=TRANSIENT_RETRY,
    code_version=CODE_VERSION,
)
def trained_model(
    context: AssetExecutionContext,
    trainpipe: TrainpipeConfig,
    transform_graph: TransformGraph,
    schema: Schema,
    best_hyperparameters: Hyperparameters,
) -> Output[Model]:
    """TFX Trainer: run_fn(fn_args) writes a SavedModel to fn_args.serving_model_dir and logs to model_run_dir."""
    run_fn = module_function(trainpipe, "run_fn")
    settings = trainpipe.settings
    workers = settings.training.workers
    step = Step(context, trainpipe, CODE_VERSION)
    if reused := step.reuse(
        function_fingerprint(run_fn),
        settings.train_steps,
        settings.eval_steps,
        settings.custom_config,
        transform_graph.cache_key,
        schema.cache_key,
        best_hyperparameters.cache_key,
        *([f"training_workers={workers}"] if workers > 1 else []),  # a key of its own; 1 keeps the earlier keys
    ):
        return reused
    staging = step.staging
    model = Model(**step.fields(), run_id=context.run.run_id)
    hyperparameters = best_hyperparameters.load()
    started = time.perf_counter()
    keras2_compat.used.clear()
    fn_args = fn_args_for(
        trainpipe,
        transform_graph,
        schema,
        working_dir=str(staging),
        serving_model_dir=str(model.serving_model_dir),
        model_run_dir=str(model.model_run_dir),
        hyperparameters=hyperparameters,
    )
    worker_logs, ranks_on = {}, {}
    if workers > 1:
        context.log.info(f"training with {workers} processes (a chief and {workers - 1} worker(s)) with TF_CONFIG set")
        try:
            reported = train_in_processes(
                trainpipe.module_file,
                fn_args,
                workers,
                staging / "workers",
                engine=engine_for(settings.execution, "trained_model", settings.training.queue),
                start_timeout=settings.training.start_timeout,
                advertise_host=settings.training.advertise_host,
                log=context.log.info,
            )
        except DistributedTrainingError as e:
            raise fail(f"distributed training of run_fn in {trainpipe.module_file} failed: {e}") from e
        keras2_compat.used.update(reported["keras2_compat"])
        ranks_on = reported["workers"]
        final = artifact_path(trainpipe.home, context.asset_key, step.partition) / context.run.run_id
        worker_logs = {str(i): str(final / "workers" / f"worker-{i}.log") for i in range(workers)}
    else:
        with keras2_compat.keras2_saving():
            run_fn(fn_args)
    user_seconds = time.perf_counter() - started
    kill_point("training")
    if not (model.serving_model_dir / "saved_model.pb").is_file():
        raise fail(
            f"run_fn in {trainpipe.module_file} returned without writing a SavedModel to "
            f"fn_args.serving_model_dir ({model.serving_model_dir})"
        )
    series = epoch_series(model.model_run_dir)
    # Where the logs will be once the IO manager has moved the model into place (artifacts/<asset>/<day>/<run id>/).
    final_run_dir = trainpipe.artifacts_dir / "trained_model" / context.partition_key / context.run.run_id / "model_run"
    metrics = {k: points[-1][1] for k, points in series.items() if points}
    compat = sorted(
        keras2_compat.used | getattr(load_module_file(trainpipe.module_file), "__trainpipe_compat__", set())
    )
    not_finite = {k: v for k, v in metrics.items() if k.endswith("loss") and not math.isfinite(v)}
    if not_finite:
        raise fail(
            f"run_fn in {trainpipe.module_file} trained to a non-finite loss ({not_finite}): the model is not kept. "
            "Look for NaN or infinite inputs the transform let through, or a learning rate too large."
        )
    return step.output(
        model,
        {
            md.TRAIN_METRICS: MetadataValue.json(metrics),
            **{md.metric_key(k): v for k, v in metrics.items()},
            "parameters": parameter_count(model.serving_model_dir),
            "size_bytes": folder_size(model.serving_model_dir),
            "train_steps": trainpipe.settings.train_steps,
            "training_workers": workers,
            **({"training_worker_logs": MetadataValue.json(worker_logs)} if worker_logs else {}),
            **({"training_ranks_on": MetadataValue.json(ranks_on)} if ranks_on else {}),  # rank -> Celery worker
            "user_code_seconds": user_seconds,
            md.HYPERPARAMETERS: MetadataValue.json(hyperparameters.get("values", {})),
            md.EXAMPLE_PARTITIONS: MetadataValue.json(transform_graph.analyzed_partitions),
            # Dagster keeps one pointer for a multi-partition input, so the lineage is recorded here in full.
            md.LINEAGE: MetadataValue.json(
                {
                    "examples": transform_graph.example_fingerprints,
                    "schema": schema.uri,
                    "transform_graph": transform_graph.uri,
                    "hyperparameters": best_hyperparameters.uri,
                }
            ),
            "transform_graph": MetadataValue.path(transform_graph.uri),
            # TensorBoard on this model's logs, and its learning curves right here.
            "tensorboard": MetadataValue.md(f"```\ntensorboard --logdir {final_run_dir}\n```"),
            **({"learning_curves": MetadataValue.md(curves)} if (curves := learning_curves_markdown(series)) else {}),
            **({"keras2_compat": MetadataValue.json(compat)} if compat else {}),
        },
    )
