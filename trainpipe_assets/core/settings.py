"""The one place that reads trainpipe's settings: TRAINPIPE_HOME, TRAINPIPE_CONFIG and the YAML file it names."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Optional

import yaml
from dagster import ConfigurableResource
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# the sections, also imported from here
from trainpipe_assets.core.settings_sections import (  # noqa: F401
    BatchInferenceSettings,
    ChangeThreshold,
    ColumnType,
    EvaluationSettings,
    ExecutionSettings,
    InfraValidationSettings,
    MetricName,
    MetricThreshold,
    MonitoringSettings,
    PushSettings,
    ServingSettings,
    SourceSettings,
    TrainingSettings,
    TuningSettings,
)

PACKAGE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PACKAGE_DIR / "default_config.yaml"
DEFAULT_MODULE_FILE = PACKAGE_DIR / "example_modules" / "sample_module.py"


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
