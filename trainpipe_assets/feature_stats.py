"""TFX StatisticsGen's numbers, computed with pyarrow over decoded tf.Examples, as tensorflow_metadata protos."""
from __future__ import annotations

from typing import Iterable

import pyarrow as pa
import pyarrow.compute as pc
from tensorflow_metadata.proto.v0 import statistics_pb2

TOP_VALUES_KEPT = 1000  # enough to measure out-of-domain mass against a schema's string domains

Stats = statistics_pb2.FeatureNameStatistics


def decode_examples(serialized: list[bytes]) -> pa.RecordBatch:
    """tf.Examples -> one RecordBatch of list columns, types inferred from the data (tfx_bsl's decoder)."""
    from tfx_bsl.coders import example_coder

    return example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(serialized)


def read_records(file_patterns: Iterable[str], limit: int | None = None) -> list[bytes]:
    """The serialized records of gzipped TFRecord files, in order; the first `limit` of them if given."""
    import tensorflow as tf

    files = [f for pattern in file_patterns for f in tf.io.gfile.glob(pattern)]
    if not files:
        return []
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    if limit is not None:
        dataset = dataset.take(limit)
    dataset = dataset.batch(4096)  # one tensor per 4096 records: far fewer Python round trips
    return [r for batch in dataset for r in batch.numpy().tolist()]


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
        frame = sorted(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()), key=lambda vc: (-vc[1], vc[0]))
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


def markdown_table(dataset: statistics_pb2.DatasetFeatureStatistics) -> str:
    """A table a person reads in the Dagster UI."""
    rows = ["| feature | type | missing | min | max | mean | std | unique | top values |", "|---|---|---|---|---|---|---|---|---|"]
    for f in dataset.features:
        common = common_stats_of(f)
        total = common.num_missing + common.num_non_missing
        missing = f"{common.num_missing} ({common.num_missing / total:.1%})" if total else "0"
        if f.HasField("num_stats"):
            n = f.num_stats
            rows.append(f"| {f.path.step[0]} | {Stats.Type.Name(f.type)} | {missing} | {n.min:.4g} | {n.max:.4g} | {n.mean:.4g} | {n.std_dev:.4g} | | |")
        else:
            s = f.string_stats
            top = ", ".join(f"{v.value} ({v.frequency:.0f})" for v in s.top_values[:3])
            rows.append(f"| {f.path.step[0]} | STRING | {missing} | | | | | {s.unique} | {top} |")
    return "\n".join(rows)
