"""What a person reads about an asset after a run: one line of facts per asset (as `trainpipe demo` prints), and
InteractiveContext.show's summary with where the asset's page is in the UI."""

from __future__ import annotations

from trainpipe_assets.core import metadata as md

FACTS = {
    "examples": (md.ROWS, md.REJECTED_ROWS),
    "statistics": (),
    "example_anomalies": (md.VERDICT,),
    "schema": ("features", "source"),
    "transform_graph": ("analyzed_rows", "transformed_rows_eval"),
    "best_hyperparameters": ("mode", "num_trials", "best_hyperparameters"),
    "trained_model": ("parameters", md.metric_key("validation_binary_accuracy")),
    "model_evaluation": (md.BLESSED, md.BASELINE_VERSION, md.CANDIDATE_METRICS, md.BLESSING_REASONS),
    "infra_validation": ("infra_blessed", "load_seconds", "latency_p50_ms"),
    "pushed_model": (md.VERSION, md.SERVING_PATH),
    "batch_predictions": (md.ROWS, md.MODEL_VERSION),
}
UI = "http://127.0.0.1:3000/assets/{asset}"  # `make dev` / `dagster dev` with this DAGSTER_HOME


def facts_line(asset: str, metadata: dict) -> str:
    keys = FACTS.get(asset, ())
    facts = ", ".join(f"{k}={metadata[k].value}" for k in keys if k in metadata)
    cached = " (cached: reused)" if md.value(metadata, md.CACHED, False) else ""
    return f"{asset}{cached}: {facts}"


def summary(asset: str, metadata: dict) -> str:
    """Every metadata entry of the latest materialization: tables and markdown as they are, the rest as key=value."""
    lines = [f"{asset} -- {UI.format(asset=asset)}"]
    for key, entry in metadata.items():
        value = entry.value
        text = getattr(value, "text", None) if not isinstance(value, (str, int, float, bool)) else value
        if text is None:
            text = getattr(value, "data", value)
        text = str(text)
        if "data:image/png" in text:
            text = "(plots: see the UI)"
        lines.append(f"  {key}: {text[:2000]}")
    return "\n".join(lines)
