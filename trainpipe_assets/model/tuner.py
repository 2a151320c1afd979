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
from trainpipe_assets.model.tuning_workers import LOOPBACK, ParallelTuningError, Search, search_in_parallel
from trainpipe_assets.module import keras2_compat
from trainpipe_assets.module.api import fn_args_for
from trainpipe_assets.module.loader import module_function
from trainpipe_assets.scaleout.members import engine_for

CODE_VERSION = "tuning-v1"


def fixed_hyperparameters(values: dict) -> dict:
    """The config's hyperparameters as a keras_tuner.HyperParameters config, the shape run_fn receives from TFX."""
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for name, value in values.items():
        hp.Fixed(name, value)
    return hp.get_config()


def trial_rows(trials, ran_by: dict[str, str]) -> list[dict]:
    """Every trial, best first: its id, score (None: failed), the worker that ran it and its hyperparameters."""
    return [
        {
            "trial_id": t.trial_id,
            "score": None if t.score is None else float(t.score),
            "worker": ran_by.get(t.trial_id, "chief"),  # not in ran_by: the search ran in this process
            "status": str(t.status),
            **({"message": t.message} if t.message and t.score is None else {}),
            "hyperparameters": t.hyperparameters.values,
        }
        for t in trials
    ]


def trials_markdown(rows: list[dict], objective: str) -> str:
    """One row per trial (best first), one column per hyperparameter, the objective named, the best trial marked."""
    names = sorted({name for row in rows for name in row["hyperparameters"]})
    lines = [
        f"| trial | score ({objective}) | worker | {' | '.join(names)} |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for i, row in enumerate(rows):
        failed = "failed" + (f" ({row['message']})" if row.get("message") else "")
        score = failed if row["score"] is None else f"{row['score']:.4g}"
        trial = f"**{row['trial_id']} (best)**" if i == 0 and row["score"] is not None else row["trial_id"]
        values = " | ".join(str(row["hyperparameters"].get(name, "")) for name in names)
        lines.append(f"| {trial} | {score} | {row['worker']} | {values} |")
    return "\n".join(lines)


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
        tuning = settings.tuning
        workers, ran_by = tuning.num_parallel_trials, {}
        if workers > 1:
            search = _distributed_search(context, trainpipe, tuner_fn, fn_args, staging / "workers")
            tuner, ran_by = search.tuner, search.ran_by
            metadata["tuning_workers"] = MetadataValue.json(search.workers)  # KerasTuner tuner id -> worker
            if search.failed:
                metadata["failed_workers"] = MetadataValue.json(search.failed)
            if search.lost_trials:
                metadata["lost_trials"] = MetadataValue.json(search.lost_trials)
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
        rows = trial_rows(trials, ran_by)
        goal = tuner.oracle.objective
        objective = f"{getattr(goal, 'name', goal)}, {getattr(goal, 'direction', '')}".rstrip(", ")
        metadata.update(
            {
                "mode": "tuned",
                "objective": objective,
                "trials": MetadataValue.md(trials_markdown(rows, objective)),
                "trials_json": MetadataValue.json(rows),
                "num_trials": len(trials),
                "best_score": float(trials[0].score) if trials and trials[0].score is not None else None,
                "tuner_train_steps": tuner_steps,
            }
        )
    write_text(artifact.path, json.dumps(config))
    return step.output(artifact, {**metadata, "best_hyperparameters": MetadataValue.json(config.get("values", {}))})


def _distributed_search(context, trainpipe: TrainpipeConfig, tuner_fn, fn_args, log_dir) -> Search:
    """KerasTuner's distributed mode: this step serves the oracle to `num_parallel_trials` workers, local processes or
    Celery tasks on `tuning.queue` (tuning_workers.py)."""
    settings = trainpipe.settings
    tuning = settings.tuning
    engine = engine_for(settings.execution, "best_hyperparameters", tuning.queue)
    if engine and tuning.oracle_bind_host in LOOPBACK:
        context.log.warning(
            f"tuning.oracle_bind_host is {tuning.oracle_bind_host}: only Celery workers on this machine can reach the "
            "oracle (0.0.0.0 accepts other hosts)"
        )
    try:
        with keras2_compat.keras2_saving():
            search = search_in_parallel(
                tuner_fn,
                trainpipe.module_file,
                fn_args,
                tuning.num_parallel_trials,
                log_dir,
                engine=engine,
                bind_host=tuning.oracle_bind_host,
                advertise=tuning.oracle_advertise_host,
                start_timeout=tuning.start_timeout,
                log=context.log.info,
            )
    except ParallelTuningError as e:
        raise fail(str(e)) from e
    for name, what in search.failed.items():
        context.log.warning(f"tuning worker {name} {what}")
    return search
