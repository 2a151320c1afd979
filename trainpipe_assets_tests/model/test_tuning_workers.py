"""Distributed tuning in local worker processes (KerasTuner's distributed mode; trainpipe_assets/scaleout/): a worker
killed mid-trial loses only its trial, and a search where no trial completed fails with a worker's log. The same
search on Celery workers runs in orchestration/test_cluster.py."""

import shutil
from pathlib import Path

from trainpipe_assets.data.example_gen import examples
from trainpipe_assets.data.schema_gen import schema
from trainpipe_assets.data.statistics_gen.component import statistics
from trainpipe_assets.model.transform import transform_graph
from trainpipe_assets.model.tuner import best_hyperparameters
from trainpipe_assets_tests.helpers import (
    DAYS,
    failure_message,
    make_config,
    materialize,
    metadata_of,
    resources_for,
    write_config,
)

# Few steps; a fixed first partition (this home has no landing data to find it from).
TRAINING = {"train_steps": 40, "eval_steps": 5, "partitions_start": "2024-01-01"}


def _home_with_window(pipeline, tmp_path) -> Path:
    home = tmp_path / "home"
    for asset in ("schema", "transform_graph"):  # this window's upstream artifacts, in a home of its own
        shutil.copytree(pipeline["home"] / "artifacts" / asset, home / "artifacts" / asset)
    return home


KILLED_MODULE = """
import os
import signal

import keras

from trainpipe_assets.example_modules import sample_module
from trainpipe_assets.example_modules.sample_module import *  # noqa: F403


class DieMidTrial(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 2:
            print("worker local1 is killed mid-trial", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # no goodbye to the oracle


def tuner_fn(fn_args):
    result = sample_module.tuner_fn(fn_args)
    if os.environ.get("KERASTUNER_TUNER_ID") == "local1":
        result.fit_kwargs["callbacks"] = [*result.fit_kwargs.get("callbacks", []), DieMidTrial()]
    return result
"""


def test_a_worker_killed_mid_trial_loses_only_its_trial(pipeline, instance, tmp_path):
    """KerasTuner alone would wait forever for the trial of a dead worker; the step ends that trial (KerasTuner's
    end_trial) and the search goes on with the other worker."""
    (tmp_path / "killed_module.py").write_text(KILLED_MODULE)
    config = write_config(
        tmp_path / "killed.yaml",
        **TRAINING,
        module_file="killed_module.py",
        tuning={"num_parallel_trials": 2},
        custom_config={"max_trials": 4},
    )
    result = materialize(
        [examples, statistics, schema, transform_graph, best_hyperparameters],
        selection=[best_hyperparameters],
        partition_key=DAYS[-1],
        resources=resources_for(make_config(_home_with_window(pipeline, tmp_path), config)),
        instance=instance,
    )
    metadata = metadata_of(result, "best_hyperparameters")
    rows = metadata["trials_json"].value
    [(name, what)] = metadata["failed_workers"].value.items()
    assert name == "local1" and "exited with -9" in what, what
    [(trial, why)] = metadata["lost_trials"].value.items()
    [lost] = [row for row in rows if row["trial_id"] == trial]
    assert lost["worker"] == "local1" and lost["score"] is None and lost["message"].startswith("lost: "), lost
    others = [row for row in rows if row["trial_id"] != trial]
    assert len(rows) == 4 and others and all(r["worker"] == "local0" and r["score"] is not None for r in others)
    assert f"failed (lost: {why}" in metadata["trials"].value  # the trial table says which trial was lost


DYING_MODULE = """
import os

from trainpipe_assets.example_modules import sample_module
from trainpipe_assets.example_modules.sample_module import *  # noqa: F403


def tuner_fn(fn_args):
    if os.environ.get("KERASTUNER_TUNER_ID", "").startswith("local"):
        raise SystemExit(3)  # every worker dies before its first trial; the chief builds its tuner as usual
    return sample_module.tuner_fn(fn_args)
"""


def test_no_trial_completed_fails_the_step_with_a_workers_log(pipeline, instance, tmp_path):
    (tmp_path / "dying_module.py").write_text(DYING_MODULE)
    config = write_config(
        tmp_path / "dying.yaml", **TRAINING, module_file="dying_module.py", tuning={"num_parallel_trials": 2}
    )
    result = materialize(
        [examples, statistics, schema, transform_graph, best_hyperparameters],
        selection=[best_hyperparameters],
        partition_key=DAYS[-1],
        resources=resources_for(make_config(_home_with_window(pipeline, tmp_path), config)),
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success  # and not a chief waiting forever for workers that are gone
    message = failure_message(result)
    assert "no tuning trial completed" in message and "exited with 3" in message, message
