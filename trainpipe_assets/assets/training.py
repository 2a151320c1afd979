"""`trained_model` (TFX Trainer): the module's run_fn with TFX's FnArgs; every model kept under its run id."""
import time

import numpy as np
from dagster import AssetExecutionContext, Failure, MetadataValue, Output, asset

from ..artifacts import Hyperparameters, Model, Schema, TransformGraph
from ..cache import fingerprint, function_fingerprint, reusable
from ..config import TrainpipeConfig
from ..module_file import ModuleFileError, user_function
from ..retry import TRANSIENT_RETRY
from ..partitions import daily_partitions
from ..tensorboard_logs import final_epoch_scalars
from .tuning import fn_args_for

CODE_VERSION = "training-v1"


def folder_size(path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def parameter_count(saved_model_dir) -> int:
    """Values in the SavedModel's variables checkpoint (weights; the transform graph's tables are assets)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(saved_model_dir / "variables" / "variables"))
    shapes = reader.get_variable_to_shape_map()
    return int(sum(np.prod(shape) for name, shape in shapes.items() if not name.startswith("_CHECKPOINTABLE_OBJECT_GRAPH")))


@asset(
    partitions_def=daily_partitions,
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
    try:
        run_fn = user_function(trainpipe.module_file, "run_fn")
    except ModuleFileError as e:
        raise Failure(allow_retries=False, description=str(e)) from e
    settings = trainpipe.settings
    key = fingerprint(
        CODE_VERSION, function_fingerprint(run_fn), settings.train_steps, settings.eval_steps, settings.custom_config,
        transform_graph.cache_key, schema.cache_key, best_hyperparameters.cache_key,
    )
    hit = reusable(context, key)
    if hit:
        return Output(hit[0], metadata=hit[1])
    staging = trainpipe.staging_dir("trained_model", context.partition_key, context.run.run_id)
    model = Model(uri=str(staging), partition=context.partition_key, run_id=context.run.run_id, cache_key=key)
    hyperparameters = best_hyperparameters.load()
    started = time.perf_counter()
    run_fn(
        fn_args_for(
            trainpipe,
            transform_graph,
            schema,
            working_dir=str(staging),
            serving_model_dir=str(model.serving_model_dir),
            model_run_dir=str(model.model_run_dir),
            hyperparameters=hyperparameters,
        )
    )
    user_seconds = time.perf_counter() - started
    if not (model.serving_model_dir / "saved_model.pb").is_file():
        raise Failure(
            allow_retries=False,
            description=f"run_fn in {trainpipe.module_file} returned without writing a SavedModel to "
            f"fn_args.serving_model_dir ({model.serving_model_dir})"
        )
    metrics = final_epoch_scalars(model.model_run_dir)
    return Output(
        model,
        metadata={
            **{f"metric_{k}": v for k, v in metrics.items()},
            "parameters": parameter_count(model.serving_model_dir),
            "size_bytes": folder_size(model.serving_model_dir),
            "train_steps": trainpipe.settings.train_steps,
            "user_code_seconds": user_seconds,
            "cache_key": key,
            "cached": False,
            "hyperparameters": MetadataValue.json(hyperparameters.get("values", {})),
            "example_partitions": MetadataValue.json(transform_graph.analyzed_partitions),
            # Dagster keeps one pointer for a multi-partition input, so the lineage is recorded here in full.
            "lineage": MetadataValue.json({
                "examples": transform_graph.example_fingerprints,
                "schema": schema.uri,
                "transform_graph": transform_graph.uri,
                "hyperparameters": best_hyperparameters.uri,
            }),
            "transform_graph": MetadataValue.path(transform_graph.uri),
        },
    )
