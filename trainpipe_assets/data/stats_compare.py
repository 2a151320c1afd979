"""Skew (train against the other splits of a day) and drift (a day against the day before) between feature statistics,
as TFDV's comparators measure them: the L-infinity distance between two categorical value distributions, and the
difference of missing rates for every feature. Plus the tables a person reads in the Dagster UI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from tensorflow_metadata.proto.v0 import statistics_pb2

from trainpipe_assets.core.metadata import preview

Stats = statistics_pb2.FeatureNameStatistics
Dataset = statistics_pb2.DatasetFeatureStatistics
TOP_VALUES_SHOWN = 3


def common_stats_of(feature: Stats) -> statistics_pb2.CommonStatistics:
    return feature.num_stats.common_stats if feature.HasField("num_stats") else feature.string_stats.common_stats


def cell(text: str) -> str:
    """Text from the data as one markdown table cell: cut to a preview, on one line, pipes escaped."""
    return " ".join(preview(text).split()).replace("|", "\\|")


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


def _fmt(v: Optional[float], spec: str = ".4g") -> str:
    return "" if v is None else format(v, spec)


def _linf_cell(c: Optional[FeatureComparison]) -> str:
    if c is None or c.linf is None:
        return ""
    return f"{c.linf:.4g}" + (f" ({cell(c.linf_value)})" if c.linf and c.linf_value is not None else "")


def _summary(feature: Optional[Stats]) -> str:
    if feature is None:
        return "absent"
    if feature.HasField("num_stats"):
        n = feature.num_stats
        if not n.common_stats.num_non_missing:
            return ""
        return f"mean {n.mean:.4g} ± {n.std_dev:.4g}, {n.min:.4g} – {n.max:.4g}"
    s = feature.string_stats
    top = ", ".join(f"{cell(v.value)} ({v.frequency:.0f})" for v in s.top_values[:TOP_VALUES_SHOWN])
    return f"{s.unique} unique" + (f": {top}" if top else "")


def _type(features: list[Optional[Stats]]) -> str:
    return next((Stats.Type.Name(f.type) for f in features if f is not None), "")


def side_by_side_markdown(datasets: dict[str, Dataset], base: str = "train") -> str:
    """One row per feature: each split's missing rate and summary, then skew of each other split against `base`."""
    datasets = {base: datasets[base], **datasets}  # base first
    others = [s for s in datasets if s != base]
    skews = {s: {c.feature: c for c in compare(datasets[base], datasets[s])} for s in others}
    header = ["feature", "type", *(f"{s} missing" for s in datasets), *datasets]
    for s in others:
        header += [f"missing Δ ({s} − {base})", f"L∞ skew ({s} vs {base})"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    names = list(dict.fromkeys(n for d in datasets.values() for n in features_of(d)))
    for name in names:
        features = {s: features_of(d).get(name) for s, d in datasets.items()}
        cells = [cell(name), _type(list(features.values()))]
        cells += [_fmt(missing_rate(features[s], d), ".1%") for s, d in datasets.items()]
        cells += [_summary(features[s]) for s in datasets]
        for s in others:
            c = skews[s].get(name)
            cells += [_fmt(c and c.missing_diff, "+.1%"), _linf_cell(c)]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def drift_markdown(today: dict[str, Dataset], previous: dict[str, Dataset], previous_day: str) -> str:
    """Per feature and split: L-infinity distance and missing-rate change from the previous day's same split."""
    splits = [s for s in today if s in previous]
    drifts = {s: {c.feature: c for c in compare(previous[s], today[s])} for s in splits}
    header = ["feature", "type"]
    for s in splits:
        header += [f"{s} L∞ drift", f"{s} missing Δ"]
    rows = [f"Against {previous_day}.", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    names = list(dict.fromkeys(c for s in splits for c in drifts[s]))
    for name in names:
        cells = [cell(name), _type([features_of(d).get(name) for d in [*today.values(), *previous.values()]])]
        for s in splits:
            c = drifts[s].get(name)
            cells += [_linf_cell(c), _fmt(c and c.missing_diff, "+.1%")]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _largest(values) -> Optional[float]:
    found = [v for v in values if v is not None]
    return max(found) if found else None


def skew_max(datasets: dict[str, Dataset], base: str = "train") -> Optional[float]:
    """The largest L-infinity distance of any string feature between `base` and another split."""
    return _largest(max_linf(compare(datasets[base], d)) for s, d in datasets.items() if s != base)


def drift_max(today: dict[str, Dataset], previous: dict[str, Dataset]) -> Optional[float]:
    """The largest L-infinity distance of any string feature between a split and the previous day's same split."""
    return _largest(max_linf(compare(previous[s], today[s])) for s in today if s in previous)
