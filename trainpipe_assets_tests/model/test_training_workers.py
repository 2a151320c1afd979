"""`training: {workers: 2}`: run_fn in a chief and a worker process with TF_CONFIG set (real processes, tiny data)."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from trainpipe_assets.core.example_reader import read_records
from trainpipe_assets.data.example_gen import examples
from trainpipe_assets.data.schema_gen import schema
from trainpipe_assets.data.statistics_gen.component import statistics
from trainpipe_assets.model.trainer import trained_model
from trainpipe_assets.model.training_workers import tf_config
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

ASSETS = [examples, statistics, schema, transform_graph, best_hyperparameters, trained_model]


def train_with_workers(pipeline, instance, tmp_path, **overrides):
    """Only trained_model, from a copy of the session pipeline's schema, transform graph and hyperparameters."""
    home = tmp_path / "home"
    for asset in ("schema", "transform_graph", "best_hyperparameters"):
        shutil.copytree(pipeline["home"] / "artifacts" / asset, home / "artifacts" / asset)
    config = write_config(
        tmp_path / "cfg.yaml",
        partitions_start="2024-01-01",  # explicit: this home has no landed data for `auto` to start from
        **{"training": {"workers": 2}, "train_steps": 20, "eval_steps": 5, **overrides},
    )
    result = materialize(
        ASSETS,
        selection=[trained_model],
        partition_key=DAYS[-1],
        resources=resources_for(make_config(home, config)),
        instance=instance,
        raise_on_error=False,
    )
    return result, home


def test_tf_config_names_a_chief_and_workers_on_localhost():
    config = tf_config([1001, 1002, 1003], 2)
    assert config == {
        "cluster": {"chief": ["localhost:1001"], "worker": ["localhost:1002", "localhost:1003"]},
        "task": {"type": "worker", "index": 1},
    }
    assert tf_config([1001, 1002], 0)["task"] == {"type": "chief", "index": 0}


def test_two_workers_train_the_sample_module_and_keep_the_chiefs_model(pipeline, instance, tmp_path):
    result, home = train_with_workers(pipeline, instance, tmp_path)
    assert result.success
    meta = metadata_of(result, "trained_model")
    assert meta["training_workers"].value == 2
    logs = meta["training_worker_logs"].value
    assert sorted(logs) == ["0", "1"]
    ranks_on = meta["training_ranks_on"].value  # without Celery, every rank is a process of the step
    assert sorted(ranks_on) == ["0", "1"] and all(w.startswith("step process on ") for w in ranks_on.values())
    model_dir = meta["path"].value
    assert all(path.startswith(model_dir + "/workers/") for path in logs.values())
    chief, worker = (open(logs[i]).read() for i in ("0", "1"))
    assert '"task": {"type": "chief", "index": 0}' in chief
    assert '"task": {"type": "worker", "index": 0}' in worker
    # The sample module trained under MultiWorkerMirroredStrategy: one replica in each of the two processes.
    assert "trained across 2 replicas" in chief and "trained across 2 replicas" in worker
    assert 0 <= meta["metric_train_loss"].value < 10 and 0 <= meta["metric_validation_binary_accuracy"].value <= 1

    loaded = tf.saved_model.load(model_dir + "/Format-Serving")
    raw = read_records([str(pipeline["home"] / "artifacts/examples" / DAYS[0] / "Split-eval" / "*.gz")])[:10]
    scores = loaded.signatures["serving_default"](examples=tf.constant(raw))["outputs"].numpy()
    assert scores.shape == (10, 1) and np.all((scores >= 0) & (scores <= 1))
    # Only the chief's model is kept: the worker's went to a folder of its own, removed afterwards.
    assert [p.name for p in (home / "artifacts/trained_model" / DAYS[-1]).iterdir()] == [result.run_id]


FAILING_WORKER_MODULE = """
import json
import os
import time


def run_fn(fn_args):
    task = json.loads(os.environ["TF_CONFIG"])["task"]
    if task["type"] == "worker":
        print("the worker reads its data... and gives up")
        raise RuntimeError("worker cannot read its shard")
    with open(PID_FILE, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(600)  # the chief would wait for its peer; the failing worker must end the step long before this
"""


def test_a_failing_worker_fails_the_step_at_once_with_its_log(pipeline, instance, tmp_path):
    module = tmp_path / "failing_worker_module.py"
    pid_file = tmp_path / "chief.pid"
    module.write_text(f"PID_FILE = {json.dumps(str(pid_file))}\n" + FAILING_WORKER_MODULE)
    result, home = train_with_workers(pipeline, instance, tmp_path, module_file=str(module))
    assert not result.success
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    message = failure_message(result)
    assert "rank 1 (TF_CONFIG task worker 0) exited with 1" in message
    assert "the worker reads its data... and gives up" in message  # the tail of its log
    assert "RuntimeError: worker cannot read its shard" in message
    assert not list((home / "artifacts" / "trained_model").glob(f"{DAYS[-1]}/*"))
    if pid_file.is_file():  # the chief had started: it was stopped, not left sleeping
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid_file.read_text()), 0)
