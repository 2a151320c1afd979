"""`statistics` (TFX StatisticsGen): a DatasetFeatureStatisticsList per split of a day's examples, computed with
pyarrow over the decoded tf.Examples, as tensorflow_metadata protos; in the metadata, the splits side by side with
their skew, histograms, and the drift from the previous day's statistics (found in the event log)."""

import datetime as dt
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from dagster import AssetExecutionContext, AssetRecordsFilter, MetadataValue, Output
from google.protobuf.message import DecodeError
from tensorflow_metadata.proto.v0 import statistics_pb2

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.artifacts import Examples, Statistics
from trainpipe_assets.core.example_reader import decode_examples, read_records
from trainpipe_assets.core.io_managers import ByDay
from trainpipe_assets.core.io_managers.artifact_dir import read_artifact
from trainpipe_assets.core.partitions import days_output, pipeline_asset
from trainpipe_assets.core.settings import TrainpipeConfig
from trainpipe_assets.core.step import Step
from trainpipe_assets.core.storage import write_bytes
from trainpipe_assets.data.statistics_gen.compare import common_stats_of, drift_max, skew_max
from trainpipe_assets.data.statistics_gen.plots import histograms_markdown
from trainpipe_assets.data.statistics_gen.tables import cell, drift_markdown, side_by_side_markdown

CODE_VERSION = "statistics-v2"  # v2: equi-width histograms in num_stats, skew and drift in the metadata
TOP_VALUES_KEPT = 1000  # enough to measure out-of-domain mass against a schema's string domains
HISTOGRAM_BUCKETS = 10  # TFDV's default num_histogram_buckets

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
        stats.histograms.append(_standard_histogram(finite, stats.min, stats.max))
        stats.histograms[0].num_nan = pc.sum(pc.is_nan(values)).as_py() or 0
    return stats


def _standard_histogram(finite: pa.Array, low: float, high: float) -> statistics_pb2.Histogram:
    """TFDV's STANDARD histogram: HISTOGRAM_BUCKETS equal-width buckets from min to max (one bucket when they are
    equal), the last bucket closed."""
    histogram = statistics_pb2.Histogram(type=statistics_pb2.Histogram.STANDARD)
    if high == low:
        histogram.buckets.add(low_value=low, high_value=high, sample_count=float(len(finite)))
        return histogram
    counts, edges = np.histogram(finite.to_numpy(zero_copy_only=False), bins=HISTOGRAM_BUCKETS, range=(low, high))
    for n, lo, hi in zip(counts, edges[:-1], edges[1:]):
        histogram.buckets.add(low_value=float(lo), high_value=float(hi), sample_count=float(n))
    return histogram


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
        name = cell(f.path.step[0])
        if f.HasField("num_stats"):
            n = f.num_stats
            rows.append(
                f"| {name} | {Stats.Type.Name(f.type)} | {missing} | {n.min:.4g} | {n.max:.4g} "
                f"| {n.mean:.4g} | {n.std_dev:.4g} | | |"
            )
        else:
            s = f.string_stats
            top = ", ".join(f"{cell(v.value)} ({v.frequency:.0f})" for v in s.top_values[:3])
            rows.append(f"| {name} | STRING | {missing} | | | | | {s.unique} | {top} |")
    return "\n".join(rows)


def previous_day_statistics(
    context: AssetExecutionContext, partition: Optional[str] = None
) -> tuple[Optional[str], Optional[dict], str]:
    """(the day before this partition (or `partition`), its statistics per split, or None and why not): the latest
    materialization of that partition in the event log, read from the folder its `path` metadata names."""
    partition = partition or context.partition_key
    try:
        day = (dt.date.fromisoformat(partition) - dt.timedelta(days=1)).isoformat()
    except ValueError:
        return None, None, f"no previous day: partition {partition!r} is not a date"
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=context.asset_key, asset_partitions=[day]), limit=1
    ).records
    if not records:
        return day, None, f"no previous day: {day} has no statistics materialization"
    path = md.value(records[0].asset_materialization.metadata, md.PATH)
    try:
        artifact = read_artifact(Path(str(path)))
        return day, {s: artifact.load(s).datasets[0] for s in artifact.splits}, ""
    except (OSError, ValueError, TypeError, KeyError, DecodeError) as e:  # deleted, or from other code
        return day, None, f"no previous day: the statistics of {day} could not be read from {path} ({e})"


@pipeline_asset(
    io_manager_key="artifact_io_manager",
    kinds={"tensorflow"},
    group_name="data",
    code_version=CODE_VERSION,
    single_run=True,
)
def statistics(context: AssetExecutionContext, trainpipe: TrainpipeConfig, examples: Examples) -> Output[ByDay]:
    """TFX StatisticsGen: counts, missing values, numeric moments, histograms and top string values per feature and
    split; the splits side by side with their skew, and the drift from the previous day. One artifact per day of the
    run (a range is one run)."""
    results: dict[str, tuple[Statistics, dict]] = {}
    computed: dict[str, dict] = {}  # this run's days, for the drift of the day after
    for day in context.partition_keys:
        day_examples = examples.only([day])
        step = Step(context, trainpipe, CODE_VERSION, partition=day)
        step.cache_key(day_examples.fingerprints)
        artifact = Statistics(**step.fields(), splits=day_examples.splits)
        datasets = {}
        for split in day_examples.splits:
            stats = statistics_for_split(day_examples.file_patterns[split], split)
            write_bytes(artifact.path(split), stats.SerializeToString())
            datasets[split] = stats.datasets[0]
        computed[day] = datasets
        results[day] = (artifact, step.metadata(_metadata(context, day, datasets, computed, day_examples.row_counts)))
    return days_output(context, trainpipe.home, results)


def _metadata(context, day: str, datasets: dict, computed: dict, row_counts: dict) -> dict:
    before = (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()
    if before in computed:  # computed earlier in this run: not in the event log until the run's output
        previous_day, previous, why_not = before, computed[before], ""
    else:
        previous_day, previous, why_not = previous_day_statistics(context, day)
    base = "train" if "train" in datasets else next(iter(datasets))
    datasets = {base: datasets[base], **datasets}  # base first in every table
    skew = skew_max(datasets, base)
    drift = drift_max(datasets, previous) if previous else None
    histograms = histograms_markdown(datasets, previous, previous_day or "", base)
    return {
        "statistics": MetadataValue.md(side_by_side_markdown(datasets, base)),
        **({"histograms": MetadataValue.md(histograms)} if histograms else {}),
        "drift": MetadataValue.md(drift_markdown(datasets, previous, previous_day) if previous else why_not),
        "previous_day": previous_day if previous else "none",
        **({"max_skew_linf": skew} if skew is not None else {}),
        **({"max_drift_linf": drift} if drift is not None else {}),
        **{md.rows_key(s): n for s, n in row_counts.items()},
    }
