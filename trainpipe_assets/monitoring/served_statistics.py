"""The statistics of served traffic: the rows decoded from captured requests as the RecordBatch tfx_bsl's decoder
makes (types from training where the served values allow), their statistics (StatisticsGen's own computation), and
the serving model's training window as one dataset (its days' statistics merged), to be compared with
data/statistics_gen/compare.py's measures."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pyarrow as pa
from tensorflow_metadata.proto.v0 import statistics_pb2

from trainpipe_assets.data.statistics_gen.compare import (
    Dataset,
    Stats,
    common_stats_of,
    features_of,
    rebucket,
)
from trainpipe_assets.data.statistics_gen.component import HISTOGRAM_BUCKETS, TOP_VALUES_KEPT, feature_statistics

ARROW_TYPES = {
    "INT": pa.large_list(pa.int64()),
    "FLOAT": pa.large_list(pa.float32()),
    "STRING": pa.large_list(pa.large_binary()),
}


def column_type(values: list, expected: Optional[str]) -> str:
    """STRING if any value is bytes; FLOAT if any is a float or training had floats (a JSON 3 for 3.0); else INT."""
    kinds = {type(v) for v in values}
    if bytes in kinds:
        return "STRING"
    return "FLOAT" if float in kinds or expected == "FLOAT" else "INT"


def served_batch(rows: list[dict], expected: dict[str, str]) -> pa.RecordBatch:
    """Feature rows as the RecordBatch tfx_bsl's decoder makes (list columns, null for an absent feature), with each
    feature's type from training where the served values allow it."""
    seen = {n for r in rows for n in r}
    names = [n for n in expected if n in seen] + sorted(seen - set(expected))  # the decoder's order: sorted
    columns = []
    for name in names:
        values = [v for r in rows for v in r.get(name) or []]
        kind = column_type(values, expected.get(name))

        def convert(v, kind=kind):
            return (str(v).encode() if not isinstance(v, bytes) else v) if kind == "STRING" else v

        cells = [None if name not in r else [convert(v) for v in r[name]] for r in rows]
        try:
            columns.append(pa.array(cells, type=ARROW_TYPES[kind]))
        except (pa.ArrowInvalid, OverflowError):  # an integer beyond int64
            columns.append(pa.array([c and [float(v) for v in c] for c in cells], type=ARROW_TYPES["FLOAT"]))
    return pa.RecordBatch.from_arrays(columns, names=names) if names else pa.RecordBatch.from_pydict({})


def served_statistics(rows: list[dict], expected: dict[str, str]) -> statistics_pb2.DatasetFeatureStatisticsList:
    return statistics_pb2.DatasetFeatureStatisticsList(
        datasets=[feature_statistics(served_batch(rows, expected), "served")]
    )


def feature_types(dataset: Optional[Dataset]) -> dict[str, str]:
    return {} if dataset is None else {n: Stats.Type.Name(f.type) for n, f in features_of(dataset).items()}








def _merge_numeric(parts: list[Stats], out: statistics_pb2.NumericStatistics) -> None:
    stats = [p.num_stats for p in parts if p.num_stats.histograms]
    weights = np.array([sum(b.sample_count for b in s.histograms[0].buckets) for s in stats])
    if not stats or not weights.sum():
        return
    means, stds = np.array([s.mean for s in stats]), np.array([s.std_dev for s in stats])
    out.mean = float(np.average(means, weights=weights))
    out.std_dev = float(np.sqrt(max(0.0, np.average(stds**2 + means**2, weights=weights) - out.mean**2)))
    out.min, out.max = min(s.min for s in stats), max(s.max for s in stats)
    out.num_zeros = sum(s.num_zeros for s in stats)
    histogram = out.histograms.add(type=statistics_pb2.Histogram.STANDARD)
    histogram.num_nan = sum(s.histograms[0].num_nan for s in stats)
    if out.max == out.min:
        histogram.buckets.add(low_value=out.min, high_value=out.max, sample_count=float(weights.sum()))
        return
    edges = np.linspace(out.min, out.max, HISTOGRAM_BUCKETS + 1)
    counts = sum(rebucket(s.histograms[0], edges) for s in stats)
    for lo, hi, n in zip(edges[:-1], edges[1:], counts):
        histogram.buckets.add(low_value=float(lo), high_value=float(hi), sample_count=float(n))


def _merge_strings(parts: list[Stats], out: statistics_pb2.StringStatistics) -> None:
    counts: dict[str, float] = {}
    for part in parts:
        s = part.string_stats
        for label, n in (
            {b.label: b.sample_count for b in s.rank_histogram.buckets} or {v.value: v.frequency for v in s.top_values}
        ).items():
            counts[label] = counts.get(label, 0.0) + n
    ranked = sorted(counts.items(), key=lambda vc: (-vc[1], vc[0]))
    out.unique = len(ranked)  # at least: each day kept its top TOP_VALUES_KEPT values only
    lengths = [(p.string_stats.avg_length, p.string_stats.common_stats.tot_num_values) for p in parts]
    total = sum(n for _, n in lengths)
    out.avg_length = sum(a * n for a, n in lengths) / total if total else 0.0
    for value, n in ranked[:TOP_VALUES_KEPT]:
        out.top_values.add(value=value, frequency=n)
        out.rank_histogram.buckets.add(label=value, sample_count=n)


def merge_statistics(datasets: list[Dataset], name: str) -> Dataset:
    """Several days' statistics of one split as one dataset: counts added, numeric moments pooled, histograms
    re-bucketed onto the overall range, string value counts added."""
    merged = Dataset(name=name, num_examples=sum(d.num_examples for d in datasets))
    names = list(dict.fromkeys(n for d in datasets for n in features_of(d)))
    for feature_name in names:
        found = [(d, features_of(d).get(feature_name)) for d in datasets]
        parts = [f for _, f in found if f is not None]
        numeric = parts[0].HasField("num_stats")
        parts = [p for p in parts if p.HasField("num_stats") == numeric]
        feature = merged.features.add(type=parts[0].type)
        feature.path.step.append(feature_name)
        common = statistics_pb2.CommonStatistics()
        for p in parts:
            c = common_stats_of(p)
            common.num_non_missing += c.num_non_missing
            common.num_missing += c.num_missing
            common.tot_num_values += c.tot_num_values
        common.num_missing += sum(d.num_examples for d, f in found if f is None)
        present = [common_stats_of(p) for p in parts if common_stats_of(p).num_non_missing]
        if present:
            common.min_num_values = min(c.min_num_values for c in present)
            common.max_num_values = max(c.max_num_values for c in present)
            common.avg_num_values = common.tot_num_values / common.num_non_missing
        if numeric:
            feature.num_stats.common_stats.CopyFrom(common)
            _merge_numeric(parts, feature.num_stats)
        else:
            feature.string_stats.common_stats.CopyFrom(common)
            _merge_strings(parts, feature.string_stats)
    return merged










