"""Helpers the tests share: settings files, resources, running jobs, assets and sensors, and reading results."""

from __future__ import annotations

import base64
import re
import tempfile
from pathlib import Path

import dagster
from dagster import build_sensor_context

from trainpipe_assets.core.partitions import partitioning
from trainpipe_assets.core.settings import DEFAULT_CONFIG_PATH, TrainpipeConfig
from trainpipe_assets.orchestration.loaded_partitions import resolved_partitioning

DAYS = ["2024-03-01", "2024-03-02", "2024-03-03"]
ROWS_PER_DAY = 240
# Tiny training for tests: a few steps, two tuning trials.
FAST_TRAINING = {"train_steps": 40, "eval_steps": 5, "custom_config": {"max_trials": 2}}
# Fixed hyperparameters from the sample module's space, for tests that retrain without tuning.
FIXED = {"hidden_units": 16, "num_layers": 1, "learning_rate": 0.01}
# Daily partitions from 2024-01-01 with a 7-day window, for tests of IO managers and sensors.
daily_partitions = partitioning("2024-01-01", 7).daily


def make_config(home: Path, config_path: Path = DEFAULT_CONFIG_PATH) -> TrainpipeConfig:
    return TrainpipeConfig(home=str(home), config_path=str(config_path))


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


def resources_for(trainpipe: TrainpipeConfig) -> dict:
    from trainpipe_assets.core.io_managers.artifact_dir import ArtifactDirIOManager
    from trainpipe_assets.core.io_managers.saved_model import SavedModelIOManager
    from trainpipe_assets.core.io_managers.tfrecord import TFRecordIOManager

    return {
        "trainpipe": trainpipe,
        "tfrecord_io_manager": TFRecordIOManager(home=trainpipe.home),
        "artifact_io_manager": ArtifactDirIOManager(home=trainpipe.home),
        "saved_model_io_manager": SavedModelIOManager(home=trainpipe.home),
    }


def materialize(blueprints, resources: dict, selection=None, **kwargs):
    """dagster.materialize for the pipeline's assets and checks, built with the partitioning of the settings in
    resources["trainpipe"] (as build_definitions does)."""
    p = resolved_partitioning(resources["trainpipe"])
    key = kwargs.get("partition_key")
    if key and not p.daily.has_partition_key(key):  # a home holding copied artifacts but no landed data
        p = partitioning("2024-01-01", resources["trainpipe"].settings.window_days)
    selected = [b.name for b in selection] if selection else None
    return dagster.materialize([b.build(p) for b in blueprints], selection=selected, resources=resources, **kwargs)


def run_job(defs, job_name: str, day: str, instance, raise_on_error: bool = True, tags: dict | None = None):
    return defs.resolve_job_def(job_name).execute_in_process(
        partition_key=day, instance=instance, raise_on_error=raise_on_error, tags=tags
    )


def tick(sensor, cursor=None, instance=None, trainpipe: TrainpipeConfig | None = None, with_cursor: bool = False):
    """One evaluation of `sensor`, as the daemon runs it (and the cursor it left, for a sensor that updates it)."""
    if trainpipe is None:  # settings with a fixed first partition (2024-01-01), for sensors that need partitions only
        scratch = Path(tempfile.mkdtemp(prefix="trainpipe-tick-"))
        trainpipe = make_config(scratch / "home", write_config(scratch / "fixed.yaml", partitions_start="2024-01-01"))
    resources = {"trainpipe": trainpipe}
    context = build_sensor_context(cursor=cursor, instance=instance, resources=resources)
    result = sensor(context)
    return (result, context.cursor) if with_cursor else result


def metadata_of(result, asset: str | None = None) -> dict:
    """The metadata of the run's one materialization (of `asset`, when the run made several)."""
    events = result.get_asset_materialization_events()
    [event] = [e for e in events if asset is None or e.asset_key.to_user_string() == asset]
    return event.materialization.metadata


def failure_message(result) -> str:
    """The text of the first step failure of a run (what a user reads in the UI)."""
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            return "\n".join(filter(None, [error.message, *(c.message for c in [error.cause] if c)]))
    raise AssertionError("the run did not fail")


def example(**features) -> bytes:
    """A serialized tf.Example: ints -> int64_list, floats -> float_list, strings -> bytes_list; None is absent."""
    import tensorflow as tf

    feature = {}
    for name, value in features.items():
        if value is None:
            continue
        if isinstance(value, float):
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
        elif isinstance(value, int):
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        else:
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
INLINE_PNG = re.compile(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


def inline_pngs(markdown: str) -> list[bytes]:
    """The PNGs a markdown metadata value inlines as `![alt](data:image/png;base64,...)`."""
    return [base64.b64decode(m) for m in INLINE_PNG.findall(markdown)]


def job_execute(job_name: str, day: str) -> list[str]:
    """`dagster job execute` of one partition of a job, as CI and the README run it."""
    import json
    import sys

    dagster = str(Path(sys.executable).parent / "dagster")
    tags = json.dumps({"dagster/partition": day})
    return [dagster, "job", "execute", "-m", "trainpipe_assets.definitions", "-j", job_name, "--tags", tags]


def job_env(trainpipe: TrainpipeConfig, dagster_home: Path, kill_at: str | None = None) -> dict:
    """The environment of a command on `trainpipe`'s home and settings and `dagster_home`'s instance; `kill_at`
    sets the fault-injection point (core/faults.py), which is otherwise unset."""
    import os

    from trainpipe_assets.core.faults import KILL_AT_ENV

    env = {
        **os.environ,
        "TRAINPIPE_HOME": trainpipe.home,
        "TRAINPIPE_CONFIG": trainpipe.config_path,
        "DAGSTER_HOME": str(dagster_home),
    }
    env.pop(KILL_AT_ENV, None)
    if kill_at:
        env[KILL_AT_ENV] = kill_at
    return env
