"""`served_traffic` (TFDV's training/serving skew on logged requests, SageMaker Model Monitor's data quality): a day of
the traffic `trainpipe serve --capture-dir` captured for the configured model. The served features (decoded from every
request format, deploy/traffic_decode.py) get statistics as the `statistics` asset computes them, held against the
statistics of the days the serving version was trained on (its training run in the event log) for skew, most skewed
feature first, and against the day before's for drift; the predictions' distribution per version; and, for requests
whose labels arrived (serving.capture_labels), live metrics per served version, which serving_model_performance
counts as the day's.

A day with no capture file fails, naming the folder: a materialization is the day's served-feature statistics, and an
empty one would show as a good day in the UI and plot a zero while capture is broken or off; a failed partition stays
missing, so a backfill lists exactly the days to capture (or to leave alone)."""

import json
from collections import Counter
from pathlib import Path
from typing import Optional

from dagster import AssetExecutionContext, AssetKey, AssetRecordsFilter, DagsterInstance, MetadataValue, Output
from google.protobuf.message import DecodeError
from tensorflow_metadata.proto.v0 import statistics_pb2

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.artifacts import Statistics
from trainpipe_assets.core.io_managers.artifact_dir import read_artifact
from trainpipe_assets.core.partitions import pipeline_asset
from trainpipe_assets.core.settings import TrainpipeConfig
from trainpipe_assets.core.step import Step, fail
from trainpipe_assets.core.storage import write_bytes, write_text
from trainpipe_assets.data.statistics_gen.compare import Dataset, feature_skews, features_of, standard_histogram
from trainpipe_assets.data.statistics_gen.component import previous_day_statistics
from trainpipe_assets.data.statistics_gen.plots import histogram_figure
from trainpipe_assets.data.statistics_gen.tables import side_by_side_markdown, skew_markdown
from trainpipe_assets.monitoring.live_labels import (
    SCORE_BINS,
    live_markdown,
    live_metrics,
    prediction_summary,
    predictions_markdown,
    read_labels,
)
from trainpipe_assets.monitoring.served_statistics import feature_types, merge_statistics, served_statistics
from trainpipe_assets.monitoring.serving_model_performance import pushed_by
from trainpipe_assets.monitoring.traffic_decode import decode_traffic
from trainpipe_assets.serving.capture import read_day

CODE_VERSION = "served-traffic-v1"
SERVED, TRAINING_WINDOW = "served", "training_window"
PLOTTED_FEATURES = 4  # histograms of the most skewed numeric features


def training_window(instance: DagsterInstance, version: int) -> tuple[list[str], Optional[Dataset], list[str]]:
    """(the days `version` was trained on, their train-split statistics merged, notes on what is missing)."""
    pushed = pushed_by(instance, version)
    if pushed is None:
        return [], None, [f"no training run of version {version} in the event log: skew not measured"]
    days, datasets, notes = list(pushed["example_partitions"]), [], []
    for day in days:
        records = instance.fetch_materializations(
            AssetRecordsFilter(AssetKey("statistics"), asset_partitions=[day]), limit=1
        ).records
        path = md.value(records[0].asset_materialization.metadata, md.PATH) if records else None
        try:
            artifact = read_artifact(Path(str(path)))
            split = "train" if "train" in artifact.splits else artifact.splits[0]
            datasets.append(artifact.load(split).datasets[0])
        except (OSError, ValueError, TypeError, KeyError, IndexError, DecodeError) as e:
            notes.append(f"statistics of {day} (training window) not read: {path or 'never materialized'} ({e})")
    if not datasets:
        return days, None, notes + ["no statistics of the training window: skew not measured"]
    return days, merge_statistics(datasets, TRAINING_WINDOW), notes


def _histograms(skews, training: Dataset, served: Dataset, summary: dict) -> Optional[str]:
    blocks = []
    t, s = features_of(training), features_of(served)
    numeric = [
        f.feature for f in skews if standard_histogram(t.get(f.feature)) and standard_histogram(s.get(f.feature))
    ]
    for name in numeric[:PLOTTED_FEATURES]:
        blocks.append(
            histogram_figure(
                name, {"training window": standard_histogram(t[name]), "served": standard_histogram(s[name])}
            )
        )
    scores = {}
    for version, v in summary.items():
        if "histogram" in v:
            h = statistics_pb2.Histogram(type=statistics_pb2.Histogram.STANDARD)
            for b, n in enumerate(v["histogram"]):
                h.buckets.add(low_value=b / SCORE_BINS, high_value=(b + 1) / SCORE_BINS, sample_count=n)
            scores[f"version {version}"] = h
    if scores:
        blocks.append(histogram_figure("predicted score", scores))
    return " ".join(blocks) if blocks else None


@pipeline_asset(
    io_manager_key="artifact_io_manager",
    kinds={"tensorflow"},
    group_name="deployment",
    code_version=CODE_VERSION,
)
def served_traffic(context: AssetExecutionContext, trainpipe: TrainpipeConfig) -> Output[Statistics]:
    """A day of captured traffic: served-feature statistics and their skew from the serving model's training window,
    the predictions per version and, with labels, live metrics per version."""
    settings, day, instance = trainpipe.settings, context.partition_key, context.instance
    folder = trainpipe.capture_dir / settings.model_name
    entries, capture = read_day(trainpipe.capture_dir, settings.model_name, day)
    if not entries:
        still_open = f"; still being written: {capture['open_files']}" if capture["open_files"] else ""
        raise fail(
            f"no traffic captured for model {settings.model_name!r} on {day}: no {day}.*.jsonl file in {folder}"
            f"{still_open}. Start the server with `trainpipe serve --capture-dir {trainpipe.capture_dir}` "
            f"(serving.capture_dir), and materialize a day once it is over."
        )
    traffic = decode_traffic(entries, settings.evaluation.prediction_key)
    rows = [r for r in traffic.rows if r is not None]
    if not rows:
        raise fail(f"no features could be read from the {len(entries)} requests captured on {day}: {traffic.skipped}")
    versions = Counter(v for v, r in zip(traffic.versions, traffic.rows) if r is not None)
    version = max(versions, key=lambda v: (versions[v], v))  # the version that served most of the day
    days, training, notes = training_window(instance, version)
    served = served_statistics(rows, feature_types(training))
    served_dataset = served.datasets[0]
    skews = feature_skews(training, served_dataset, (settings.label_key,)) if training else []
    measured = [f for f in skews if f.skew is not None]
    max_skew = measured[0].skew if measured else None
    # Drift: against the day before's served features (its served_traffic), as statistics does for ingested days.
    previous_day, previous, why_not = previous_day_statistics(context)
    before = (previous or {}).get(SERVED)
    drifts = feature_skews(before, served_dataset, (settings.label_key,)) if before else []
    drifted = [f for f in drifts if f.skew is not None]

    output = settings.evaluation.output
    summary = prediction_summary(traffic, output)
    labels, bad_labels = read_labels(trainpipe.capture_labels_dir)
    monitoring = settings.monitoring
    names = list(dict.fromkeys([*settings.evaluation.metrics, *monitoring.floors, *monitoring.max_drop]))
    live, labelled = live_metrics(traffic, labels, names, output) if labels else ({}, 0)
    limit = monitoring.max_serving_skew
    reasons = [
        f"{f.feature}: skew {f.skew:.4f} from the training window of version {version} is over "
        f"monitoring.max_serving_skew {limit}"
        for f in measured
        if limit is not None and f.skew > limit
    ]

    step = Step(context, trainpipe, CODE_VERSION)
    artifact = Statistics(**step.fields(), splits=[SERVED] + ([TRAINING_WINDOW] if training else []))
    write_bytes(artifact.path(SERVED), served.SerializeToString())
    if training:
        window_stats = statistics_pb2.DatasetFeatureStatisticsList(datasets=[training])
        write_bytes(artifact.path(TRAINING_WINDOW), window_stats.SerializeToString())
    report = {
        "day": day,
        "model_name": settings.model_name,
        "requests": len(entries),
        "rows": len(rows),
        "versions": {str(v): n for v, n in sorted(versions.items())},
        "compared_version": version,
        "training_window": days,
        "skew": [f.__dict__ | {"missing_diff": f.missing_diff} for f in skews],
        "drift": {"previous_day": previous_day if before else None, "features": [f.__dict__ for f in drifts]},
        "max_skew": max_skew,
        "predictions": summary,
        "live_metrics": live,
        "labelled_rows": labelled,
        "degraded": bool(reasons),
        "reasons": reasons,
        "capture": capture,
        "skipped_requests": traffic.skipped,
        "bad_label_lines": bad_labels[:100],
        "notes": notes,
    }
    write_text(Path(artifact.uri) / "served_traffic.json", json.dumps(report, indent=2))

    label = features_of(training).get(settings.label_key) if training else None
    label_mean = label.num_stats.mean if label is not None and label.HasField("num_stats") else None
    histograms = _histograms(skews, training, served_dataset, summary) if training else None
    main = summary.get(str(version), {})
    comparison = {"served": served_dataset}
    if training:  # without the label, which requests do not carry
        shown = Dataset(name=training.name, num_examples=training.num_examples)
        shown.features.extend(f for f in training.features if f.path.step[0] != settings.label_key)
        comparison = {"training window": shown, **comparison}
    problems = [*notes, *(f"{n} request(s): {why}" for why, n in traffic.skipped.items())]
    problems += [f"{len(bad_labels)} label line(s) not read, e.g. {bad_labels[0]}"] if bad_labels else []
    problems += [f"{len(capture['open_files'])} file(s) still being written left out"] if capture["open_files"] else []
    metadata = {
        "requests": len(entries),
        md.ROWS: len(rows),
        md.MODEL_VERSION: version,
        "versions": MetadataValue.json(report["versions"]),
        "training_window": MetadataValue.json(days),
        **({md.MAX_SKEW: max_skew, "most_skewed_feature": measured[0].feature} if measured else {}),
        "skew": MetadataValue.md(skew_markdown(skews, training, served_dataset) if training else "not measured"),
        **({"max_drift": drifted[0].skew, "most_drifted_feature": drifted[0].feature} if drifted else {}),
        "drift": MetadataValue.md(
            skew_markdown(drifts, before, served_dataset, base=previous_day)
            if before
            else f"not measured: no served traffic of the day before ({why_not})"
        ),
        "statistics": MetadataValue.md(side_by_side_markdown(comparison, next(iter(comparison)))),
        **({"histograms": MetadataValue.md(histograms)} if histograms else {}),
        "predictions": MetadataValue.md(predictions_markdown(summary, label_mean)),
        **{k: main[k] for k in ("mean_score", "predicted_positive_rate") if k in main},
        "labelled_rows": labelled,
        md.LIVE_METRICS: MetadataValue.json(live),
        **({"live": MetadataValue.md(live_markdown(live, names))} if live else {}),
        **{f"live_{n}_v{v}": m[n] for v, m in live.items() for n in names if m.get(n) is not None},
        md.DEGRADED: bool(reasons),
        md.DEGRADATION_REASONS: MetadataValue.json(reasons),
        "capture_files": len(capture["files"]) + len(capture["orphaned_files"]),
        **({"notes": MetadataValue.md("\n".join(f"- {p}" for p in problems))} if problems else {}),
    }
    return step.output(artifact, metadata)
