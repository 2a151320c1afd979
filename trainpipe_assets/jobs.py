"""Jobs. Both run in one process: their steps are a chain, and a process per step would re-import TensorFlow for
each (measured here: 7 chained TF assets take 10 s in-process, 62 s with the default multiprocess executor)."""
from dagster import AssetSelection, define_asset_job, in_process_executor

from .partitions import daily_partitions

ingest_job = define_asset_job(
    "ingest_job",
    selection=AssetSelection.assets("examples", "statistics"),
    partitions_def=daily_partitions,
    executor_def=in_process_executor,
    description="One day: examples -> statistics -> examples_valid (blocking).",
)

training_job = define_asset_job(
    "training_job",
    selection=AssetSelection.assets(
        "schema", "transform_graph", "best_hyperparameters", "trained_model", "model_evaluation", "infra_validation",
        "pushed_model",
    ),
    partitions_def=daily_partitions,
    executor_def=in_process_executor,
    description="One training window ending at the partition: schema -> transform_graph -> best_hyperparameters -> "
    "trained_model -> model_evaluation (model_blessed, blocking) -> infra_validation (infra_blessed, blocking) "
    "-> pushed_model.",
)
