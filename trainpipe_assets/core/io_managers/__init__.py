"""IO managers: each turns an asset's artifact into a folder under $TRAINPIPE_HOME/artifacts and back."""

from pathlib import Path

from dagster import AssetKey


def artifact_path(home: str, asset_key: AssetKey, partition_key: str) -> Path:
    """`$TRAINPIPE_HOME/artifacts/<asset>/<partition>/`: the one path scheme for every artifact."""
    return Path(home) / "artifacts" / "/".join(asset_key.path) / partition_key


class ByDay(dict):
    """{partition key: value}: what an asset returns for the days of its run (one day, or the range of a single-run
    backfill); its IO manager writes each day as that partition's artifact."""


def days_of(context, obj) -> dict:
    """The (partition, value) pairs an IO manager writes: each day of a ByDay, else the one partition of the run."""
    return dict(obj) if isinstance(obj, ByDay) else {context.asset_partition_key: obj}
