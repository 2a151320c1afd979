"""`retraining_schedule`: training_job every day for the window that ends with the last complete day."""

from dagster import DefaultScheduleStatus, build_schedule_from_partitioned_job

from trainpipe_assets.core.settings import PipelineSettings


def build_retraining_schedule(settings: PipelineSettings, training_job):
    """At `retrain_hour` (UTC) each day; the job's partitions (and so the window) come from the assets it selects."""
    return build_schedule_from_partitioned_job(
        training_job,
        hour_of_day=settings.retrain_hour,
        name="retraining_schedule",
        description="Retrains, evaluates and pushes the window ending with yesterday, every day.",
        default_status=DefaultScheduleStatus.STOPPED,
    )
