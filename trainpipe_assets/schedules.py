"""`retraining_schedule`: training_job every day for the window that ends with the last complete day."""
from dagster import DefaultScheduleStatus, build_schedule_from_partitioned_job

from .jobs import training_job
from .partitions import SETTINGS

retraining_schedule = build_schedule_from_partitioned_job(
    training_job,
    hour_of_day=SETTINGS.retrain_hour,
    name="retraining_schedule",
    description="Retrains, evaluates and pushes the window ending with yesterday, every day.",
    default_status=DefaultScheduleStatus.STOPPED,
)
