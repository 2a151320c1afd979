"""IO managers: each turns an asset's artifact into a folder under $TRAINPIPE_HOME/artifacts and back."""

from pathlib import Path

from dagster import AssetKey


def artifact_path(home: str, asset_key: AssetKey, partition_key: str) -> Path:
    """`$TRAINPIPE_HOME/artifacts/<asset>/<partition>/`: the one path scheme for every artifact."""
    return Path(home) / "artifacts" / "/".join(asset_key.path) / partition_key
