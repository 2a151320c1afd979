"""The Definitions object: gathers assets, checks, jobs, sensors and resources."""
from dagster import Definitions

from .assets.examples import examples
from .assets.schema import schema
from .assets.statistics import statistics
from .assets.transform import transform_graph
from .checks import examples_valid
from .config import TrainpipeConfig
from .io_managers.artifact_dir import ArtifactDirIOManager
from .io_managers.tfrecord import TFRecordIOManager
from .jobs import ingest_job, training_job
from .sensors import new_data_sensor


def build_definitions(trainpipe: TrainpipeConfig) -> Definitions:
    return Definitions(
        assets=[examples, statistics, schema, transform_graph],
        asset_checks=[examples_valid],
        jobs=[ingest_job, training_job],
        sensors=[new_data_sensor],
        resources={
            "trainpipe": trainpipe,
            "tfrecord_io_manager": TFRecordIOManager(home=trainpipe.home),
            "artifact_io_manager": ArtifactDirIOManager(home=trainpipe.home),
        },
    )


defs = build_definitions(TrainpipeConfig.from_env())
