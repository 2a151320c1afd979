"""The Definitions object: every component's asset and check, the jobs, schedule and sensors, and the resources, all
built from one settings object (`build_definitions(trainpipe)`); `defs` is that for TRAINPIPE_HOME/TRAINPIPE_CONFIG,
for the `dagster` CLI and workspace.yaml."""

from dagster import Definitions

from trainpipe_assets.core.io_managers.artifact_dir import ArtifactDirIOManager
from trainpipe_assets.core.io_managers.saved_model import SavedModelIOManager
from trainpipe_assets.core.io_managers.tfrecord import TFRecordIOManager
from trainpipe_assets.core.settings import TrainpipeConfig
from trainpipe_assets.data.example_gen import examples
from trainpipe_assets.data.example_validator import example_anomalies, examples_valid
from trainpipe_assets.data.schema_gen import schema
from trainpipe_assets.data.statistics_gen.component import statistics
from trainpipe_assets.deploy.bulk_inferrer import batch_predictions
from trainpipe_assets.deploy.infra_validator import infra_blessed, infra_validation
from trainpipe_assets.deploy.pusher import pushed_model
from trainpipe_assets.model.evaluator.component import model_blessed, model_evaluation
from trainpipe_assets.model.trainer import trained_model
from trainpipe_assets.model.transform import transform_graph
from trainpipe_assets.model.tuner import best_hyperparameters
from trainpipe_assets.monitoring.served_traffic import served_traffic
from trainpipe_assets.monitoring.serving_model_performance import serving_model_performance
from trainpipe_assets.orchestration.jobs import build_jobs, queue_tags
from trainpipe_assets.orchestration.loaded_partitions import resolved_partitioning
from trainpipe_assets.orchestration.new_rows_sensor import new_rows_sensor
from trainpipe_assets.orchestration.performance_sensor import retrain_on_degradation_sensor
from trainpipe_assets.orchestration.schedules import build_retraining_schedule
from trainpipe_assets.orchestration.sensors import new_data_sensor, retrain_on_new_data_sensor

ASSETS = (
    examples,
    statistics,
    example_anomalies,
    schema,
    transform_graph,
    best_hyperparameters,
    trained_model,
    model_evaluation,
    infra_validation,
    pushed_model,
    batch_predictions,
    serving_model_performance,
    served_traffic,
)
CHECKS = (examples_valid, model_blessed, infra_blessed)


def build_definitions(trainpipe: TrainpipeConfig) -> Definitions:
    """Partitions (partitions_start), the training window (window_days), the schedule (retrain_hour) and where steps
    run (execution) follow `trainpipe`'s settings file, the resource every asset, check and sensor reads."""
    settings = trainpipe.settings
    p = resolved_partitioning(trainpipe)  # partitions_start: auto -> the first day of data
    jobs = {job.name: job for job in build_jobs(settings.execution)}
    return Definitions(
        assets=[b.build(p, op_tags=queue_tags(settings.execution, b.name)) for b in ASSETS],
        asset_checks=[b.build(p, op_tags=queue_tags(settings.execution, b.asset_name)) for b in CHECKS],
        jobs=list(jobs.values()),
        sensors=[new_data_sensor, new_rows_sensor, retrain_on_new_data_sensor, retrain_on_degradation_sensor],
        schedules=[build_retraining_schedule(settings, jobs["training_job"])],
        resources={
            "trainpipe": trainpipe,
            "tfrecord_io_manager": TFRecordIOManager(home=trainpipe.home),
            "artifact_io_manager": ArtifactDirIOManager(home=trainpipe.home),
            "saved_model_io_manager": SavedModelIOManager(home=trainpipe.home),
        },
    )


defs = build_definitions(TrainpipeConfig.from_env())
