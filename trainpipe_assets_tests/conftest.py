"""Shared fixtures. The expensive artifacts (ingested days, schema, transform graph) are built once per session;
helpers.py holds the shared helpers."""

import datetime as dt
import os
import tempfile
from pathlib import Path

# Before anything imports trainpipe_assets: never write into the working directory's .trainpipe during tests.
os.environ.setdefault("TRAINPIPE_HOME", tempfile.mkdtemp(prefix="trainpipe-test-home-"))
os.environ.pop("TRAINPIPE_CONFIG", None)

import pytest  # noqa: E402
from dagster import instance_for_test  # noqa: E402

from trainpipe_assets.data.sample_data import write_days  # noqa: E402
from trainpipe_assets.definitions import build_definitions  # noqa: E402
from trainpipe_assets_tests.helpers import (  # noqa: E402
    DAYS,
    FAST_TRAINING,
    ROWS_PER_DAY,
    make_config,
    run_job,
    write_config,
)


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def instance():
    with instance_for_test() as inst:
        yield inst


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


@pytest.fixture(scope="session")
def retrained(pipeline):
    """A second, forced training run of the same window after the first model was pushed: it must compare against
    it. (Without the force tag every step would be reused from the first run.) A 40-step model may lose to the
    baseline by more than the change threshold; the run then fails its blocking check, which the tests allow."""
    return (
        pipeline["defs"]
        .resolve_job_def("training_job")
        .execute_in_process(
            partition_key=DAYS[-1],
            instance=pipeline["instance"],
            tags={"trainpipe/force": "true"},
            raise_on_error=False,
        )
    )
