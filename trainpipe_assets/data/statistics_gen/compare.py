"""How far apart two sets of feature statistics are, as TFDV's comparators measure it: the L-infinity distance between
two categorical value distributions, the difference of missing rates, and (for numeric features) the Jensen-Shannon
divergence of two histograms, both re-bucketed onto the union of their bucket edges with values taken as uniform
within a bucket. Used for skew (train against the other splits of a day), drift (a day against the day before) and,
after deployment, served traffic against the training window (monitoring). Every measure lies in [0, 1]."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from tensorflow_metadata.proto.v0 import statistics_pb2

Stats = statistics_pb2.FeatureNameStatistics
Dataset = statistics_pb2.DatasetFeatureStatistics
STANDARD = statistics_pb2.Histogram.STANDARD


def common_stats_of(feature: Stats) -> statistics_pb2.CommonStatistics:
    return feature.num_stats.common_stats if feature.HasField("num_stats") else feature.string_stats.common_stats


def features_of(dataset: Dataset) -> dict[str, Stats]:
    return {f.path.step[0]: f for f in dataset.features}


def missing_rate(feature: Optional[Stats], dataset: Dataset) -> Optional[float]:
    """The fraction of examples without a value; a feature no example has is missing from all of them."""
    if feature is None:
        return 1.0 if dataset.num_examples else None
    common = common_stats_of(feature)
    total = common.num_missing + common.num_non_missing
    return common.num_missing / total if total else None


def value_distribution(feature: Optional[Stats]) -> dict[str, float]:
    """A string feature's value frequencies (its rank histogram, else its top values), normalised to sum to 1."""
    if feature is None or not feature.HasField("string_stats"):
        return {}
    s = feature.string_stats
    counts = {b.label: b.sample_count for b in s.rank_histogram.buckets} or {v.value: v.frequency for v in s.top_values}
    total = sum(counts.values())
    return {value: n / total for value, n in counts.items()} if total else {}


def l_infinity(a: Optional[Stats], b: Optional[Stats]) -> tuple[Optional[float], Optional[str]]:
    """The largest difference in the share of one value between two categorical distributions, and that value (TFDV's
    L-infinity norm); (None, None) unless both sides are string features with values."""
    pa, pb = value_distribution(a), value_distribution(b)
    if not pa or not pb:
        return None, None
    distance, value = max((abs(pa.get(v, 0.0) - pb.get(v, 0.0)), v) for v in sorted(pa.keys() | pb.keys()))
    return distance, value


@dataclass(frozen=True)
class FeatureComparison:
    feature: str
    linf: Optional[float]  # None for numeric features and features without values on one side
    linf_value: Optional[str]  # the value where the distributions differ the most
    missing_diff: Optional[float]  # other's missing rate minus base's


def compare(base: Dataset, other: Dataset) -> list[FeatureComparison]:
    """Every feature of either dataset, in the order they appear (base's first)."""
    a, b = features_of(base), features_of(other)
    found = []
    for name in list(a) + [n for n in b if n not in a]:
        linf, at = l_infinity(a.get(name), b.get(name))
        ra, rb = missing_rate(a.get(name), base), missing_rate(b.get(name), other)
        found.append(FeatureComparison(name, linf, at, None if ra is None or rb is None else rb - ra))
    return found


def max_linf(comparisons: list[FeatureComparison]) -> Optional[float]:
    return _largest(c.linf for c in comparisons)


def _largest(values) -> Optional[float]:
    found = [v for v in values if v is not None]
    return max(found) if found else None


def skew_max(datasets: dict[str, Dataset], base: str = "train") -> Optional[float]:
    """The largest L-infinity distance of any string feature between `base` and another split."""
    return _largest(max_linf(compare(datasets[base], d)) for s, d in datasets.items() if s != base)


def drift_max(today: dict[str, Dataset], previous: dict[str, Dataset]) -> Optional[float]:
    """The largest L-infinity distance of any string feature between a split and the previous day's same split."""
    return _largest(max_linf(compare(previous[s], today[s])) for s in today if s in previous)


def standard_histogram(feature: Optional[Stats]) -> Optional[statistics_pb2.Histogram]:
    if feature is None or not feature.HasField("num_stats"):
        return None
    return next((h for h in feature.num_stats.histograms if h.type == STANDARD and h.buckets), None)


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
