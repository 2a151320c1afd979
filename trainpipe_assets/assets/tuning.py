"""`best_hyperparameters` (TFX Tuner): the module's tuner_fn searched with KerasTuner on the transformed window."""
import json
import time

from dagster import AssetExecutionContext, Failure, MetadataValue, Output, asset

from ..artifacts import Hyperparameters, Schema, TransformGraph
from ..atomic import write_text
from ..cache import fingerprint, function_fingerprint, reusable
from ..config import TrainpipeConfig
from ..module_api import FnArgs
from ..module_file import ModuleFileError, user_function
from ..retry import TRANSIENT_RETRY
from ..parallel_tuning import ParallelTuningError, search_in_parallel
from ..partitions import daily_partitions

CODE_VERSION = "tuning-v1"


def fixed_hyperparameters(values: dict) -> dict:
    """The config's hyperparameters as a keras_tuner.HyperParameters config, the shape run_fn receives from TFX."""
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for name, value in values.items():
        hp.Fixed(name, value)
    return hp.get_config()


def trials_markdown(trials) -> str:
    rows = ["| trial | score | hyperparameters |", "|---|---|---|"]
    for trial in trials:
        score = "failed" if trial.score is None else f"{trial.score:.4f}"
        rows.append(f"| {trial.trial_id} | {score} | {json.dumps(trial.hyperparameters.values, sort_keys=True)} |")
    return "\n".join(rows)


def fn_args_for(trainpipe: TrainpipeConfig, transform_graph: TransformGraph, schema: Schema, **fields) -> FnArgs:
    """TFX's FnArgs for the window: transformed train/eval files, schema, transform graph, steps, custom_config."""
    settings = trainpipe.settings
    files = transform_graph.transformed_examples.file_patterns
    return FnArgs(
        train_files=files["train"],
        eval_files=files["eval"],
        train_steps=settings.train_steps,
        eval_steps=settings.eval_steps,
        schema_path=str(schema.path),
        transform_graph_path=transform_graph.uri,
        custom_config=dict(settings.custom_config),
        **fields,
    )


@asset(
    partitions_def=daily_partitions,
    io_manager_key="artifact_io_manager",
    kinds={"tensorflow", "keras"},
    group_name="training",
    pool="training",
    retry_policy=TRANSIENT_RETRY,
    code_version=CODE_VERSION,
)
def best_hyperparameters(
    context: AssetExecutionContext, trainpipe: TrainpipeConfig, transform_graph: TransformGraph, schema: Schema
) -> Output[Hyperparameters]:
    """TFX Tuner: tuner_fn(fn_args) -> tuner.search(**fit_kwargs); best_hyperparameters.txt as TFX writes it."""
    settings = trainpipe.settings
    tuner_fn = None
    if settings.tuning.enabled:
        try:
            tuner_fn = user_function(trainpipe.module_file, "tuner_fn")
        except ModuleFileError as e:
            raise Failure(allow_retries=False, description=str(e)) from e
    key = fingerprint(
        CODE_VERSION, settings.tuning.model_dump(), settings.train_steps, settings.eval_steps, settings.custom_config,
        tuner_fn and function_fingerprint(tuner_fn), transform_graph.cache_key, schema.cache_key,
    )
    hit = reusable(context, key)
    if hit:
        return Output(hit[0], metadata=hit[1])
    staging = trainpipe.staging_dir("best_hyperparameters", context.partition_key, context.run.run_id)
    artifact = Hyperparameters(uri=str(staging), partition=context.partition_key, tuned=settings.tuning.enabled, cache_key=key)
    metadata = {"cache_key": key, "cached": False}
    if tuner_fn is None:
        config = fixed_hyperparameters(settings.tuning.hyperparameters)
        metadata["mode"] = "fixed (tuning.enabled: false)"
    else:
        tuner_steps = max(1, round(settings.train_steps * settings.tuning.steps_fraction))
        fn_args = fn_args_for(trainpipe, transform_graph, schema, working_dir=str(staging / "tuner"))
        fn_args.train_steps = tuner_steps
        started = time.perf_counter()
        workers = settings.tuning.num_parallel_trials
        if workers > 1:
            try:
                tuner = search_in_parallel(tuner_fn, trainpipe.module_file, fn_args, workers, staging / "workers")
            except ParallelTuningError as e:
                raise Failure(allow_retries=False, description=str(e)) from e
        else:
            result = tuner_fn(fn_args)
            result.tuner.search(**result.fit_kwargs)
            tuner = result.tuner
        metadata["user_code_seconds"] = time.perf_counter() - started
        metadata["parallel_trials"] = workers
        best = tuner.get_best_hyperparameters(1)
        if not best:
            raise Failure(allow_retries=False, description=f"tuner_fn's tuner finished no trial (module_file {trainpipe.module_file})")
        config = best[0].get_config()
        trials = tuner.oracle.get_best_trials(num_trials=len(tuner.oracle.trials))
        metadata.update({
            "mode": "tuned",
            "trials": MetadataValue.md(trials_markdown(trials)),
            "num_trials": len(trials),
            "best_score": float(trials[0].score) if trials and trials[0].score is not None else None,
            "tuner_train_steps": tuner_steps,
        })
    write_text(artifact.path, json.dumps(config))
    return Output(artifact, metadata={**metadata, "best_hyperparameters": MetadataValue.json(config.get("values", {}))})
