"""Jobs, each with the executor its shape calls for, unless the settings' `execution.executor` names one for all.

Measured here: 7 chained TF assets take 10 s in-process, 62 s with the default multiprocess executor, which re-imports
TensorFlow per step, 23 s with a forkserver preloading it. So by default ingest_job and training_job, which are chains,
run in one process, and batch_inference_job's two independent steps run side by side in processes forked from a server
that has TensorFlow and the definitions imported already. With `execution.executor: celery` every step is a Celery
task (dagster-celery) on the queue `execution.queues` gives its asset (default `dagster`): data steps on CPU machines,
tuning and training on GPU machines. A worker runs a step by importing `trainpipe_assets.definitions` (the job's
origin) with its own TRAINPIPE_HOME, TRAINPIPE_CONFIG and DAGSTER_HOME, so every machine needs the same settings file,
the shared TRAINPIPE_HOME and an instance whose storage is the shared PostgreSQL (README "Scaling out"; tested in
trainpipe_assets_tests/orchestration/test_cluster.py). Partitions come from the selected assets."""

from dagster import AssetSelection, define_asset_job, in_process_executor, multiprocess_executor

from trainpipe_assets.core.settings import ExecutionSettings

INGEST_ASSETS = ("examples", "statistics", "example_anomalies")
TRAINING_ASSETS = (
    "schema",
    "transform_graph",
    "best_hyperparameters",
    "trained_model",
    "model_evaluation",
    "infra_validation",
    "pushed_model",
)
BATCH_INFERENCE_ASSETS = ("batch_predictions", "serving_model_performance")
SERVED_TRAFFIC_ASSETS = ("served_traffic",)
DEFAULT_QUEUE = "dagster"  # dagster-celery's default queue
QUEUE_TAG = "dagster-celery/queue"

PARALLEL_STEPS = multiprocess_executor.configured(
    {
        "max_concurrent": 2,
        "start_method": {"forkserver": {"preload_modules": ["tensorflow", "trainpipe_assets.definitions"]}},
    },
    name="forkserver_multiprocess_executor",
)


def queue_tags(execution: ExecutionSettings, asset_name: str) -> dict[str, str]:
    """The op tags that put an asset's step (and its checks') on its Celery queue; none outside Celery mode."""
    if execution.executor != "celery":
        return {}
    return {QUEUE_TAG: execution.queues.get(asset_name, DEFAULT_QUEUE)}


def configured_executor(execution: ExecutionSettings):
    if execution.executor == "celery":
        try:
            from dagster_celery import celery_executor
        except ImportError as e:
            raise ImportError(
                "execution.executor: celery needs dagster-celery: pip install 'trainpipe_assets[cluster]'"
            ) from e

        config = {"broker": execution.broker}
        if execution.backend:
            config["backend"] = execution.backend
        return celery_executor.configured(config, name="celery_executor")
    if execution.executor == "multiprocess":
        return PARALLEL_STEPS
    if execution.executor == "in_process":
        return in_process_executor
    return None


def build_jobs(execution: ExecutionSettings) -> list:
    chosen = configured_executor(execution)
    return [
        define_asset_job(
            "ingest_job",
            selection=AssetSelection.assets(*INGEST_ASSETS),
            executor_def=chosen or in_process_executor,
            description="A day, or a range of days in one run: examples -> statistics -> example_anomalies (each day's "
            "verdict; the blocking examples_valid check fails the run when a day failed, after every day was written).",
        ),
        define_asset_job(
            "training_job",
            selection=AssetSelection.assets(*TRAINING_ASSETS),
            executor_def=chosen or in_process_executor,
            description="One training window ending at the partition: schema -> transform_graph -> "
            "best_hyperparameters -> trained_model -> model_evaluation (model_blessed, blocking) -> infra_validation "
            "(infra_blessed, blocking) -> pushed_model.",
        ),
        define_asset_job(
            "batch_inference_job",
            selection=AssetSelection.assets(*BATCH_INFERENCE_ASSETS),
            executor_def=chosen or PARALLEL_STEPS,
            description="One day scored by the deployed model: batch_predictions (TFX BulkInferrer, the model serving "
            "now) and serving_model_performance (the model serving that day against the monitoring floors, for "
            "labelled days).",
        ),
        define_asset_job(
            "served_traffic_job",
            selection=AssetSelection.assets(*SERVED_TRAFFIC_ASSETS),
            executor_def=chosen or in_process_executor,
            description="One day of captured traffic (trainpipe serve --capture-dir): served_traffic, the served "
            "features' skew from the serving model's training window, its predictions and live metrics. Run it "
            "before batch_inference_job for serving_model_performance to count the live metrics.",
        ),
    ]
