"""`best_hyperparameters` (TFX Tuner): the module's tuner_fn searched with KerasTuner on the transformed window."""

import json
import time

from dagster import AssetExecutionContext, MetadataValue, Output

from trainpipe_assets.core.artifacts import Hyperparameters, Schema, TransformGraph
from trainpipe_assets.core.cache import function_fingerprint
from trainpipe_assets.core.faults import kill_point
from trainpipe_assets.core.partitions import pipeline_asset
from trainpipe_assets.core.retry import TRANSIENT_RETRY
from trainpipe_assets.core.settings import TrainpipeConfig
from trainpipe_assets.core.step import Step, fail
from trainpipe_assets.core.storage import write_text
from trainpipe_assets.model.tuning_workers import ParallelTuningError, search_in_parallel
from trainpipe_assets.module import keras2_compat
from trainpipe_assets.module.api import fn_args_for
from trainpipe_assets.module.loader import module_function

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


@pipeline_asset(
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
    tuner_fn = module_function(trainpipe, "tuner_fn") if settings.tuning.enabled else None
    step = Step(context, trainpipe, CODE_VERSION)
    if reused := step.reuse(
        settings.tuning.model_dump(),
        settings.train_steps,
        settings.eval_steps,
        settings.custom_config,
        tuner_fn and function_fingerprint(tuner_fn),
        transform_graph.cache_key,
        schema.cache_key,
    ):
        return reused
    staging = step.staging
    artifact = Hyperparameters(**step.fields(), tuned=settings.tuning.enabled)
    metadata = {}
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
                with keras2_compat.keras2_saving():
                    tuner = search_in_parallel(tuner_fn, trainpipe.module_file, fn_args, workers, staging / "workers")
            except ParallelTuningError as e:
                raise fail(str(e)) from e
        else:
            with keras2_compat.keras2_saving():
                result = tuner_fn(fn_args)
                result.tuner.search(**result.fit_kwargs)
            tuner = result.tuner
        metadata["user_code_seconds"] = time.perf_counter() - started
        kill_point("tuning")
        metadata["parallel_trials"] = workers
        best = tuner.get_best_hyperparameters(1)
        if not best:
            raise fail(f"tuner_fn's tuner finished no trial (module_file {trainpipe.module_file})")
        config = best[0].get_config()
        trials = tuner.oracle.get_best_trials(num_trials=len(tuner.oracle.trials))
        metadata.update(
            {
                "mode": "tuned",
                "trials": MetadataValue.md(trials_markdown(trials)),
                "num_trials": len(trials),
                "best_score": float(trials[0].score) if trials and trials[0].score is not None else None,
                "tuner_train_steps": tuner_steps,
            }
        )
    write_text(artifact.path, json.dumps(config))
    return step.output(artifact, {**metadata, "best_hyperparameters": MetadataValue.json(config.get("values", {}))})
