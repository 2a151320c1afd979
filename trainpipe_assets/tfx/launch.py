"""A run of some assets of a job, created through the code location as the UI creates a run of selected assets
("Materialize selected"): the same job snapshot and origin as cli/runs.py's runs, with an asset selection and the
checks of those assets; executed in this process, each step printed as it ends."""

from __future__ import annotations

import os


def launch_subset(location, job_name: str, tags: dict, instance, assets: list[str]):
    from dagster import AssetKey, DagsterRunStatus
    from dagster._core.definitions.selector import JobSubsetSelector
    from dagster._core.execution.api import execute_run_iterator
    from dagster._utils.hosted_user_process import recon_job_from_origin

    from trainpipe_assets.cli.console import dagster_log_level
    from trainpipe_assets.cli.runs import RunResult, step_line

    repository = next(iter(location.get_repositories().values()))
    full_job = repository.get_full_job(job_name)
    keys = frozenset(AssetKey(a) for a in assets)
    checks = frozenset(repository.asset_graph.get_check_keys_for_assets(keys))
    selector = JobSubsetSelector(location_name=location.name, repository_name=repository.name, job_name=job_name,
                                 op_selection=None, asset_selection=keys, asset_check_selection=checks)
    remote_job = location.get_job(selector)
    verbose = os.environ.get("TRAINPIPE_QUIET") != "1"
    run_config = {"loggers": {"console": {"config": {"log_level": dagster_log_level(verbose)}}}}
    plan = location.get_execution_plan(remote_job, run_config, step_keys_to_execute=None, known_state=None,
                                       instance=instance)
    run = instance.create_run(
        job_name=job_name, run_id=None, run_config=run_config, resolved_op_selection=None,
        step_keys_to_execute=plan.execution_plan_snapshot.step_keys_to_execute, op_selection=None, status=None,
        root_run_id=None, parent_run_id=None, tags=tags, job_snapshot=remote_job.job_snapshot,
        execution_plan_snapshot=plan.execution_plan_snapshot, parent_job_snapshot=remote_job.parent_job_snapshot,
        remote_job_origin=remote_job.get_remote_origin(), job_code_origin=remote_job.get_python_origin(),
        asset_selection=keys, asset_check_selection=checks, asset_graph=repository.asset_graph,
    )
    recon = recon_job_from_origin(full_job.get_python_origin()).get_subset(
        asset_selection=keys, asset_check_selection=checks)
    for event in execute_run_iterator(recon, run, instance):
        if event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
            print(f"    {step_line(event)}", flush=True)
    finished = instance.get_run_by_id(run.run_id)
    events = [r.dagster_event for r in instance.all_logs(run.run_id) if r.dagster_event is not None]
    return RunResult(run.run_id, finished.status == DagsterRunStatus.SUCCESS, events)
