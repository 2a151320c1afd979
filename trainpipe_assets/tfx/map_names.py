"""What the mapping modules share: the assets of each TFX component, the mapped result, and how nodes are named in
messages."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from trainpipe_assets.tfx.map_inputs import Landing

# TFX component -> the assets it materializes here (in the order the jobs make them)
ASSETS = {
    "CsvExampleGen": ["examples"], "StatisticsGen": ["statistics"], "ExampleValidator": ["example_anomalies"],
    "SchemaGen": ["schema"], "ImportSchemaGen": ["schema"], "Transform": ["transform_graph"],
    "Tuner": ["best_hyperparameters"], "Trainer": ["trained_model"], "Evaluator": ["model_evaluation"],
    "ModelValidator": ["model_evaluation"], "InfraValidator": ["infra_validation"], "Pusher": ["pushed_model"],
    "BulkInferrer": ["batch_predictions"],
}
INGEST = ["examples", "statistics", "example_anomalies"]
TRAINING = ["schema", "transform_graph", "best_hyperparameters", "trained_model", "model_evaluation",
            "infra_validation", "pushed_model"]
UNSERVED_BEAM_FLAGS = ("--runner", "--project", "--region", "--temp_location", "--staging_location",
                       "--service_account_email", "--machine_type", "--max_num_workers", "--experiments")


@dataclass
class Mapped:
    pipeline_name: str
    settings: dict
    landing: Landing
    module_file: Path | None
    serving_base: Path | None
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    training_assets: list[str] = field(default_factory=list)
    batch_inference: bool = False
    force: bool = False


def kind(node) -> str:
    name = type(node).__name__
    return "CsvExampleGen" if name == "FileBasedExampleGen" else name


def where(node) -> str:
    return f"{node.id} ({node.declared_at})" if getattr(node, "declared_at", "") else node.id


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("_") or "model"
