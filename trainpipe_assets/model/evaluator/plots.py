"""What a TFMA user looks at, as Dagster metadata: ROC, precision-recall and calibration plots and the confusion
matrix drawn with matplotlib into small PNGs inlined in markdown (the UI's markdown renders `data:` image sources),
tables of the metrics overall, per slice and per threshold rule, and a number per metric for the UI's plots."""

from __future__ import annotations

from dagster import MetadataValue

from trainpipe_assets.core.plots import FIGURE_INCHES, figure, image_markdown

ANNOTATED_CLASSES = 10  # counts written in the confusion matrix's cells up to this many classes
CANDIDATE, BASELINE = "tab:blue", "tab:orange"


def _undefined(ax, why: str) -> None:
    ax.text(0.5, 0.5, why, ha="center", va="center", fontsize=8, transform=ax.transAxes, wrap=True)


def _curve_figure(runs: dict, kind: str) -> str:
    """ROC (kind "roc") or precision-recall (kind "pr") of each run on one figure."""
    fig, [ax] = figure()
    x_key, y_key = ("fpr", "tpr") if kind == "roc" else ("recall", "precision")
    if kind == "roc":
        ax.plot([0, 1], [0, 1], ":", color="grey", linewidth=0.8)
    drawn = []
    for (name, plots), color, style in zip(runs.items(), (CANDIDATE, BASELINE), ("-", "--")):
        curve = plots[kind]
        if curve is not None:
            ax.plot(curve[x_key], curve[y_key], style, color=color, linewidth=1.2, label=name)
            drawn.append(name)
    if not drawn:
        _undefined(ax, "undefined: the eval labels have one class only")
    else:
        ax.legend(fontsize=7, loc="lower right" if kind == "roc" else "lower left")
    ax.set(xlim=(0, 1), ylim=(0, 1.02))
    ax.set_xlabel("false positive rate" if kind == "roc" else "recall", fontsize=8)
    ax.set_ylabel("true positive rate" if kind == "roc" else "precision", fontsize=8)
    title = "ROC" if kind == "roc" else "precision-recall"
    averaging = next(iter(runs.values()))["averaging"]
    ax.set_title(title if averaging == "binary" else f"{title} ({averaging})", fontsize=8)
    return image_markdown(fig, "roc" if kind == "roc" else "pr")


def _calibration_figure(runs: dict) -> str:
    fig, [ax] = figure()
    ax.plot([0, 1], [0, 1], ":", color="grey", linewidth=0.8)
    for (name, plots), color, marker in zip(runs.items(), (CANDIDATE, BASELINE), ("o", "s")):
        filled = [b for b in plots["calibration"] if b["count"]]
        ax.plot(
            [b["mean_score"] for b in filled],
            [b["positive_rate"] for b in filled],
            marker=marker,
            markersize=3,
            linewidth=1,
            color=color,
            label=name,
        )
    ax.legend(fontsize=7, loc="upper left")
    ax.set(xlim=(0, 1), ylim=(0, 1.02))
    ax.set_xlabel("mean predicted score", fontsize=8)
    ax.set_ylabel("fraction positive", fontsize=8)
    ax.set_title("calibration", fontsize=8)
    return image_markdown(fig, "calibration")


def _confusion_figure(runs: dict) -> str:
    import numpy as np

    fig, axes = figure(FIGURE_INCHES[0] * (1 + 0.6 * (len(runs) - 1)), FIGURE_INCHES[1], panels=len(runs))
    for ax, (name, plots) in zip(axes, runs.items()):
        counts = np.asarray(plots["confusion_matrix"])
        k = len(counts)
        totals = counts.sum(axis=1, keepdims=True)
        ax.imshow(counts / np.maximum(totals, 1), cmap="Blues", vmin=0, vmax=1)  # shaded by share of the true class
        if k <= ANNOTATED_CLASSES:
            for (i, j), n in np.ndenumerate(counts):
                share = n / max(totals[i, 0], 1)
                ax.text(j, i, str(n), ha="center", va="center", fontsize=7, color="white" if share > 0.5 else "black")
        ticks = range(k) if k <= 2 * ANNOTATED_CLASSES else []
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("actual", fontsize=8)
        ax.set_title(name, fontsize=8)
    return image_markdown(fig, "confusion matrix")


def _fmt(v, sign: str = "") -> str:
    return "" if v is None else f"{v:{sign}.4g}"


def comparison_markdown(candidate: dict, baseline: dict | None, metrics: list[str]) -> str:
    rows = ["| metric | candidate | baseline | change |", "|---|---|---|---|"]
    for m in metrics:
        c, b = candidate.get(m), (baseline or {}).get(m)
        change = c - b if c is not None and b is not None else None
        rows.append(f"| {m} | {_fmt(c)} | {_fmt(b)} | {_fmt(change, '+')} |")
    return "\n".join(rows)


def slices_markdown(candidate: dict, baseline: dict | None, metrics: list[str]) -> str:
    """Every metric of every slice, the baseline's beside the candidate's."""
    header = ["slice", "value", "examples"]
    for m in metrics:
        header += [m, f"{m} (baseline)"] if baseline is not None else [m]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for feature, values in candidate.items():
        for value, c in values.items():
            b = (baseline or {}).get(feature, {}).get(value) or {}
            cells = [feature, value, f"{c['example_count']:.0f}"]
            for m in metrics:
                cells += [_fmt(c.get(m)), _fmt(b.get(m))] if baseline is not None else [_fmt(c.get(m))]
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def thresholds_markdown(verdicts: list[dict]) -> str:
    """One row per rule that decided the blessing: a bound on the value, or a bound on the change from baseline."""
    rows = ["| metric | rule | bound | value | verdict |", "|---|---|---|---|---|"]
    for v in verdicts:
        value = "missing" if v["value"] is None else _fmt(v["value"], "+" if v["rule"].startswith("change") else "")
        verdict = "pass" if v["passed"] else "FAIL"
        rows.append(f"| {v['metric']} | {v['rule']} | {v['bound']:.4g} | {value} | {verdict} |")
    if not verdicts:
        rows.append("| | no threshold checked | | | |")
    return "\n".join(rows)


def evaluation_metadata(candidate: dict, baseline: dict | None, baseline_name: str, verdicts: list[dict], metrics):
    """The plots, the tables and a number per candidate metric, baseline metric and change, for the UI."""
    runs = {"candidate": candidate["plots"]} | ({baseline_name: baseline["plots"]} if baseline is not None else {})
    overall, base = candidate["overall"], baseline and baseline["overall"]
    numbers = {f"candidate_{k}": v for k, v in overall.items() if v is not None}
    if base is not None:
        numbers |= {f"baseline_{k}": v for k, v in base.items() if v is not None}
        both = [m for m in metrics if overall.get(m) is not None and base.get(m) is not None]
        numbers |= {f"change_{m}": overall[m] - base[m] for m in both}
    return {
        "comparison": MetadataValue.md(comparison_markdown(overall, base, metrics)),
        "slices": MetadataValue.md(slices_markdown(candidate["slices"], baseline and baseline["slices"], metrics)),
        "thresholds": MetadataValue.md(thresholds_markdown(verdicts)),
        "roc_curve": MetadataValue.md(_curve_figure(runs, "roc")),
        "pr_curve": MetadataValue.md(_curve_figure(runs, "pr")),
        "calibration_plot": MetadataValue.md(_calibration_figure(runs)),
        "confusion_matrix": MetadataValue.md(_confusion_figure(runs)),
        **numbers,
    }
