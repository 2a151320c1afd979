"""`statistics` (TFX StatisticsGen): a DatasetFeatureStatisticsList per split of a day's examples, computed with
pyarrow over the decoded tf.Examples, as tensorflow_metadata protos."""

import pyarrow as pa
import pyarrow.compute as pc
from dagster import AssetExecutionContext, MetadataValue, Output
from tensorflow_metadata.proto.v0 import statistics_pb2

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.artifacts import Examples, Statistics
from trainpipe_assets.core.metadata import preview
from trainpipe_assets.core.partitions import pipeline_asset
from trainpipe_assets.core.records import decode_examples, read_records
from trainpipe_assets.core.settings import TrainpipeConfig
from trainpipe_assets.core.step import Step
from trainpipe_assets.core.storage import write_bytes

CODE_VERSION = "statistics-v1"
TOP_VALUES_KEPT = 1000  # enough to measure out-of-domain mass against a schema's string domains

Stats = statistics_pb2.FeatureNameStatistics


def _common_stats(column: pa.Array, num_examples: int) -> statistics_pb2.CommonStatistics:
    lengths = pc.fill_null(pc.list_value_length(column), 0)
    present = pc.greater(lengths, 0)
    non_missing = pc.sum(present).as_py() or 0
    present_lengths = lengths.filter(present)
    common = statistics_pb2.CommonStatistics(
        num_non_missing=non_missing, num_missing=num_examples - non_missing, tot_num_values=pc.sum(lengths).as_py() or 0
    )
    if non_missing:
        bounds = pc.min_max(present_lengths)
        common.min_num_values = bounds["min"].as_py()
        common.max_num_values = bounds["max"].as_py()
        common.avg_num_values = common.tot_num_values / non_missing
    return common


def _numeric_stats(values: pa.Array, common: statistics_pb2.CommonStatistics) -> statistics_pb2.NumericStatistics:
    stats = statistics_pb2.NumericStatistics(common_stats=common)
    values = pc.cast(values, pa.float64())
    finite = values.filter(pc.is_finite(values))
    if len(finite):
        bounds = pc.min_max(finite)
        stats.min, stats.max = bounds["min"].as_py(), bounds["max"].as_py()
        stats.mean = pc.mean(finite).as_py()
        stats.std_dev = pc.stddev(finite).as_py() or 0.0
        stats.median = pc.approximate_median(finite).as_py()
        stats.num_zeros = pc.sum(pc.equal(finite, 0)).as_py() or 0
    return stats


def _string_stats(values: pa.Array, common: statistics_pb2.CommonStatistics) -> statistics_pb2.StringStatistics:
    stats = statistics_pb2.StringStatistics(common_stats=common)
    if len(values):
        counts = pc.value_counts(values)
        frame = sorted(
            zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()), key=lambda vc: (-vc[1], vc[0])
        )
        stats.unique = len(frame)
        stats.avg_length = (pc.sum(pc.binary_length(values)).as_py() or 0) / len(values)
        for value, count in frame[:TOP_VALUES_KEPT]:
            stats.top_values.add(value=value.decode("utf-8", "replace"), frequency=count)
            stats.rank_histogram.buckets.add(label=value.decode("utf-8", "replace"), sample_count=count)
    return stats


def feature_statistics(batch: pa.RecordBatch, name: str) -> statistics_pb2.DatasetFeatureStatistics:
    """One split's statistics: counts, missing, value counts, min/max/mean/std, top string values."""
    dataset = statistics_pb2.DatasetFeatureStatistics(name=name, num_examples=batch.num_rows)
    for feature_name, column in zip(batch.schema.names, batch.columns):
        feature = dataset.features.add()
        feature.path.step.append(feature_name)
        if pa.types.is_null(column.type):  # the feature is in every example but never has a value
            feature.type = Stats.STRING
            empty = statistics_pb2.CommonStatistics(num_missing=batch.num_rows)
            feature.string_stats.CopyFrom(statistics_pb2.StringStatistics(common_stats=empty))
            continue
        value_type = column.type.value_type
        common = _common_stats(column, batch.num_rows)
        values = pc.list_flatten(column)
        if pa.types.is_integer(value_type) or pa.types.is_floating(value_type):
            feature.type = Stats.INT if pa.types.is_integer(value_type) else Stats.FLOAT
            feature.num_stats.CopyFrom(_numeric_stats(values, common))
        elif pa.types.is_null(value_type):
            feature.type = Stats.STRING
            feature.string_stats.CopyFrom(statistics_pb2.StringStatistics(common_stats=common))
        else:
            feature.type = Stats.STRING
            feature.string_stats.CopyFrom(_string_stats(values, common))
    return dataset


def statistics_for_split(file_patterns: list[str], name: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    records = read_records(file_patterns)
    batch = decode_examples(records) if records else pa.RecordBatch.from_pydict({})
    return statistics_pb2.DatasetFeatureStatisticsList(datasets=[feature_statistics(batch, name)])


def common_stats_of(feature: Stats) -> statistics_pb2.CommonStatistics:
    return feature.num_stats.common_stats if feature.HasField("num_stats") else feature.string_stats.common_stats


def _cell(text: str) -> str:
    return " ".join(preview(text).split()).replace("|", "\\|")


def markdown_table(dataset: statistics_pb2.DatasetFeatureStatistics) -> str:
    """A table a person reads in the Dagster UI; names and values from the data are cut to a preview."""
    rows = [
        "| feature | type | missing | min | max | mean | std | unique | top values |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in dataset.features:
        common = common_stats_of(f)
        total = common.num_missing + common.num_non_missing
        missing = f"{common.num_missing} ({common.num_missing / total:.1%})" if total else "0"
        name = _cell(f.path.step[0])
        if f.HasField("num_stats"):
            n = f.num_stats
            rows.append(
                f"| {name} | {Stats.Type.Name(f.type)} | {missing} | {n.min:.4g} | {n.max:.4g} "
                f"| {n.mean:.4g} | {n.std_dev:.4g} | | |"
            )
        else:
            s = f.string_stats
            top = ", ".join(f"{_cell(v.value)} ({v.frequency:.0f})" for v in s.top_values[:3])
            rows.append(f"| {name} | STRING | {missing} | | | | | {s.unique} | {top} |")
    return "\n".join(rows)


@pipeline_asset(
    io_manager_key="artifact_io_manager", kinds={"tensorflow"}, group_name="data", code_version=CODE_VERSION
)
def statistics(context: AssetExecutionContext, trainpipe: TrainpipeConfig, examples: Examples) -> Output[Statistics]:
    """TFX StatisticsGen: counts, missing values, numeric moments and top string values per feature and split."""
    step = Step(context, trainpipe, CODE_VERSION)
    step.cache_key(examples.fingerprints)
    artifact = Statistics(**step.fields(), splits=examples.splits)
    tables = {}
    for split in examples.splits:
        stats = statistics_for_split(examples.file_patterns[split], split)
        write_bytes(artifact.path(split), stats.SerializeToString())
        tables[f"statistics_{split}"] = MetadataValue.md(markdown_table(stats.datasets[0]))
    return step.output(artifact, {**tables, **{md.rows_key(s): n for s, n in examples.row_counts.items()}})
