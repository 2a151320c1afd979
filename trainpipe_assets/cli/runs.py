"""Running a job for one partition from a command, the way `dagster dev` and `dagster job launch` create runs: through
the project's code location (workspace.yaml's `trainpipe_assets`, loaded in this process), so each run carries its
code location and job snapshot -- it shows on the UI's Overview timeline and job charts, and "Re-execute" does not
warn of a different version -- and then executed here, with the job's own executor. Each step's name and duration is
printed as it finishes; then what a person needs: each day's rows, rejects and examples_valid verdict."""

from __future__ import annotations

import importlib
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field

from trainpipe_assets.core import metadata as md

LOCATION_NAME = "trainpipe_assets"  # workspace.yaml's location_name: the UI finds the runs' jobs under it
DEFINITIONS_MODULE = "trainpipe_assets.definitions"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@contextmanager
def code_location(instance):
    """The code location `dagster dev` loads, built from the definitions as they are now (partitions_start: auto
    depends on the data landed, so a module imported before the data came is built again)."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    if DEFINITIONS_MODULE in sys.modules:
        importlib.reload(sys.modules[DEFINITIONS_MODULE])
    target = LoadableTargetOrigin(
        executable_path=sys.executable, module_name=DEFINITIONS_MODULE, working_directory=os.getcwd()
    )
    with InProcessCodeLocationOrigin(target, location_name=LOCATION_NAME).create_location(instance) as location:
        yield location


@dataclass
class RunResult:
    """What a command reads of a finished run (the parts of Dagster's ExecuteInProcessResult it used)."""

    run_id: str
    success: bool
    all_events: list = field(default_factory=list)

    def get_asset_materialization_events(self) -> list:
        return [e for e in self.all_events if e.is_step_materialization]

    def get_asset_check_evaluations(self) -> list:
        return [
            e.asset_check_evaluation_data for e in self.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
        ]


def launch(location, job_name: str, tags: dict, instance, progress: bool = True, run_config=QUIET) -> RunResult:
    """Create the run as the UI does (remote job origin, job and plan snapshots) and execute it in this process,
    printing each step as it finishes."""
    from dagster import DagsterRunStatus
    from dagster._cli.job import _create_run
    from dagster._core.execution.api import execute_run_iterator
    from dagster._utils.hosted_user_process import recon_job_from_origin

    repository = next(iter(location.get_repositories().values()))
    remote_job = repository.get_full_job(job_name)
    run = _create_run(instance, location, repository, remote_job, run_config, tags, None, None)
    for event in execute_run_iterator(recon_job_from_origin(remote_job.get_python_origin()), run, instance):
        if progress and event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
            print(f"    {step_line(event)}", flush=True)
    finished = instance.get_run_by_id(run.run_id)
    records = instance.all_logs(run.run_id)  # steps in other processes (multiprocess, Celery) log only to the instance
    dagster_events = [r.dagster_event for r in records if r.dagster_event is not None]
    return RunResult(run.run_id, finished.status == DagsterRunStatus.SUCCESS, dagster_events)


def step_line(event) -> str:
    if event.event_type_value == "STEP_SUCCESS":
        return f"{event.step_key} done in {event.event_specific_data.duration_ms / 1000:.1f} s"
    if event.event_type_value == "STEP_SKIPPED":
        return f"{event.step_key} skipped (an upstream step failed or produced nothing)"
    return f"{event.step_key} FAILED"


def run_partition(location, job_name: str, day: str, instance, progress: bool = True):
    result = launch(location, job_name, {"dagster/partition": day}, instance, progress)
    failures = [failure_text(e) for e in result.all_events if e.is_step_failure]
    return result, failures


def verdict(check) -> str:
    """passed, FAILED, or (a warning-severity result) not checked, as a person should read a check's outcome."""
    if check.passed:
        return "passed"
    return "not-checked" if getattr(check.severity, "value", "") == "WARN" else "FAILED"


def failure_text(event) -> str:
    """What went wrong in a failed step, in the words of the code that failed (a Failure's description, else the
    error), not Dagster's "Execution of step ... failed"."""
    data = event.step_failure_data
    described = data.user_failure_data and data.user_failure_data.description
    if described:
        return f"{event.step_key}: {described}"
    error = data.error
    return f"{event.step_key}: {(error.cause or error).message.strip()}" if error else event.message


def materialized(result) -> dict:
    return {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}


def ingest_day(location, trainpipe, day: str, instance, seconds=None) -> bool:
    result, failures = run_partition(location, "ingest_job", day, instance, progress=False)
    rows = materialized(result).get("examples", {})
    evaluations = {c.check_name: c for c in result.get_asset_check_evaluations()}
    checks = {name: verdict(c) for name, c in evaluations.items()}
    split_rows = " ".join(
        f"{s}={rows[md.rows_key(s)].value}" for s in trainpipe.settings.splits if md.rows_key(s) in rows
    )
    rejected = md.value(rows, md.REJECTED_ROWS, "-")
    took = f" ({seconds():.1f} s)" if seconds else ""
    print(
        f"  {day}: {'ok' if result.success else 'FAILED'} {split_rows} rejected={rejected} "
        f"examples_valid={checks.get('examples_valid')}{took}",
        flush=True,
    )
    valid = evaluations.get("examples_valid")
    if valid is not None and verdict(valid) == "FAILED":  # the anomaly table, not just a count
        from trainpipe_assets.data.example_validator import Anomaly, anomalies_text

        table = anomalies_text([Anomaly(**a) for a in md.value(valid.metadata, md.ANOMALIES_JSON, [])])
        print("\n".join(f"    {line}" for line in table.splitlines()))
    for failure in failures:
        print(f"    {failure}")
    return result.success
