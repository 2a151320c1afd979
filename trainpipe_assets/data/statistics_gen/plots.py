"""Histograms of the numeric features, as TFDV's Facets view shows them: each split's equi-width histogram from the
statistics proto (densities, so splits of different sizes and bucket edges overlay), and the previous day's first
split dashed. Small palette PNGs inlined in markdown, a bounded number of them."""

from __future__ import annotations

from typing import Optional

from tensorflow_metadata.proto.v0 import statistics_pb2

from trainpipe_assets.core.plots import DPI, image_markdown
from trainpipe_assets.data.statistics_gen.compare import Dataset, features_of, standard_histogram
from trainpipe_assets.data.statistics_gen.tables import cell

HISTOGRAM_INCHES = (3.0, 2.0)  # one panel
GRID_COLUMNS = 4
MAX_HISTOGRAMS = 12  # at ~5 KB each, the metadata entry stays well under 100 KB however wide the data
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red")


def _draw(ax, histogram: statistics_pb2.Histogram, **style) -> None:
    import numpy as np

    edges = np.array([histogram.buckets[0].low_value] + [b.high_value for b in histogram.buckets])
    counts = np.array([b.sample_count for b in histogram.buckets])
    widths = np.diff(edges)
    if widths.sum() == 0:  # a single value: one bar of unit width around it
        edges, widths = np.array([edges[0] - 0.5, edges[0] + 0.5]), np.array([1.0])
    density = counts / max(counts.sum(), 1) / np.where(widths > 0, widths, 1)
    ax.stairs(density, edges, **style)


def _panel(ax, name: str, histograms: dict[str, statistics_pb2.Histogram]) -> None:
    for (label, histogram), color in zip(histograms.items(), COLORS):
        previous = label.startswith("previous")
        _draw(ax, histogram, color="grey" if previous else color, linestyle="--" if previous else "-", label=label)
    ax.set_title(preview_title(name), fontsize=8, parse_math=False)
    ax.set_yticks([])
    ax.tick_params(labelsize=7)
    ax.locator_params(axis="x", nbins=5)


def histogram_figure(name: str, histograms: dict[str, statistics_pb2.Histogram]) -> str:
    """One feature's histograms as one image (served traffic against training)."""
    return histograms_grid({name: histograms})


def histograms_grid(panels: dict[str, dict[str, statistics_pb2.Histogram]]) -> str:
    """Every feature's histograms as ONE image, a panel per feature, GRID_COLUMNS to a row, the legend in the first:
    one figure with a fixed layout to draw and encode instead of one constrained-layout figure per feature (the
    drawing was most of StatisticsGen's time on a range of days)."""
    from matplotlib.figure import Figure

    columns = min(GRID_COLUMNS, len(panels))
    rows = -(-len(panels) // columns)
    width, height = HISTOGRAM_INCHES
    fig = Figure(figsize=(width * columns, height * rows), dpi=DPI)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.22 / rows, top=1 - 0.2 / rows, wspace=0.08, hspace=0.55)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, (name, histograms) in zip(axes, panels.items()):
        _panel(ax, name, histograms)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=6, frameon=False)
    alt = ", ".join(cell(n).replace("[", "").replace("]", "") for n in panels)
    return image_markdown(fig, alt)


def preview_title(name: str, limit: int = 40) -> str:
    return name if len(name) <= limit else name[:limit] + "…"


def histograms_markdown(
    datasets: dict[str, Dataset], previous: Optional[dict[str, Dataset]] = None, previous_day: str = "", base="train"
) -> Optional[str]:
    """A histogram image per numeric feature (the first MAX_HISTOGRAMS), None when there is no numeric feature."""
    datasets = {base: datasets[base], **datasets} if base in datasets else datasets  # base first
    base = next(iter(datasets))
    numeric = (n for d in datasets.values() for n, f in features_of(d).items() if f.HasField("num_stats"))
    names = list(dict.fromkeys(numeric))
    panels = {}
    for name in names[:MAX_HISTOGRAMS]:
        found = {s: standard_histogram(features_of(d).get(name)) for s, d in datasets.items()}
        if previous and base in previous:
            found[f"previous day {base}"] = standard_histogram(features_of(previous[base]).get(name))
        found = {label: h for label, h in found.items() if h is not None}
        if found:
            panels[name] = found
    if not panels:
        return None
    intro = f"Densities per split{f'; dashed: {base} of {previous_day}' if previous else ''}"
    intro += f", {len(panels)} numeric features: {', '.join(cell(n) for n in panels)}."
    if len(names) > MAX_HISTOGRAMS:
        intro += f" The first {MAX_HISTOGRAMS} of {len(names)} numeric features."
    return intro + "\n\n" + histograms_grid(panels)
