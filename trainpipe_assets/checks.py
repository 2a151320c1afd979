"""Asset checks, all blocking: `examples_valid` (TFX ExampleValidator), `model_blessed` and `infra_blessed` (no push
of a model the Evaluator or the InfraValidator rejected)."""

import warnings

from dagster import AssetCheckExecutionContext, AssetCheckResult, MetadataValue, PreviewWarning, asset_check

from .anomalies import anomalies_markdown, find_anomalies
from .artifacts import InfraValidation, ModelEvaluation, Statistics
from .assets.evaluation import model_evaluation as model_evaluation_asset
from .assets.infra_validation import infra_validation as infra_validation_asset
from .assets.statistics import statistics as statistics_asset
from .config import TrainpipeConfig
from .history import latest_materialization, materialized_path
from .io_managers.artifact_dir import read_artifact
from .partitions import daily_partitions


warnings.filterwarnings("ignore", category=PreviewWarning, message=".*partitions_def on an AssetCheckSpec")


@asset_check(asset=statistics_asset, name="examples_valid", blocking=True, partitions_def=daily_partitions)
def examples_valid(
    context: AssetCheckExecutionContext, trainpipe: TrainpipeConfig, statistics: Statistics
) -> AssetCheckResult:
    """A day's statistics against the latest materialized schema: missing/unexpected features, type changes,
    out-of-domain strings and missing values. Blocking: a day with anomalies feeds nothing downstream."""
    record = latest_materialization(context.instance, "schema")
    if record is None:
        return AssetCheckResult(passed=True, metadata={"anomalies": 0}, description="no schema materialized yet: nothing to check against")
    schema = read_artifact(materialized_path(record))
    found = []
    for split in statistics.splits:
        found += find_anomalies(statistics.load(split).datasets[0], schema.load(), trainpipe.settings.max_out_of_domain_fraction)
    return AssetCheckResult(
        passed=not found,
        metadata={
            "anomalies": len(found),
            "anomaly_table": MetadataValue.md(anomalies_markdown(found)),
            "schema": MetadataValue.path(schema.uri),
            "schema_partition": schema.partition,
        },
        description=f"{len(found)} anomalies against schema {schema.partition}" if found else f"matches schema {schema.partition}",
    )


@asset_check(asset=model_evaluation_asset, name="model_blessed", blocking=True, partitions_def=daily_partitions)
def model_blessed(context: AssetCheckExecutionContext, model_evaluation: ModelEvaluation) -> AssetCheckResult:
    """Blocking: a model the Evaluator did not bless is never pushed."""
    report = model_evaluation.report()
    return AssetCheckResult(
        passed=model_evaluation.blessed,
        metadata={"reasons": MetadataValue.md("\n".join(f"- {r}" for r in report["reasons"])), "candidate": MetadataValue.path(model_evaluation.candidate_uri)},
        description="; ".join(report["reasons"]),
    )


@asset_check(asset=infra_validation_asset, name="infra_blessed", blocking=True, partitions_def=daily_partitions)
def infra_blessed(context: AssetCheckExecutionContext, infra_validation: InfraValidation) -> AssetCheckResult:
    """Blocking: a model that did not load or answer in the sandboxed server is never pushed."""
    report = infra_validation.report()
    last = report["attempts"][-1]
    return AssetCheckResult(
        passed=infra_validation.blessed,
        metadata={"attempts": len(report["attempts"]), "reason": last["reason"], "candidate": MetadataValue.path(infra_validation.candidate_uri)},
        description=last["reason"],
    )
