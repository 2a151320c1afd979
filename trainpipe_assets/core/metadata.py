"""Metadata as a contract: the materialization metadata keys that programs read back (event-log queries, the cache,
sensors, the CLI), in one place. A value a program reads is a number, a bool, a path or JSON, never display text;
markdown entries are for people only."""

from __future__ import annotations

from typing import Any, Mapping

# Written by the IO managers and the step helper, read by the cache and event-log queries.
PATH = "path"
CACHE_KEY = "cache_key"
CACHED = "cached"
REUSED_RUN_ID = "reused_run_id"

# every asset that reads a training window
EXCLUDED_DAYS = "excluded_days"  # JSON {day: why}: days left out because their example_anomalies did not pass
ADMITTED_DAYS = "admitted_days"  # JSON {day: why}: days used anyway, by run tag trainpipe/admit_days

# examples
ROWS = "rows"
REJECTED_ROWS = "rejected_rows"
SOURCE_FINGERPRINT = "source_fingerprint"  # JSON {source file path: sha256} of what the day was read from
REJECTED_NON_FINITE = "rejected_non_finite"  # JSON {column: rows rejected for a NaN or infinite value}

INGEST_FAILED = "ingest_failed"  # a day of a range whose input could not be read: why (its examples are empty)

# example_anomalies (the per-day verdict the training gate reads)
VERDICT = "verdict"  # PASSED, FAILED or NOT_CHECKED (no schema yet: usable)
PASSED, FAILED, NOT_CHECKED = "passed", "failed", "not checked"
ANOMALIES_JSON = "anomalies_json"  # JSON [{split, feature, kind, description}]

# trained_model
TRAIN_METRICS = "train_metrics"  # JSON {name: last epoch value} from the TensorBoard logs
HYPERPARAMETERS = "hyperparameters"
EXAMPLE_PARTITIONS = "example_partitions"
LINEAGE = "lineage"

# model_evaluation
BLESSED = "blessed"
BASELINE_VERSION = "baseline_version"  # an int, or "none"
CANDIDATE_METRICS = "candidate_metrics"  # JSON {name: value}
BLESSING_REASONS = "blessing_reasons"  # JSON [reason]
EVALUATION_WARNINGS = "evaluation_warnings"  # JSON [warning]: a small eval set, a class missing from the labels

# pushed_model (a push, or a runless rollback event)
VERSION = "version"
SERVING_VERSION = "serving_version"
SERVING_PATH = "serving_path"
MODEL_NAME = "model_name"
EVENT = "event"
REASON = "reason"

# batch_predictions and serving_model_performance
MODEL_VERSION = "model_version"
METRICS = "metrics"  # JSON {name: value}
DEGRADED = "degraded"
DEGRADATION_REASONS = "degradation_reasons"  # JSON [reason]

# served_traffic
LIVE_METRICS = "live_metrics"  # JSON {version: {name: value}} on captured requests whose labels arrived
MAX_SKEW = "max_skew"  # the largest skew of a served feature from the serving model's training window


PREVIEW_CHARS = 200  # text that comes from the data is cut to this in messages and metadata (never in rejected.csv)


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """`text` cut to `limit` characters (with "…"): what of a value from the data goes into messages and metadata."""
    return text if len(text) <= limit else text[:limit] + "…"


def rows_key(split: str) -> str:
    return f"rows_{split}"


def metric_key(name: str) -> str:
    """A numeric entry per metric, for the UI's plots over partitions; programs read the JSON entry instead."""
    return f"metric_{name}"


def value(metadata: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """The plain value of a materialization's metadata entry, or `default` when it has none."""
    entry = metadata.get(key)
    return default if entry is None else entry.value
