"""Jobs, each with the executor its shape calls for (measured here: 7 chained TF assets take 10 s in-process, 62 s
with the default multiprocess executor, which re-imports TensorFlow per step, 23 s with a forkserver preloading it).

ingest_job and training_job are chains, so they run in one process. batch_inference_job's two steps are independent
(both read the day's examples and a served model), so they run side by side in processes forked from a server that
has TensorFlow and the definitions imported already. Their partitions come from the selected assets."""

from dagster import AssetSelection, define_asset_job, in_process_executor, multiprocess_executor

INGEST_ASSETS = ("examples", "statistics")
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

PARALLEL_STEPS = multiprocess_executor.configured(
    {
        "max_concurrent": 2,
        "start_method": {"forkserver": {"preload_modules": ["tensorflow", "trainpipe_assets.definitions"]}},
    },
    name="forkserver_multiprocess_executor",
)

ingest_job = define_asset_job(
    "ingest_job",
    selection=AssetSelection.assets(*INGEST_ASSETS),
    executor_def=in_process_executor,
    description="One day: examples -> statistics -> examples_valid (blocking).",
)

training_job = define_asset_job(
    "training_job",
    selection=AssetSelection.assets(*TRAINING_ASSETS),
    executor_def=in_process_executor,
    description="One training window ending at the partition: schema -> transform_graph -> best_hyperparameters -> "
    "trained_model -> model_evaluation (model_blessed, blocking) -> infra_validation (infra_blessed, blocking) "
    "-> pushed_model.",
)

batch_inference_job = define_asset_job(
    "batch_inference_job",
    selection=AssetSelection.assets(*BATCH_INFERENCE_ASSETS),
    executor_def=PARALLEL_STEPS,
    description="One day scored by the deployed model: batch_predictions (TFX BulkInferrer, the model serving now) and "
    "serving_model_performance (the model serving that day against the monitoring floors, for labelled days).",
)
