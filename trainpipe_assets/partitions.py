"""Daily partitions and the training window, fixed when the definitions load (from the same settings file)."""
import warnings

from dagster import AssetIn, BetaWarning, DailyPartitionsDefinition, TimeWindowPartitionMapping

from .config import TrainpipeConfig
from .io_managers.artifact_dir import WINDOW

SETTINGS = TrainpipeConfig.from_env().settings

daily_partitions = DailyPartitionsDefinition(start_date=SETTINGS.partitions_start)

# Partition D of a training asset reads the N days ending at D; days before the first partition are left out.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", BetaWarning)  # allow_nonexistent_upstream_partitions is beta, and needed
    training_window = TimeWindowPartitionMapping(
        start_offset=-(SETTINGS.window_days - 1), end_offset=0, allow_nonexistent_upstream_partitions=True
    )


def window_input(asset_name: str) -> AssetIn:
    """An input that loads the window's partitions of `asset_name`."""
    return AssetIn(asset_name, partition_mapping=training_window, metadata={WINDOW: True})
