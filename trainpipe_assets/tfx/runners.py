"""The runners a pipeline file ends with. Each `run(pipeline)` maps the pipeline onto trainpipe's settings and runs
trainpipe's jobs (execute.py); which runner it was only changes what is reported (and, for Airflow, the schedule)."""

from __future__ import annotations

from typing import Optional


class _Runner:
    NAME = "LocalDagRunner"
    REMOTE = False  # a runner for a cluster trainpipe does not drive (Kubeflow, Vertex): reported, run here instead

    def __init__(self, config=None, *args, **kwargs):
        self.config = config

    def run(self, pipeline, *args, **kwargs):
        from trainpipe_assets.tfx.execute import run_pipeline

        return run_pipeline(pipeline, runner=self)

    def schedule_interval(self) -> Optional[str]:
        return None


class LocalDagRunner(_Runner):
    NAME = "LocalDagRunner"


class BeamDagRunner(_Runner):
    NAME = "BeamDagRunner"


class AirflowPipelineConfig:
    def __init__(self, airflow_dag_config: Optional[dict] = None, **kwargs):
        self.airflow_dag_config = dict(airflow_dag_config or {})


class AirflowDagRunner(_Runner):
    NAME = "AirflowDagRunner"

    def schedule_interval(self) -> Optional[str]:
        config = getattr(self.config, "airflow_dag_config", None) or (self.config if isinstance(self.config, dict)
                                                                       else {})
        value = config.get("schedule_interval")
        return None if value is None else str(value)


class KubeflowDagRunner(_Runner):
    NAME = "KubeflowDagRunner"
    REMOTE = True


class KubeflowV2DagRunner(_Runner):
    NAME = "KubeflowV2DagRunner"
    REMOTE = True


class _Config:
    def __init__(self, *args, **kwargs):
        self.kwargs = kwargs


KubeflowDagRunnerConfig = KubeflowV2DagRunnerConfig = _Config


def get_default_kubeflow_metadata_config():
    return {}
