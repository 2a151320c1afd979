"""Running a job for one partition from a command, the way `dagster dev` and `dagster job launch` create runs: through
the project's code location (workspace.yaml's `trainpipe_assets`, loaded in this process), so each run carries its
code location and job snapshot -- it shows on the UI's Overview timeline and job charts, and "Re-execute" does not
warn of a different version -- and then executed here, with the job's own executor. Each step's name and duration is
printed as it finishes; then what a person needs: each day's rows, rejects and example_anomalies verdict. A range of
days is one run (a single-run backfill), as the UI launches one."""

from __future__ import annotations

import importlib
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field

from trainpipe_assets.cli.console import dagster_log_level
from trainpipe_assets.cli.stopping import Stop, stoppable
from trainpipe_assets.core import metadata as md

LOCATION_NAME = "trainpipe_assets"  # workspace.yaml's location_name: the UI finds the runs' jobs under it
DEFINITIONS_MODULE = "trainpipe_assets.definitions"


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


def launch(location, job_name: str, tags: dict, instance, progress: bool = True, run_config=None) -> RunResult:
    """Create the run as the UI does (remote job origin, job and plan snapshots) and execute it in this process,
    printing each step as it finishes."""
    from dagster import DagsterRunStatus
    from dagster._cli.job import _create_run
    from dagster._core.execution.api import execute_run_iterator
    from dagster._utils.hosted_user_process import recon_job_from_origin

    repository = next(iter(location.get_repositories().values()))
    remote_job = repository.get_full_job(job_name)
    verbose = os.environ.get("TRAINPIPE_QUIET") != "1"  # cli/console.py sets it when this command is quiet
    run_config = run_config or {"loggers": {"console": {"config": {"log_level": dagster_log_level(verbose)}}}}
    run = _create_run(instance, location, repository, remote_job, run_config, tags, None, None)
    stop = Stop()
    try:
        with stoppable(instance, run, stop):
            for event in execute_run_iterator(recon_job_from_origin(remote_job.get_python_origin()), run, instance):
                if progress and event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
                    print(f"    {step_line(event)}", flush=True)
    except KeyboardInterrupt:  # stopped before Dagster's own interrupt handling took over
        if not instance.get_run_by_id(run.run_id).is_finished:
            instance.report_run_canceled(run, message=f"{stop.name or 'SIGINT'}: the command was stopped")
    finished = instance.get_run_by_id(run.run_id)
    records = instance.all_logs(run.run_id)  # steps in other processes (multiprocess, Celery) log only to the instance
    dagster_events = [r.dagster_event for r in records if r.dagster_event is not None]
    result = RunResult(run.run_id, finished.status == DagsterRunStatus.SUCCESS, dagster_events)
    if stop.signum:
        raise Stopped(stop, result, finished.status.value)
    return result


class Stopped(Exception):
    """The command was asked to stop (SIGINT/SIGTERM) while `result`'s run ran; the run ended `status` (CANCELED)."""

    def __init__(self, stop: Stop, result: RunResult, status: str):
        super().__init__(f"stopped by {stop.name}: run {result.run_id} {status.lower()}")
        self.exit_code, self.result = stop.exit_code, result


def step_line(event) -> str:
    if event.event_type_value == "STEP_SUCCESS":
        return f"{event.step_key} done in {event.event_specific_data.duration_ms / 1000:.1f} s"
    if event.event_type_value == "STEP_SKIPPED":
        return f"{event.step_key} skipped (an upstream step failed or produced nothing)"
    return f"{event.step_key} FAILED"


def partition_tags(days: list[str]) -> dict:
    """One day, or a range of days as ONE run (a single-run backfill, as the UI launches it)."""
    if len(days) == 1:
        return {"dagster/partition": days[0]}
    return {"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]}


def run_partition(location, job_name: str, day: str, instance, progress: bool = True):
    result = launch(location, job_name, partition_tags([day]), instance, progress)
    return result, failures_of(result, skip_checks=True)  # the caller prints the checks


def failures_of(result, skip_checks: bool = False) -> list[str]:
    """Each failed step's reason, once; a failed blocking check's own step is left out when `skip_checks` (the
    caller prints the verdicts it reports)."""
    found = []
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        error = event.step_failure_data.error
        if skip_checks and error and error.cls_name == "DagsterAssetCheckFailedError":
            continue
        found.append(failure_text(event))
    return found


def failure_text(event) -> str:
    """What went wrong in a failed step, in the words of the code that failed (a Failure's description, else the
    error and, for an error raised in a module file, that file and line), not Dagster's "Execution of step ...
    failed" and its stack trace (which is in the log file)."""
    data = event.step_failure_data
    described = data.user_failure_data and data.user_failure_data.description
    if described:
        return f"{event.step_key}: {described}"
    error = data.error
    if not error:
        return event.message
    root = error.cause or error
    where = _user_frame(root) or _user_frame(error)
    return f"{event.step_key}: {root.message.strip()}" + (f" ({where})" if where else "")


def _user_frame(error) -> str:
    """`file, line N, in fn` of the innermost frame outside Python's, Dagster's and trainpipe's own code."""
    import re

    for frame in reversed(error.stack or []):
        found = re.search(r'File "([^"]+)", line (\d+), in (\S+)', frame)
        if found and not re.search(r"site-packages|/lib/python3|/trainpipe_assets/|<frozen", found.group(1)):
            return f"{found.group(1)}, line {found.group(2)}, in {found.group(3)}"
    return ""


def materialized(result) -> dict:
    return {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}


def materialized_by_day(result) -> dict:
    """{asset: {day: metadata}} of a run over one day or several."""
    found: dict = {}
    for e in result.get_asset_materialization_events():
        found.setdefault(e.asset_key.to_user_string(), {})[e.materialization.partition] = e.materialization.metadata
    return found


def ingest_days(location, trainpipe, days: list[str], instance) -> list[str]:
    """ONE ingest_job run over `days`; prints each day's rows, rejects and example_anomalies verdict (with the
    anomaly table of a failed day) and returns the days that failed."""
    from trainpipe_assets.data.example_validator import Anomaly, anomalies_text

    try:
        result = launch(location, "ingest_job", partition_tags(days), instance, progress=False)
    except Stopped as stopped:
        by_day = materialized_by_day(stopped.result)
        done = [d for d in days if d in by_day.get("example_anomalies", {})]
        print(f"  {stopped}: days judged {done or 'none'}; not finished: {[d for d in days if d not in done]}")
        raise
    by_day = materialized_by_day(result)
    failed = []
    for day in days:
        rows = by_day.get("examples", {}).get(day, {})
        anomalies = by_day.get("example_anomalies", {}).get(day)
        judged = md.value(anomalies, md.VERDICT) if anomalies is not None else None
        ok = judged in (md.PASSED, md.NOT_CHECKED)
        split_rows = " ".join(
            f"{s}={rows[md.rows_key(s)].value}" for s in trainpipe.settings.splits if md.rows_key(s) in rows
        )
        rejected = md.value(rows, md.REJECTED_ROWS, "-")
        print(f"  {day}: {'ok' if ok else 'FAILED'} {split_rows} rejected={rejected} example_anomalies={judged}")
        if not ok:
            failed.append(day)
        if judged == md.FAILED:
            found = [Anomaly(**a) for a in md.value(anomalies, md.ANOMALIES_JSON, [])]
            if md.value(rows, md.INGEST_FAILED):
                print(f"    {md.value(rows, md.INGEST_FAILED)}")
            else:
                print("\n".join(f"    {line}" for line in anomalies_text(found).splitlines()))
    for failure in failures_of(result, skip_checks=True):
        print(f"    {failure}")
    return failed if result.success or failed else list(days)
