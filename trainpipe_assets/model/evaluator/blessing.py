"""The Evaluator's blessing rules, all explicit: value and change thresholds like TFMA's, and what happens without
a baseline, without thresholds, or with a force-bless."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from trainpipe_assets.core.settings import MetricThreshold


@dataclass(frozen=True)
class Verdict:
    metric: str
    rule: str  # lower_bound | upper_bound | change_absolute | change_relative
    bound: float
    value: Optional[float]
    passed: bool


@dataclass(frozen=True)
class Blessing:
    blessed: bool
    reasons: list[str]
    verdicts: list[Verdict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"blessed": self.blessed, "reasons": self.reasons, "verdicts": [asdict(v) for v in self.verdicts]}


def _value_verdicts(metric: str, value: Optional[float], threshold: MetricThreshold) -> list[Verdict]:
    found = []
    if threshold.lower_bound is not None:
        found.append(
            Verdict(
                metric,
                "lower_bound",
                threshold.lower_bound,
                value,
                value is not None and value >= threshold.lower_bound,
            )
        )
    if threshold.upper_bound is not None:
        found.append(
            Verdict(
                metric,
                "upper_bound",
                threshold.upper_bound,
                value,
                value is not None and value <= threshold.upper_bound,
            )
        )
    return found


def _change_verdicts(
    metric: str, candidate: Optional[float], baseline: Optional[float], threshold: MetricThreshold
) -> list[Verdict]:
    change = threshold.change
    higher = change.direction == "higher_is_better"
    found = []
    if change.absolute is not None:
        diff = None if candidate is None or baseline is None else candidate - baseline
        ok = diff is not None and (diff >= change.absolute if higher else diff <= change.absolute)
        found.append(Verdict(metric, "change_absolute", change.absolute, diff, ok))
    if change.relative is not None:
        ratio = None if candidate is None or not baseline else candidate / baseline - 1
        ok = ratio is not None and (ratio >= change.relative if higher else ratio <= change.relative)
        found.append(Verdict(metric, "change_relative", change.relative, ratio, ok))
    return found


def decide_blessing(
    candidate: dict[str, Optional[float]],
    baseline: Optional[dict[str, Optional[float]]],
    thresholds: dict[str, MetricThreshold],
    force_reason: Optional[str] = None,
) -> Blessing:
    """Blessed when every configured threshold holds. Recorded reasons say which rule decided."""
    reasons: list[str] = []
    verdicts: list[Verdict] = []
    if not thresholds:
        reasons.append("no thresholds configured: blessed (TFX would write no blessing, tfx#5148)")
    for metric, threshold in thresholds.items():
        verdicts += _value_verdicts(metric, candidate.get(metric), threshold)
        if threshold.change is not None:
            if baseline is None:
                continue
            verdicts += _change_verdicts(metric, candidate.get(metric), baseline.get(metric), threshold)
    if baseline is None and any(t.change is not None for t in thresholds.values()):
        reasons.append("no baseline yet: change thresholds skipped")
    failed = [v for v in verdicts if not v.passed]
    for v in failed:
        shown = "missing" if v.value is None else f"{v.value:.4g}"
        reasons.append(f"{v.metric} {v.rule}: {shown} vs bound {v.bound:g} failed")
    if verdicts and not failed:
        reasons.append(f"all {len(verdicts)} threshold checks passed")
    if force_reason:
        reasons.append(f"force-blessed: {force_reason}" + (" (despite failed thresholds)" if failed else ""))
        return Blessing(True, reasons, verdicts)
    return Blessing(not failed, reasons, verdicts)
