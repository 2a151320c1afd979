"""`statistics` (TFX StatisticsGen): a DatasetFeatureStatisticsList per split of a day's examples."""

from dagster import AssetExecutionContext, MetadataValue, Output, asset

from ..artifacts import Examples, Statistics
from ..atomic import write_bytes
from ..cache import fingerprint
from ..config import TrainpipeConfig
from ..feature_stats import markdown_table, statistics_for_split
from ..partitions import daily_partitions

CODE_VERSION = "statistics-v1"


@asset(
    partitions_def=daily_partitions,
    io_manager_key="artifact_io_manager",
    kinds={"tensorflow"},
    group_name="data",
    code_version=CODE_VERSION,
)
def statistics(context: AssetExecutionContext, trainpipe: TrainpipeConfig, examples: Examples) -> Output[Statistics]:
    """TFX StatisticsGen: counts, missing values, numeric moments and top string values per feature and split."""
    staging = trainpipe.staging_dir("statistics", context.partition_key, context.run.run_id)
    key = fingerprint(CODE_VERSION, examples.fingerprints)
    artifact = Statistics(uri=str(staging), partition=context.partition_key, splits=examples.splits, cache_key=key)
    tables = {}
    for split in examples.splits:
        stats = statistics_for_split(examples.file_patterns[split], split)
        write_bytes(artifact.path(split), stats.SerializeToString())
        tables[f"statistics_{split}"] = MetadataValue.md(markdown_table(stats.datasets[0]))
    return Output(artifact, metadata={**tables, **{f"rows_{s}": n for s, n in examples.row_counts.items()}, "cache_key": key})
