"""The daily partitions as the loaded definitions have them: `partitions_start: auto` is resolved from the data once,
when the definitions load, and sensors use the partitions of the definitions they belong to (a day that landed earlier
than the first partition waits for the next reload instead of requesting a partition the definitions do not have)."""

from dagster import DailyPartitionsDefinition

from trainpipe_assets.core.partitions import Partitioning, partitioning_for
from trainpipe_assets.data.sources.landing import earliest_day


def resolved_partitioning(trainpipe) -> Partitioning:
    settings = trainpipe.settings
    first = earliest_day(trainpipe) if settings.partitions_start == "auto" else None
    return partitioning_for(trainpipe, first)


def daily_partitions(context, trainpipe) -> DailyPartitionsDefinition:
    """The partitions of the sensor's own definitions when it has them (a running code location), else resolved."""
    repository = getattr(context, "repository_def", None)
    if repository is not None:
        try:
            partitions = repository.get_job("ingest_job").partitions_def
            if partitions is not None:
                return partitions
        except Exception:  # a repository without our jobs (unit tests): resolve from the settings
            pass
    return resolved_partitioning(trainpipe).daily
