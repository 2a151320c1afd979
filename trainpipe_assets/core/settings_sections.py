"""The sections of trainpipe's settings file (source, tuning, training, execution, evaluation, push, infra validation,
batch inference, monitoring, serving), each a pydantic model that rejects unknown keys; settings.py assembles them
into PipelineSettings and is the one place that reads the file."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    # >1: trials run in that many KerasTuner workers (its distributed mode; this step holds the oracle): local
    # processes, or with execution.executor celery, Celery tasks on `queue` (default: best_hyperparameters' queue).
    num_parallel_trials: int = Field(1, ge=1)
    hyperparameters: dict[str, float | int | str | bool] = Field(default_factory=dict)
    queue: Optional[str] = None
    # The oracle listens here (0.0.0.0 for workers on other machines) and is advertised to the workers as
    # oracle_advertise_host (default: 127.0.0.1 for a loopback bind, else this host's name).
    oracle_bind_host: str = "127.0.0.1"
    oracle_advertise_host: Optional[str] = None
    start_timeout: float = Field(600, gt=0)  # no worker took any of the tuning tasks within this: the step fails


class TrainingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # >1: run_fn runs in this many processes with TF_CONFIG set (a chief and workers, the contract of
    # tf.distribute.MultiWorkerMirroredStrategy); only the chief's SavedModel is kept. The chief runs with the step;
    # with execution.executor celery the other ranks are Celery tasks on `queue` (default: trained_model's queue),
    # else local processes. The chief is reached at advertise_host (default: its host name); a Celery worker's ranks
    # at its TRAINPIPE_ADVERTISE_HOST (default: its host name).
    workers: int = Field(1, ge=1)
    queue: Optional[str] = None
    advertise_host: Optional[str] = None
    start_timeout: float = Field(600, gt=0)  # a rank no worker took (or that did not start) within this fails the step


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
