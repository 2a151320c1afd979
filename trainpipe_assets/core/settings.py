"""The one place that reads trainpipe's settings: TRAINPIPE_HOME, TRAINPIPE_CONFIG and the YAML file it names."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Literal, Optional

import yaml
from dagster import ConfigurableResource
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PACKAGE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PACKAGE_DIR / "default_config.yaml"
DEFAULT_MODULE_FILE = PACKAGE_DIR / "example_modules" / "sample_module.py"

ColumnType = Literal["INT", "FLOAT", "STRING"]
MetricName = Literal["accuracy", "auc", "precision", "recall", "loss"]


class SourceSettings(BaseModel):
    """csv: files <name>_YYYY-MM-DD.csv in landing_dir. sql: rows of `table` (or `query`) by `timestamp_column`,
    new rows found by an increasing `primary_key`."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["csv", "sql"] = "csv"
    landing_dir: str = "landing"
    url: Optional[str] = None  # SQLAlchemy URL: sqlite:///data.db, postgresql://user:pw@host/db (psycopg 3)
    table: Optional[str] = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")
    query: Optional[str] = None
    timestamp_column: Optional[str] = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    primary_key: Optional[str] = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @model_validator(mode="after")
    def _sql_needs_url_rows_and_columns(self) -> "SourceSettings":
        if self.kind == "sql":
            missing = [f for f in ("url", "timestamp_column", "primary_key") if not getattr(self, f)]
            if not (self.table or self.query):
                missing.append("table or query")
            if missing:
                raise ValueError(f"kind: sql needs {', '.join(missing)}")
        return self


class TuningSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True  # false: no search; `hyperparameters` are used as they are
    steps_fraction: float = Field(0.2, gt=0, le=1)  # the tuner trains this share of train_steps per trial
    num_parallel_trials: int = Field(1, ge=1)  # >1: trials run in that many worker processes (KerasTuner distributed)
    hyperparameters: dict[str, float | int | str | bool] = Field(default_factory=dict)
    # Distributed tuning across machines: the chief's KerasTuner oracle listens here (0.0.0.0 to accept other hosts;
    # advertised to workers as oracle_advertise_host or this host's name). With remote_workers > 0 the search is
    # published in the shared TRAINPIPE_HOME, where `trainpipe tuning-worker` processes on the tuning machines find and
    # join it; the chief does not wait for them: workers that join take the trials not yet handed out.
    oracle_bind_host: str = "127.0.0.1"
    oracle_advertise_host: Optional[str] = None
    remote_workers: int = Field(0, ge=0)


class TrainingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # >1: run_fn runs in this many processes with TF_CONFIG set (a chief and workers, the contract of
    # tf.distribute.MultiWorkerMirroredStrategy); only the chief's SavedModel is kept.
    workers: int = Field(1, ge=1)
    # Of those, the last remote_workers ranks run on other machines: `trainpipe training-worker` processes there
    # (sharing TRAINPIPE_HOME) claim them; the chief's ranks are reached at advertise_host (default: its host name).
    remote_workers: int = Field(0, ge=0)
    advertise_host: Optional[str] = None

    @model_validator(mode="after")
    def _remote_within_workers(self):
        if self.remote_workers >= self.workers:
            raise ValueError(
                f"training.remote_workers ({self.remote_workers}) must be less than training.workers "
                f"({self.workers}): the chief (rank 0) always runs with the step"
            )
        return self


class ExecutionSettings(BaseModel):
    """Where the steps run. Empty executor: each job's own (in-process chains, forked processes for batch inference).
    celery: every job's steps are Celery tasks on `broker` (dagster-celery), each asset's step on its queue."""

    model_config = ConfigDict(extra="forbid")
    executor: Optional[Literal["in_process", "multiprocess", "celery"]] = None
    broker: Optional[str] = None  # e.g. redis://host:6379/0
    backend: Optional[str] = None  # e.g. redis://host:6379/1
    queues: dict[str, str] = Field(default_factory=dict)  # asset key -> Celery queue; the others use `dagster`

    @model_validator(mode="after")
    def _celery_needs_a_broker(self) -> "ExecutionSettings":
        if self.executor == "celery" and not self.broker:
            raise ValueError("executor: celery needs broker (e.g. redis://host:6379/0)")
        return self


class ChangeThreshold(BaseModel):
    """TFMA's GenericChangeThreshold: candidate minus baseline against `absolute`, their ratio minus 1 against
    `relative`; higher_is_better passes when the change is >= the bound, lower_is_better when it is <=."""

    model_config = ConfigDict(extra="forbid")
    direction: Literal["higher_is_better", "lower_is_better"]
    absolute: Optional[float] = None
    relative: Optional[float] = None


class MetricThreshold(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lower_bound: Optional[float] = None
    upper_bound: Optional[float] = None
    change: Optional[ChangeThreshold] = None


class EvaluationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prediction_key: Optional[str] = None  # output of serving_default; default: its only (or first) output
    # The label as the model saw it: a feature of the transformed examples (e.g. tips_xf, or a vocabulary index of a
    # string label), computed by running the raw eval examples through the transform graph; default: the raw label_key.
    label_key: Optional[str] = None
    # What serving_default outputs: probabilities, logits (softmax/sigmoid is applied before every metric), or auto
    # (logits when a score is outside [0, 1] or class scores do not sum to 1; the decision is recorded).
    output: Literal["probabilities", "logits", "auto"] = "auto"
    min_eval_rows: int = Field(200, ge=0)  # fewer eval examples (or a class missing) is reported as a warning
    metrics: list[MetricName] = Field(default_factory=lambda: ["accuracy", "auc", "precision", "recall", "loss"])
    slices: list[str] = Field(default_factory=list)
    thresholds: dict[str, MetricThreshold] = Field(default_factory=dict)
    force_bless: bool = False


class PushSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keep_versions: int = Field(5, ge=1)


class InfraValidationSettings(BaseModel):
    """TFX InfraValidator without Docker: the candidate served by a separate `trainpipe serve` process."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    mode: Literal["LOAD_ONLY", "LOAD_AND_QUERY"] = "LOAD_AND_QUERY"
    num_examples: int = Field(10, ge=1)  # raw eval examples sent through :predict in LOAD_AND_QUERY
    max_loading_time_seconds: float = Field(120, gt=0)
    num_tries: int = Field(3, ge=1)
    memory_limit_mb: int = Field(4096, ge=256)  # address-space limit of the sandboxed server process


class BatchInferenceSettings(BaseModel):
    """TFX BulkInferrer: a day's examples scored by the model serving now, on Beam."""

    model_config = ConfigDict(extra="forbid")
    split: Optional[str] = None  # one split of the day, or every split when empty
    prediction_key: Optional[str] = None  # output of serving_default kept in the predictions; default: every output


class MonitoringSettings(BaseModel):
    """Evaluation after deployment (serving_model_performance): a retrain is requested when a metric of the serving
    model on a labelled day falls below `floors`, or below its evaluation-time value by more than `max_drop`."""

    model_config = ConfigDict(extra="forbid")
    floors: dict[MetricName, float] = Field(default_factory=dict)  # loss: a ceiling
    max_drop: dict[MetricName, float] = Field(default_factory=dict)
    # served_traffic: a day whose served features are skewed from the serving model's training window by more than
    # this (L-infinity, Jensen-Shannon or missing-rate change, each in [0, 1]) counts as degraded; empty: never.
    max_serving_skew: Optional[float] = Field(None, gt=0, le=1)


class ServingSettings(BaseModel):
    """Traffic capture as `trainpipe serve --capture-dir` writes it (read by served_traffic), and the labels that
    arrive for captured requests later. Relative paths are resolved against TRAINPIPE_HOME."""

    model_config = ConfigDict(extra="forbid")
    capture_dir: str = "capture"
    # A folder of CSV (header request_id,label[,index]) or JSONL ({"request_id", "label"[, "index"]}) files; index is
    # the row's position in a request of several rows (default 0). Empty: no labels.
    capture_labels: Optional[str] = None


class PipelineSettings(BaseModel):
    """The pipeline's settings as written in the YAML file; paths are resolved by TrainpipeConfig."""

    model_config = ConfigDict(extra="forbid")
    source: SourceSettings = Field(default_factory=SourceSettings)
    columns: dict[str, ColumnType] = Field(default_factory=dict)
    label_key: str
    module_file: Optional[str] = None
    custom_config: dict = Field(default_factory=dict)
    # The first daily partition: a date, or auto = the first day the source has data for (a short window before
    # today when it has none yet), resolved when the definitions load.
    partitions_start: str = "auto"
    window_days: int = Field(7, ge=1)
    min_window_days: int = Field(1, ge=1)  # fewer days that passed examples_valid in a window fails the run
    splits: dict[str, int] = Field(default_factory=lambda: {"train": 2, "eval": 1})
    partition_feature: Optional[str] = None
    max_rejected_fraction: float = Field(0.05, ge=0, le=1)
    schema_file: Optional[str] = None
    max_out_of_domain_fraction: float = Field(0.01, ge=0, le=1)
    beam_pipeline_args: list[str] = Field(default_factory=lambda: ["--direct_running_mode=in_memory"])
    retrain_hour: int = Field(3, ge=0, le=23)  # retraining_schedule: daily at this hour (UTC) for the last complete day
    model_name: str = Field("model", pattern=r"^[A-Za-z0-9_.-]+$")
    train_steps: int = Field(1000, ge=1)
    eval_steps: int = Field(100, ge=1)
    tuning: TuningSettings = Field(default_factory=TuningSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    push: PushSettings = Field(default_factory=PushSettings)
    infra_validation: InfraValidationSettings = Field(default_factory=InfraValidationSettings)
    batch_inference: BatchInferenceSettings = Field(default_factory=BatchInferenceSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)

    @field_validator("evaluation")
    @classmethod
    def _thresholds_name_metrics(cls, evaluation: EvaluationSettings) -> EvaluationSettings:
        unknown = sorted(set(evaluation.thresholds) - set(evaluation.metrics))
        if unknown:
            raise ValueError(f"thresholds for metrics that are not computed: {unknown} (metrics: {evaluation.metrics})")
        return evaluation

    @field_validator("partitions_start")
    @classmethod
    def _partitions_start_is_a_date(cls, value: str) -> str:
        import datetime as dt

        if value == "auto":
            return value
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not a date (YYYY-MM-DD) or auto: {value!r}") from None
        return value

    @field_validator("splits")
    @classmethod
    def _splits_have_train_and_eval(cls, splits: dict[str, int]) -> dict[str, int]:
        if "train" not in splits or "eval" not in splits:
            raise ValueError(f"needs 'train' and 'eval' buckets, got {sorted(splits)}")
        if any(b < 1 for b in splits.values()):
            raise ValueError(f"bucket counts must be >= 1, got {splits}")
        return splits


class ConfigError(ValueError):
    """The YAML settings file is missing, unreadable or invalid."""


@functools.lru_cache(maxsize=16)
def _read_settings(path: str, mtime_ns: int) -> PipelineSettings:
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read trainpipe config {path}: {e}") from e
    try:
        return PipelineSettings.model_validate(raw)
    except ValidationError as e:
        fields = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"invalid trainpipe config {path}: {fields}") from e


def default_home() -> str:
    return str(Path(os.environ.get("TRAINPIPE_HOME", ".trainpipe")).resolve())


def default_config_path() -> str:
    return str(Path(os.environ.get("TRAINPIPE_CONFIG") or DEFAULT_CONFIG_PATH).resolve())


class TrainpipeConfig(ConfigurableResource):
    """Where trainpipe keeps its files and which settings file it follows."""

    home: str
    config_path: str

    @classmethod
    def from_env(cls) -> "TrainpipeConfig":
        return cls(home=default_home(), config_path=default_config_path())

    @property
    def settings(self) -> PipelineSettings:
        path = Path(self.config_path)
        if not path.is_file():
            raise ConfigError(f"trainpipe config {path} does not exist (set TRAINPIPE_CONFIG)")
        return _read_settings(str(path), path.stat().st_mtime_ns)

    def _relative_to_config(self, value: Optional[str]) -> Optional[Path]:
        if not value:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else (Path(self.config_path).parent / p).resolve()

    @property
    def landing_dir(self) -> Path:
        p = Path(self.settings.source.landing_dir).expanduser()
        return p if p.is_absolute() else Path(self.home) / p

    @property
    def artifacts_dir(self) -> Path:
        return Path(self.home) / "artifacts"

    @property
    def module_file(self) -> Path:
        return self._relative_to_config(self.settings.module_file) or DEFAULT_MODULE_FILE

    @property
    def schema_file(self) -> Optional[Path]:
        return self._relative_to_config(self.settings.schema_file)

    def _relative_to_home(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else Path(self.home) / p

    @property
    def capture_dir(self) -> Path:
        """Where `trainpipe serve --capture-dir` writes captured traffic: `<capture_dir>/<model_name>/<day>.*.jsonl`."""
        return self._relative_to_home(self.settings.serving.capture_dir)

    @property
    def capture_labels_dir(self) -> Optional[Path]:
        labels = self.settings.serving.capture_labels
        return self._relative_to_home(labels) if labels else None

    @property
    def serving_dir(self) -> Path:
        """TF Serving's model base path: `<serving>/<model_name>/<version>/`."""
        return Path(self.home) / "serving" / self.settings.model_name
