"""`serving_model_performance`: evaluation after deployment. The model that was serving on a labelled day is scored
on that day's examples and held against the monitoring floors and its own evaluation-time metrics; `degraded`
makes retrain_on_degradation_sensor request a retrain. When served_traffic has live metrics of that version for the
day (captured requests whose labels arrived), they are held against the same floors too, and they are the day's
metrics when its examples carry no labels."""

import datetime as dt
import json
from dataclasses import dataclass
from typing import Optional

import numpy as np
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    Failure,
    MetadataValue,
    Output,
)

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.artifacts import Examples, ServingPerformance
from trainpipe_assets.core.event_log import current_baseline, model_history, serving_at, serving_timeline
from trainpipe_assets.core.example_reader import decode_examples, read_records
from trainpipe_assets.core.partitions import pipeline_asset
from trainpipe_assets.core.settings import TrainpipeConfig
from trainpipe_assets.core.step import Step, fail
from trainpipe_assets.core.storage import write_text
from trainpipe_assets.model.evaluator.component import score_serialized
from trainpipe_assets.model.evaluator.labels import eval_labels
from trainpipe_assets.model.evaluator.metrics import as_probabilities, compute_metrics

CODE_VERSION = "serving-performance-v1"
LOWER_IS_BETTER = {"loss"}  # its floor is a ceiling, its drop a rise
TREND_DAYS = 14

# serving_basis: which rule chose the model version scored for a day.
END_OF_DAY = "serving at the end of the day"
EXAMPLES_MATERIALIZED = "serving when the day's examples were materialized (the day ended before the first push)"
SERVING_NOW = "serving now (the day ended before the first push and its examples were materialized before it too)"

# metrics_source: what the day's metrics were computed on.
FROM_EXAMPLES = "the day's labelled examples, scored"
FROM_CAPTURE = "captured traffic whose labels arrived (served_traffic), as served"


@dataclass(frozen=True)
class ServingChoice:
    version: int
    basis: str


def choose_version(
    timeline: list[dict], day_end: dt.datetime, examples_time: Optional[dt.datetime], now: Optional[int]
) -> Optional[ServingChoice]:
    """The version serving at the end of the day; for a backfilled day older than the first push, the one serving
    when its examples were materialized; else the one serving now."""
    for when, basis in ((day_end, END_OF_DAY), (examples_time, EXAMPLES_MATERIALIZED)):
        event = serving_at(timeline, when) if when is not None else None
        if event is not None:
            return ServingChoice(event["serving_version"], basis)
    return ServingChoice(now, SERVING_NOW) if now is not None else None


def degradation(metrics: dict, at_evaluation: dict, floors: dict[str, float], max_drop: dict[str, float]) -> list[str]:
    """Why the metrics count as degraded (empty: they do not); a metric that could not be computed never counts."""
    reasons = []
    for name, floor in floors.items():
        value = metrics.get(name)
        if value is None:
            continue
        if name in LOWER_IS_BETTER and value > floor:
            reasons.append(f"{name} {value:.4f} is above its ceiling {floor} (monitoring.floors)")
        elif name not in LOWER_IS_BETTER and value < floor:
            reasons.append(f"{name} {value:.4f} is below its floor {floor} (monitoring.floors)")
    for name, limit in max_drop.items():
        value, then = metrics.get(name), at_evaluation.get(name)
        if value is None or then is None:
            continue
        drop = value - then if name in LOWER_IS_BETTER else then - value
        if drop > limit:
            reasons.append(
                f"{name} {value:.4f} is {drop:.4f} worse than at evaluation ({then:.4f}), more than max_drop {limit}"
            )
    return reasons


def _examples_time(instance: DagsterInstance, day: str) -> Optional[dt.datetime]:
    records = instance.fetch_materializations(
        AssetRecordsFilter(AssetKey("examples"), asset_partitions=[day]), limit=1
    ).records
    return dt.datetime.fromtimestamp(records[0].timestamp, dt.timezone.utc) if records else None


def pushed_by(instance: DagsterInstance, version: int) -> Optional[dict]:
    """The model-history row of the training run that pushed `version` first (its evaluation and training days)."""
    rows = [r for r in model_history(instance, limit=1000) if r["pushed_version"] == version and r["eval_metrics"]]
    return rows[-1] if rows else None


def _labelled(serialized: list[bytes], settings, day: str, transform_graph_uri) -> tuple[list[bytes], np.ndarray]:
    """The day's examples that carry the raw label, and their labels as the model saw them (eval_labels)."""
    label_key = settings.label_key
    decoded = decode_examples(serialized)
    if label_key not in decoded.schema.names:
        raise fail(f"labels of {day} are not known: its examples have no feature {label_key!r} (label_key)")
    keep = [i for i, v in enumerate(decoded.column(label_key).to_pylist()) if v]
    if not keep:
        raise fail(f"labels of {day} are not known: no example has a value for {label_key!r} (label_key)")
    kept = [serialized[i] for i in keep]
    labels, _ = eval_labels(kept, decode_examples(kept), settings, transform_graph_uri)
    return kept, labels


def served_live_metrics(instance: DagsterInstance, day: str, version: int) -> Optional[dict]:
    """`version`'s live metrics on the day's captured traffic whose labels arrived (served_traffic's latest
    materialization of the day), None when there are none."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(AssetKey("served_traffic"), asset_partitions=[day]), limit=1
    ).records
    live = md.value(records[0].asset_materialization.metadata, md.LIVE_METRICS, {}) if records else {}
    found = (live or {}).get(str(version))
    return found if found and found.get("example_count") else None


def trend_markdown(instance: DagsterInstance, asset_key: AssetKey, day: str, current: dict, names: list[str]) -> str:
    """This asset's metrics over the latest TREND_DAYS days materialized (the latest materialization of each day),
    with this one in place of its day's."""
    by_day = {}
    for record in instance.fetch_materializations(asset_key, limit=10 * TREND_DAYS).records:  # newest first
        if record.partition_key and record.partition_key not in by_day:
            metadata = record.asset_materialization.metadata
            metrics = md.value(metadata, md.METRICS, {})
            by_day[record.partition_key] = {
                "version": md.value(metadata, md.MODEL_VERSION),
                "metrics": {n: metrics.get(n) for n in names},
                "degraded": md.value(metadata, md.DEGRADED),
            }
    by_day[day] = current

    def fmt(v) -> str:
        return "" if v is None else f"{v:.4f}"

    lines = [f"| day | version | {' | '.join(names)} | degraded |", "|---|---|" + "---|" * len(names) + "---|"]
    for key in sorted(by_day)[-TREND_DAYS:]:
        row = by_day[key]
        marker = " (this run)" if key == day else ""
        lines.append(
            f"| {key}{marker} | {row['version']} | {' | '.join(fmt(row['metrics'].get(n)) for n in names)} "
            f"| {row['degraded']} |"
        )
    return "\n".join(lines)


@pipeline_asset(
    io_manager_key="artifact_io_manager",
    kinds={"tensorflow"},
    group_name="deployment",
    code_version=CODE_VERSION,
)
def serving_model_performance(
    context: AssetExecutionContext, trainpipe: TrainpipeConfig, examples: Examples
) -> Output[ServingPerformance]:
    """Metrics of the model serving on a labelled day against monitoring.floors and its evaluation-time metrics."""
    settings = trainpipe.settings
    monitoring = settings.monitoring
    day = context.partition_key
    names = list(dict.fromkeys([*settings.evaluation.metrics, *monitoring.floors, *monitoring.max_drop]))

    instance = context.instance
    now = current_baseline(instance, trainpipe.serving_dir)
    day_end = context.partition_time_window.end
    choice = choose_version(serving_timeline(instance), day_end, _examples_time(instance, day), now and now.version)
    if choice is None:
        raise fail(f"no model pushed yet under {trainpipe.serving_dir}: nothing served on {day}")
    model_dir = trainpipe.serving_dir / str(choice.version)
    if not (model_dir / "saved_model.pb").is_file():
        raise fail(f"version {choice.version} ({choice.basis}) is gone from {model_dir}: cannot score {day}")

    pushed = pushed_by(instance, choice.version)
    at_evaluation = {k: v for k, v in (pushed["eval_metrics"] if pushed else {}).items() if k in names}
    notes = (
        [f"no evaluation of version {choice.version} in the event log: max_drop not checked"]
        if monitoring.max_drop and not pushed
        else []
    )
    # A day the model was trained on: only its eval split is unseen, as at evaluation time.
    trained_on_day = bool(pushed) and day in pushed["example_partitions"]
    splits = ["eval"] if trained_on_day else examples.splits
    # The version's own transform graph, from its training run's lineage, for a transformed evaluation.label_key.
    graph = (pushed or {}).get("lineage", {}).get("transform_graph")
    live = served_live_metrics(instance, day, choice.version)
    try:
        serialized, labels = _labelled(
            read_records([p for s in splits for p in examples.file_patterns[s]]), settings, day, graph
        )
    except Failure as e:
        if live is None:
            raise
        serialized, labels = None, None  # the day's examples carry no labels: captured traffic's live metrics count
        notes.append(f"the day's examples were not scored ({e.description}): its metrics are captured traffic's")
    if serialized is not None:
        raw_scores = score_serialized(model_dir, serialized, settings.evaluation.prediction_key)
        scores, _ = as_probabilities(raw_scores, settings.evaluation.output)
        metrics, source = compute_metrics(labels, scores, names), FROM_EXAMPLES
        reasons = degradation(metrics, at_evaluation, monitoring.floors, monitoring.max_drop)
    else:
        metrics, source, splits, reasons = live, FROM_CAPTURE, [], []
    if live is not None:
        live_reasons = degradation(live, at_evaluation, monitoring.floors, monitoring.max_drop)
        reasons += [f"on captured traffic ({int(live['example_count'])} labelled rows): {r}" for r in live_reasons]
    rows = len(serialized) if serialized is not None else int(live["example_count"])

    step = Step(context, trainpipe, CODE_VERSION)
    staging = step.staging
    report = {
        "day": day,
        "model_version": choice.version,
        "serving_basis": choice.basis,
        "serving_path": str(model_dir),
        "splits": splits,
        "rows": rows,
        "metrics": metrics,
        "metrics_source": source,
        "live_metrics": live,
        "evaluation_metrics": at_evaluation,
        "evaluation_run_id": pushed and pushed["run_id"],
        "floors": monitoring.floors,
        "max_drop": monitoring.max_drop,
        "degraded": bool(reasons),
        "reasons": reasons,
        "notes": notes,
    }
    write_text(staging / "performance.json", json.dumps(report, indent=2))
    current = {"version": choice.version, "metrics": metrics, "degraded": bool(reasons)}
    return Output(
        ServingPerformance(
            uri=str(staging),
            partition=day,
            model_version=choice.version,
            metrics=metrics,
            degraded=bool(reasons),
            reasons=reasons,
        ),
        metadata={
            md.MODEL_VERSION: choice.version,
            "serving_basis": choice.basis,
            "serving_path": MetadataValue.path(str(model_dir)),
            "rows": rows,
            "splits": MetadataValue.json(splits),
            "metrics_source": source,
            **({md.LIVE_METRICS: MetadataValue.json(live)} if live is not None else {}),
            **{f"live_{k}": v for k, v in (live or {}).items() if v is not None and k in names},
            md.DEGRADED: bool(reasons),
            "reasons": MetadataValue.md("\n".join(f"- {r}" for r in reasons) or "- none"),
            md.DEGRADATION_REASONS: MetadataValue.json(reasons),
            **({"notes": MetadataValue.md("\n".join(f"- {n}" for n in notes))} if notes else {}),
            md.METRICS: MetadataValue.json(metrics),
            **{md.metric_key(k): v for k, v in metrics.items() if v is not None and k in names},
            **{f"evaluation_{k}": v for k, v in at_evaluation.items() if v is not None},
            "evaluation_run_id": pushed["run_id"] if pushed else "none",
            "trend": MetadataValue.md(trend_markdown(instance, context.asset_key, day, current, names)),
        },
    )
