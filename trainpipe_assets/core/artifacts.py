"""The artifacts passed between assets: small frozen dataclasses of paths and facts, in TFX's folder layouts.

Paths inside an artifact are kept relative to its `uri`, so an IO manager can move a staging folder into place.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPLIT_PREFIX = "Split-"
RECORDS_GLOB = "*.gz"


def split_dir(uri: str | Path, split: str) -> Path:
    return Path(uri) / f"{SPLIT_PREFIX}{split}"


@dataclass(frozen=True)
class Examples:
    """tf.Example TFRecords of one or more daily partitions; `file_patterns[split]` is a list, like TFX's
    train_files."""

    uris: list[str]
    partitions: list[str]
    row_counts: dict[str, int]
    missing_partitions: list[str] = field(default_factory=list)
    fingerprints: dict[str, str] = field(default_factory=dict)  # partition -> content hash of its source files

    @property
    def splits(self) -> list[str]:
        return list(self.row_counts)

    @property
    def file_patterns(self) -> dict[str, list[str]]:
        return {s: [str(split_dir(u, s) / RECORDS_GLOB) for u in self.uris] for s in self.splits}

    @property
    def num_rows(self) -> int:
        return sum(self.row_counts.values())

    def only(self, partitions: list[str]) -> "Examples":
        """The same examples restricted to `partitions` (the others join `missing_partitions`); row counts are read
        from each day's manifest."""
        keep = [(u, p) for u, p in zip(self.uris, self.partitions) if p in partitions]
        counts: dict[str, int] = {}
        for uri, _ in keep:
            for split, n in json.loads((Path(uri) / MANIFEST).read_text())["fields"]["row_counts"].items():
                counts[split] = counts.get(split, 0) + n
        return Examples(
            uris=[u for u, _ in keep],
            partitions=[p for _, p in keep],
            row_counts=counts or {s: 0 for s in self.row_counts},
            missing_partitions=sorted(set(self.missing_partitions) | (set(self.partitions) - set(partitions))),
            fingerprints={p: f for p, f in self.fingerprints.items() if p in partitions},
        )


@dataclass(frozen=True)
class Statistics:
    """TFX StatisticsGen's layout: `Split-<name>/FeatureStats.pb`, a DatasetFeatureStatisticsList per split."""

    uri: str
    partition: str
    splits: list[str]
    cache_key: str = ""

    def path(self, split: str) -> Path:
        return split_dir(self.uri, split) / "FeatureStats.pb"

    def load(self, split: str):
        from tensorflow_metadata.proto.v0 import statistics_pb2

        return statistics_pb2.DatasetFeatureStatisticsList.FromString(self.path(split).read_bytes())


@dataclass(frozen=True)
class ExampleAnomalies:
    """TFX ExampleValidator's layout: `Split-<name>/SchemaDiff.pb` (tensorflow_metadata `Anomalies`) per split, and
    `anomalies.json`: the verdict ("passed", "failed", "not checked"), the schema judged against and every anomaly."""

    uri: str
    partition: str
    splits: list[str]
    verdict: str
    schema_uri: str | None = None
    cache_key: str = ""

    def path(self, split: str) -> Path:
        return split_dir(self.uri, split) / "SchemaDiff.pb"

    def report(self) -> dict:
        return json.loads((Path(self.uri) / "anomalies.json").read_text())


@dataclass(frozen=True)
class Schema:
    """TFX SchemaGen's layout: `schema.pbtxt`."""

    uri: str
    partition: str
    inferred_from: list[str]
    imported_from: str | None = None
    cache_key: str = ""

    @property
    def path(self) -> Path:
        return Path(self.uri) / "schema.pbtxt"

    def load(self):
        from google.protobuf import text_format
        from tensorflow_metadata.proto.v0 import schema_pb2

        return text_format.Parse(self.path.read_text(), schema_pb2.Schema())


@dataclass(frozen=True)
class TransformGraph:
    """TFX Transform's layout: `transform_fn/`, `transformed_metadata/`, raw `metadata/`, transformed `Split-*/`."""

    uri: str
    partition: str
    analyzed_partitions: list[str]
    transformed_row_counts: dict[str, int]
    example_fingerprints: dict[str, str] = field(default_factory=dict)
    cache_key: str = ""

    @property
    def transformed_examples(self) -> Examples:
        return Examples(
            uris=[self.uri], partitions=list(self.analyzed_partitions), row_counts=self.transformed_row_counts
        )

    def tft_output(self):
        import tensorflow_transform as tft

        return tft.TFTransformOutput(self.uri)


@dataclass(frozen=True)
class Hyperparameters:
    """TFX Tuner's layout: `best_hyperparameters.txt`, the JSON of keras_tuner.HyperParameters.get_config()."""

    uri: str
    partition: str
    tuned: bool
    cache_key: str = ""

    @property
    def path(self) -> Path:
        return Path(self.uri) / "best_hyperparameters.txt"

    def load(self) -> dict:
        return json.loads(self.path.read_text())


@dataclass(frozen=True)
class Model:
    """TFX Trainer's layout: `Format-Serving/` (the SavedModel) and `model_run/` (TensorBoard logs)."""

    uri: str
    partition: str
    run_id: str
    cache_key: str = ""

    @property
    def serving_model_dir(self) -> Path:
        return Path(self.uri) / "Format-Serving"

    @property
    def model_run_dir(self) -> Path:
        return Path(self.uri) / "model_run"


@dataclass(frozen=True)
class ModelEvaluation:
    """TFX Evaluator's layout: `BLESSED` or `NOT_BLESSED`, and `evaluation.json` with metrics and verdicts."""

    uri: str
    partition: str
    blessed: bool
    candidate_uri: str
    baseline_version: int | None
    cache_key: str = ""

    @property
    def report_path(self) -> Path:
        return Path(self.uri) / "evaluation.json"

    def report(self) -> dict:
        return json.loads(self.report_path.read_text())


@dataclass(frozen=True)
class InfraValidation:
    """TFX InfraValidator's layout: `INFRA_BLESSED` or `INFRA_NOT_BLESSED`, and `infra_validation.json` with every
    attempt (reason, load time, latencies, the server's log tail)."""

    uri: str
    partition: str
    blessed: bool
    candidate_uri: str
    cache_key: str = ""

    def report(self) -> dict:
        return json.loads((Path(self.uri) / "infra_validation.json").read_text())


@dataclass(frozen=True)
class PushedModel:
    """TFX Pusher's result: the version now under `<serving>/<model_name>/<version>/`."""

    uri: str
    partition: str
    model_name: str
    version: int
    serving_path: str
    source_model: str
    cache_key: str = ""


ARTIFACT_TYPES = {
    cls.__name__: cls
    for cls in (
        Examples,
        Statistics,
        ExampleAnomalies,
        Schema,
        TransformGraph,
        Hyperparameters,
        Model,
        ModelEvaluation,
        InfraValidation,
        PushedModel,
    )
}
MANIFEST = "artifact.json"


def to_manifest(artifact: Any, **overrides: Any) -> str:
    fields = dataclasses.asdict(artifact) | overrides
    return json.dumps({"type": type(artifact).__name__, "fields": fields}, indent=2, sort_keys=True)


def from_manifest(text: str) -> Any:
    data = json.loads(text)
    return ARTIFACT_TYPES[data["type"]](**data["fields"])


@dataclass(frozen=True)
class BatchPredictions:
    """TFX BulkInferrer's result, as Parquet: `predictions/*.parquet`, one row per example (its split, its position
    in the split's files, one column per output of serving_default)."""

    uri: str
    partition: str
    model_version: int
    serving_path: str
    row_counts: dict[str, int]
    output_keys: list[str]
    cache_key: str = ""

    @property
    def predictions_dir(self) -> Path:
        return Path(self.uri) / "predictions"

    def load(self):
        """Every prediction as one pyarrow Table, sorted by split and index."""
        import pyarrow.parquet as pq

        return pq.read_table(self.predictions_dir).sort_by([("split", "ascending"), ("index", "ascending")])


@dataclass(frozen=True)
class ServingPerformance:
    """Evaluation after deployment: `performance.json`, the serving model's metrics on a labelled day."""

    uri: str
    partition: str
    model_version: int
    metrics: dict[str, float | None]
    degraded: bool
    reasons: list[str]

    @property
    def report_path(self) -> Path:
        return Path(self.uri) / "performance.json"

    def report(self) -> dict:
        return json.loads(self.report_path.read_text())


ARTIFACT_TYPES.update({cls.__name__: cls for cls in (BatchPredictions, ServingPerformance)})
