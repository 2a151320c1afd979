"""The Definitions object: gathers assets, checks, jobs, sensors and resources."""
from dagster import Definitions

from .assets.batch_inference import batch_predictions
from .assets.evaluation import model_evaluation
from .assets.examples import examples
from .assets.infra_validation import infra_validation
from .assets.push import pushed_model
from .assets.schema import schema
from .assets.serving_performance import serving_model_performance
from .assets.statistics import statistics
from .assets.training import trained_model
from .assets.transform import transform_graph
from .assets.tuning import best_hyperparameters
from .checks import examples_valid, infra_blessed, model_blessed
from .config import TrainpipeConfig
from .io_managers.artifact_dir import ArtifactDirIOManager
from .io_managers.saved_model import SavedModelIOManager
from .io_managers.tfrecord import TFRecordIOManager
from .jobs import batch_inference_job, ingest_job, training_job
from .new_rows_sensor import new_rows_sensor
from .performance_sensor import retrain_on_degradation_sensor
from .schedules import retraining_schedule
from .sensors import new_data_sensor, retrain_on_new_data_sensor


def build_definitions(trainpipe: TrainpipeConfig) -> Definitions:
    return Definitions(
        assets=[
            examples, statistics, schema, transform_graph, best_hyperparameters, trained_model, model_evaluation, infra_validation,
            pushed_model, batch_predictions, serving_model_performance,
        ],
        asset_checks=[examples_valid, model_blessed, infra_blessed],
        jobs=[ingest_job, training_job, batch_inference_job],
        sensors=[new_data_sensor, new_rows_sensor, retrain_on_new_data_sensor, retrain_on_degradation_sensor],
        schedules=[retraining_schedule],
        resources={
            "trainpipe": trainpipe,
            "tfrecord_io_manager": TFRecordIOManager(home=trainpipe.home),
            "artifact_io_manager": ArtifactDirIOManager(home=trainpipe.home),
            "saved_model_io_manager": SavedModelIOManager(home=trainpipe.home),
        },
    )


defs = build_definitions(TrainpipeConfig.from_env())
