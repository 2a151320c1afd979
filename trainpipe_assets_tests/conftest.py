"""Shared fixtures. The expensive artifacts (ingested days, schema, transform graph) are built once per session."""
import datetime as dt
import os
import tempfile
from pathlib import Path

# Before anything imports trainpipe_assets: never write into the working directory's .trainpipe during tests.
os.environ.setdefault("TRAINPIPE_HOME", tempfile.mkdtemp(prefix="trainpipe-test-home-"))
os.environ.pop("TRAINPIPE_CONFIG", None)

import pytest
from dagster import instance_for_test

from trainpipe_assets.config import DEFAULT_CONFIG_PATH, TrainpipeConfig
from trainpipe_assets.definitions import build_definitions
from trainpipe_assets.sample_data import write_days

DAYS = ["2024-03-01", "2024-03-02", "2024-03-03"]
ROWS_PER_DAY = 240


def make_config(home: Path, config_path: Path = DEFAULT_CONFIG_PATH) -> TrainpipeConfig:
    return TrainpipeConfig(home=str(home), config_path=str(config_path))


def run_job(defs, job_name: str, day: str, instance, raise_on_error: bool = True):
    return defs.resolve_job_def(job_name).execute_in_process(
        partition_key=day, instance=instance, raise_on_error=raise_on_error
    )


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def instance():
    with instance_for_test() as inst:
        yield inst


def write_config(path: Path, **overrides) -> Path:
    """The bundled settings with some fields replaced (nested dicts are merged one level deep)."""
    import yaml

    settings = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            settings[key] = {**settings[key], **value}
        else:
            settings[key] = value
    path.write_text(yaml.safe_dump(settings, sort_keys=False))  # key order matters: splits are ordered buckets
    return path


# Tiny training for tests: a few steps, two tuning trials.
FAST_TRAINING = {"train_steps": 40, "eval_steps": 5, "custom_config": {"max_trials": 2}}


@pytest.fixture(scope="session")
def fast_config(tmp_path_factory) -> Path:
    return write_config(tmp_path_factory.mktemp("config") / "trainpipe.yaml", **FAST_TRAINING)


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory, fast_config):
    """Three sample days ingested and the window ending on the last one trained, evaluated and pushed."""
    home = tmp_path_factory.mktemp("pipeline") / "home"
    trainpipe = make_config(home, fast_config)
    write_days(trainpipe.landing_dir, len(DAYS), ROWS_PER_DAY, end=dt.date.fromisoformat(DAYS[-1]), seed=7)
    defs = build_definitions(trainpipe)
    with instance_for_test() as inst:
        for day in DAYS:
            run_job(defs, "ingest_job", day, inst)
        training = run_job(defs, "training_job", DAYS[-1], inst)
        yield {"home": home, "trainpipe": trainpipe, "defs": defs, "instance": inst, "training": training}


def resources_for(trainpipe: TrainpipeConfig) -> dict:
    from trainpipe_assets.io_managers.artifact_dir import ArtifactDirIOManager
    from trainpipe_assets.io_managers.saved_model import SavedModelIOManager
    from trainpipe_assets.io_managers.tfrecord import TFRecordIOManager

    return {
        "trainpipe": trainpipe,
        "tfrecord_io_manager": TFRecordIOManager(home=trainpipe.home),
        "artifact_io_manager": ArtifactDirIOManager(home=trainpipe.home),
        "saved_model_io_manager": SavedModelIOManager(home=trainpipe.home),
    }


def failure_message(result) -> str:
    """The text of the first step failure of a run (what a user reads in the UI)."""
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            return "\n".join(filter(None, [error.message, *(c.message for c in [error.cause] if c)]))
    raise AssertionError("the run did not fail")


@pytest.fixture(scope="session")
def retrained(pipeline):
    """A second, forced training run of the same window after the first model was pushed: it must compare against
    it. (Without the force tag every step would be reused from the first run.) A 40-step model may lose to the
    baseline by more than the change threshold; the run then fails its blocking check, which the tests allow."""
    return pipeline["defs"].resolve_job_def("training_job").execute_in_process(
        partition_key=DAYS[-1], instance=pipeline["instance"], tags={"trainpipe/force": "true"}, raise_on_error=False
    )
