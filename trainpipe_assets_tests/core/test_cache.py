import datetime as dt
import shutil
import time

import pytest
from dagster import instance_for_test

from trainpipe_assets.core.cache import fingerprint, function_fingerprint
from trainpipe_assets.core.settings import DEFAULT_MODULE_FILE
from trainpipe_assets.data.sample_data import write_days
from trainpipe_assets.definitions import build_definitions
from trainpipe_assets.module.loader import load_module_file
from trainpipe_assets_tests.helpers import make_config, write_config

DAY = "2024-03-02"
CHAIN = [
    "schema",
    "transform_graph",
    "best_hyperparameters",
    "trained_model",
    "model_evaluation",
    "infra_validation",
    "pushed_model",
]


def test_function_fingerprint_follows_helpers_and_constants(tmp_path):
    path = tmp_path / "fp_module.py"
    path.write_text(
        "K = 1\ndef helper():\n    return K\ndef run_fn(a):\n    return helper()\ndef other(a):\n    return 2\n"
    )
    first = {n: function_fingerprint(getattr(load_module_file(path), n)) for n in ("run_fn", "other")}
    path.write_text(
        "K = 2\ndef helper():\n    return K\ndef run_fn(a):\n    return helper()\ndef other(a):\n    return 2\n"
    )
    second = {n: function_fingerprint(getattr(load_module_file(path), n)) for n in ("run_fn", "other")}
    assert first["run_fn"] != second["run_fn"] and first["other"] == second["other"]
    assert fingerprint(1, {"a": 2}) == fingerprint(1, {"a": 2}) != fingerprint(1, {"a": 3})


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cache")
    module = tmp / "my_module.py"
    shutil.copy(DEFAULT_MODULE_FILE, module)
    config = write_config(
        tmp / "cfg.yaml",
        module_file=str(module),
        train_steps=20,
        eval_steps=3,
        custom_config={"max_trials": 1},
        evaluation={"thresholds": {}},  # always blessed ("no thresholds"): these tests are about reuse
    )
    trainpipe = make_config(tmp / "home", config)
    write_days(trainpipe.landing_dir, 2, 80, end=dt.date.fromisoformat(DAY))
    defs = build_definitions(trainpipe)
    (tmp / "dagster").mkdir()
    with instance_for_test(temp_dir=str(tmp / "dagster")) as instance:
        for day in ("2024-03-01", DAY):
            defs.resolve_job_def("ingest_job").execute_in_process(partition_key=day, instance=instance)

        def train(**tags):
            started = time.perf_counter()
            result = defs.resolve_job_def("training_job").execute_in_process(
                partition_key=DAY, instance=instance, tags=tags
            )
            flags = {
                e.asset_key.to_user_string(): e.materialization.metadata["cached"].value
                for e in result.get_asset_materialization_events()
            }
            return result, flags, time.perf_counter() - started

        yield {"train": train, "module": module, "trainpipe": trainpipe, "defs": defs, "instance": instance}


def versions(trainpipe):
    return sorted(p.name for p in trainpipe.serving_dir.iterdir() if p.name.isdigit())


def test_a_no_op_rerun_reuses_every_step(cached):
    first, flags, _ = cached["train"]()
    assert not any(flags.values()) and versions(cached["trainpipe"]) == ["1"]
    second, flags, _ = cached["train"]()
    # The evaluation is redone once: its baseline changed (version 1 is serving now). The model is not pushed again.
    assert flags == {**{a: True for a in CHAIN}, "model_evaluation": False}
    third, flags, seconds = cached["train"]()
    assert flags == {a: True for a in CHAIN}
    print(f"no-op training_job re-run: {seconds:.1f} s")
    assert versions(cached["trainpipe"]) == ["1"]
    reused = [e for e in third.get_asset_materialization_events() if e.asset_key.to_user_string() == "trained_model"][0]
    assert reused.materialization.metadata["reused_run_id"].value == first.run_id


def test_editing_only_run_fn_retrains_but_reuses_transform_and_tuning(cached):
    module = cached["module"]
    run_fn = "def run_fn(fn_args: tfx.components.FnArgs):\n"
    assert run_fn in module.read_text()
    module.write_text(module.read_text().replace(run_fn, run_fn + '    """Trained once more."""\n'))
    _, flags, _ = cached["train"]()
    assert flags["schema"] and flags["transform_graph"] and flags["best_hyperparameters"]
    assert not flags["trained_model"] and not flags["model_evaluation"] and not flags["infra_validation"]


def test_a_forced_rerun_makes_new_artifacts(cached):
    result, flags, _ = cached["train"](**{"trainpipe/force": "true"})
    assert not any(flags.values())
    model = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "trained_model"][0]
    assert model.materialization.metadata["path"].value.endswith(result.run_id)


def test_a_deleted_artifact_is_recomputed_not_served_from_cache(cached):
    shutil.rmtree(cached["trainpipe"].artifacts_dir / "transform_graph" / DAY)
    _, flags, _ = cached["train"]()
    assert flags["schema"] and not flags["transform_graph"]


def test_a_changed_day_of_data_reruns_everything_downstream(cached):
    write_days(cached["trainpipe"].landing_dir, 1, 80, end=dt.date.fromisoformat(DAY), seed=99)
    cached["defs"].resolve_job_def("ingest_job").execute_in_process(partition_key=DAY, instance=cached["instance"])
    _, flags, _ = cached["train"]()
    assert not flags["schema"] and not flags["transform_graph"] and not flags["trained_model"]
