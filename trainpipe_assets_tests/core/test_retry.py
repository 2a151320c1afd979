"""Retries are for transient faults only: an exception from module code fails the step at once with the module's own
message, file and line; a module that lacks a function the run needs fails at the first step of training_job."""

import pytest
from dagster import Failure

from trainpipe_assets.core.retry import fail_fast_unless_transient
from trainpipe_assets.definitions import build_definitions
from trainpipe_assets_tests.helpers import DAYS, FAST_TRAINING, failure_message, make_config, run_job, write_config

BROKEN_TUNER = '''
from trainpipe_assets.example_modules.sample_module import preprocessing_fn, run_fn  # noqa: F401


def tuner_fn(fn_args):
    raise ValueError("units must be positive")
'''

NO_RUN_FN = '''
from trainpipe_assets.example_modules.sample_module import preprocessing_fn, tuner_fn  # noqa: F401
'''


def train_with(pipeline, tmp_path, module_text: str):
    (tmp_path / "module.py").write_text(module_text)
    config = write_config(tmp_path / "trainpipe.yaml", **FAST_TRAINING, module_file="module.py")
    defs = build_definitions(make_config(pipeline["home"], config))
    return run_job(defs, "training_job", DAYS[-1], pipeline["instance"], raise_on_error=False)


def materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_an_error_in_module_code_fails_at_once_with_its_file_and_line(pipeline, tmp_path):
    result = train_with(pipeline, tmp_path, BROKEN_TUNER)
    assert not result.success
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]  # not retried
    message = failure_message(result)
    assert "module code raised ValueError: units must be positive" in message
    assert f"{tmp_path / 'module.py'}:6 in tuner_fn" in message


def test_a_module_without_run_fn_fails_before_any_work(pipeline, tmp_path):
    result = train_with(pipeline, tmp_path, NO_RUN_FN)
    assert not result.success and materialized(result) == set()
    message = failure_message(result)
    assert "defines no run_fn()" in message and str(tmp_path / "module.py") in message


def test_transient_faults_outside_module_code_are_left_to_the_retry_policy():
    @fail_fast_unless_transient
    def flaky_disk(context, trainpipe=None):
        raise OSError("disk went away")

    @fail_fast_unless_transient
    def bug(context, trainpipe=None):
        raise KeyError("oops")

    with pytest.raises(OSError):
        flaky_disk(None)
    with pytest.raises(Failure) as failure:
        bug(None)
    assert failure.value.allow_retries is False and "KeyError: 'oops'" in failure.value.description
