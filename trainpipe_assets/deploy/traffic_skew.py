"""Training/serving skew of served features: the statistics of the served rows (statistics_gen's own computation) held
against the serving model's training window (its days' statistics merged), with stats_compare's measures: the
L-infinity distance of string value distributions and the change of missing rate; for numeric features, which
stats_compare leaves without a distance, TFDV's Jensen-Shannon divergence of the two histograms (both re-bucketed onto
the union of their bucket edges, values taken as uniform within a bucket). Every measure lies in [0, 1]; a feature's
skew is the largest of them (1 for a type that differs from training), and features are listed most skewed first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pyarrow as pa
from tensorflow_metadata.proto.v0 import statistics_pb2

from trainpipe_assets.data.statistics_gen import HISTOGRAM_BUCKETS, TOP_VALUES_KEPT, feature_statistics
from trainpipe_assets.data.stats_compare import (
    Dataset,
    Stats,
    cell,
    common_stats_of,
    compare,
    features_of,
    missing_rate,
)
from trainpipe_assets.data.stats_plots import standard_histogram

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


def rebucket(histogram: statistics_pb2.Histogram, edges: np.ndarray) -> np.ndarray:
    """A histogram's counts spread over the intervals between `edges` (uniform within each bucket)."""
    out = np.zeros(len(edges) - 1)
    for b in histogram.buckets:
        if b.high_value > b.low_value:
            overlap = np.clip(np.minimum(edges[1:], b.high_value) - np.maximum(edges[:-1], b.low_value), 0, None)
            out += b.sample_count * overlap / (b.high_value - b.low_value)
        else:
            out[int(np.clip(np.searchsorted(edges, b.low_value, side="right") - 1, 0, len(out) - 1))] += b.sample_count
    return out


def _edges(*histograms: statistics_pb2.Histogram) -> np.ndarray:
    return np.unique([v for h in histograms for b in h.buckets for v in (b.low_value, b.high_value)])


def jensen_shannon(a: Optional[Stats], b: Optional[Stats]) -> Optional[float]:
    """TFDV's Jensen-Shannon divergence (base 2, in [0, 1]) of two numeric features' histograms; None unless both
    have one."""
    ha, hb = standard_histogram(a), standard_histogram(b)
    if ha is None or hb is None:
        return None
    edges = _edges(ha, hb)
    if len(edges) < 2:
        return 0.0  # one and the same single value
    p, q = rebucket(ha, edges), rebucket(hb, edges)
    if not p.sum() or not q.sum():
        return None
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(x):
        keep = x > 0
        return float(np.sum(x[keep] * np.log2(x[keep] / m[keep])))

    return min(1.0, max(0.0, (kl(p) + kl(q)) / 2))


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


@dataclass(frozen=True)
class FeatureSkew:
    feature: str
    types: str  # "FLOAT", or "INT → STRING" when served values are of another type
    skew: Optional[float]  # the largest measure; None when nothing could be measured
    linf: Optional[float]
    linf_value: Optional[str]
    js: Optional[float]
    missing_training: Optional[float]
    missing_served: Optional[float]

    @property
    def missing_diff(self) -> Optional[float]:
        if self.missing_training is None or self.missing_served is None:
            return None
        return self.missing_served - self.missing_training


def feature_skews(training: Dataset, served: Dataset, leave_out: tuple[str, ...] = ()) -> list[FeatureSkew]:
    """Every feature of either side but `leave_out` (the label, which requests do not carry), most skewed first."""
    t, s = features_of(training), features_of(served)
    found = []
    for c in compare(training, served):
        if c.feature in leave_out:
            continue
        a, b = t.get(c.feature), s.get(c.feature)
        types = [Stats.Type.Name(f.type) for f in (a, b) if f is not None]
        js = jensen_shannon(a, b)
        mismatch = 1.0 if len(set(types)) > 1 else None
        measures = [m for m in (c.linf, js, c.missing_diff and abs(c.missing_diff), mismatch) if m is not None]
        found.append(
            FeatureSkew(
                feature=c.feature,
                types=" → ".join(dict.fromkeys(types)) if mismatch is None else " → ".join(types),
                skew=max(measures) if measures else None,
                linf=c.linf,
                linf_value=c.linf_value,
                js=js,
                missing_training=missing_rate(a, training),
                missing_served=missing_rate(b, served),
            )
        )
    return sorted(found, key=lambda f: (-(f.skew if f.skew is not None else -1.0), f.feature))


def _fmt(v: Optional[float], spec: str = ".4g") -> str:
    return "" if v is None else format(v, spec)


def _centre(feature: Optional[Stats]) -> str:
    if feature is None:
        return "absent"
    if feature.HasField("num_stats"):
        return f"mean {feature.num_stats.mean:.4g}" if feature.num_stats.common_stats.num_non_missing else ""
    top = feature.string_stats.top_values
    return f"top {cell(top[0].value)}" if top else ""


def skew_markdown(
    skews: list[FeatureSkew], training: Dataset, served: Dataset, limit: int = 50, base: str = "training"
) -> str:
    """Most skewed first; `base` names the side compared against (the training window, or the day before)."""
    t, s = features_of(training), features_of(served)
    rows = [
        f"| feature | type | skew | L∞ (value) | Jensen-Shannon | missing {base} → served | {base} | served |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in skews[:limit]:
        linf = "" if f.linf is None else f"{f.linf:.4g}" + (f" ({cell(f.linf_value)})" if f.linf_value else "")
        missing = f"{_fmt(f.missing_training, '.1%')} → {_fmt(f.missing_served, '.1%')}"
        rows.append(
            f"| {cell(f.feature)} | {f.types} | {_fmt(f.skew)} | {linf} | {_fmt(f.js)} | {missing} "
            f"| {_centre(t.get(f.feature))} | {_centre(s.get(f.feature))} |"
        )
    if len(skews) > limit:
        rows.append(f"\nThe {limit} most skewed of {len(skews)} features.")
    return "\n".join(rows)
