"""Running a job for one partition from a command, through the same definitions and instance the UI uses, and
printing what a person needs: each day's rows, rejects and examples_valid verdict (with the anomaly table)."""

from __future__ import annotations

from trainpipe_assets.core import metadata as md


def run_partition(defs, job_name: str, day: str, instance):
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    result = defs.resolve_job_def(job_name).execute_in_process(
        partition_key=day, instance=instance, raise_on_error=False, run_config=quiet
    )
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


def ingest_day(defs, trainpipe, day: str, instance, seconds=None) -> bool:
    result, failures = run_partition(defs, "ingest_job", day, instance)
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
