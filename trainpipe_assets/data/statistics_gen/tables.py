"""The comparison tables a person reads in the Dagster UI: splits side by side with their skew, drift from the day
before, and served traffic against training (monitoring), as markdown."""

from __future__ import annotations

from typing import Optional

from trainpipe_assets.core.metadata import preview
from trainpipe_assets.data.statistics_gen.compare import (
    Dataset,
    FeatureComparison,
    FeatureSkew,
    Stats,
    compare,
    features_of,
    missing_rate,
)

TOP_VALUES_SHOWN = 3


def cell(text: str) -> str:
    """Text from the data as one markdown table cell: cut to a preview, on one line, pipes escaped."""
    return " ".join(preview(text).split()).replace("|", "\\|")


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
