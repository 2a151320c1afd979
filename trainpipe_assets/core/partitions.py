"""Daily partitions, the training window, and assets/checks whose partitioning comes from the settings.

Components declare their assets with `pipeline_asset` / `pipeline_check` (the decorator's options, without the
partitioning); `build_definitions(settings)` turns each into a Dagster definition for that settings object's
partitions_start and window_days. Nothing reads the settings at import.
"""

from __future__ import annotations

import datetime as dt
import functools
import warnings
from dataclasses import dataclass
from typing import Any, Callable

from dagster import (
    AssetDep,
    AssetIn,
    AssetsDefinition,
    BackfillPolicy,
    BetaWarning,
    DailyPartitionsDefinition,
    MetadataValue,
    Output,
    PreviewWarning,
    TimeWindowPartitionMapping,
    asset,
    asset_check,
)

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.io_managers import ByDay, artifact_path
from trainpipe_assets.core.io_managers.artifact_dir import WINDOW
from trainpipe_assets.core.retry import fail_fast_unless_transient


@dataclass(frozen=True)
class Partitioning:
    """Partition D of a training asset reads the `window_days` days ending at D; days before the first partition
    are left out."""

    daily: DailyPartitionsDefinition
    window: TimeWindowPartitionMapping

    def window_input(self, asset_name: str) -> AssetIn:
        """An input that loads the window's partitions of `asset_name` ({partition: artifact} for folder artifacts)."""
        return AssetIn(asset_name, partition_mapping=self.window, metadata={WINDOW: True})


@functools.lru_cache(maxsize=32)
def partitioning(partitions_start: str, window_days: int) -> Partitioning:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)  # allow_nonexistent_upstream_partitions is beta, and needed
        window = TimeWindowPartitionMapping(
            start_offset=-(window_days - 1), end_offset=0, allow_nonexistent_upstream_partitions=True
        )
    return Partitioning(DailyPartitionsDefinition(start_date=partitions_start), window)


AUTO_FALLBACK_DAYS = 7  # partitions_start: auto with no data yet: this many days before today


def partitioning_for(trainpipe, first_day=None) -> Partitioning:
    """The partitioning of a TrainpipeConfig (or PipelineSettings). `partitions_start: auto` needs `first_day`, the
    earliest day of data (data/sources/landing.py finds it); without one it starts a short window before today."""
    settings = getattr(trainpipe, "settings", trainpipe)
    start = settings.partitions_start
    if start == "auto":
        fallback = dt.date.today() - dt.timedelta(days=AUTO_FALLBACK_DAYS)
        start = (first_day or fallback).isoformat()
    return partitioning(start, settings.window_days)


class AssetBlueprint:
    """A daily-partitioned asset whose partitioning is applied by `build`; calling it calls the plain function."""

    def __init__(
        self,
        fn: Callable,
        windowed: tuple[str, ...],
        options: dict[str, Any],
        by_day: tuple[str, ...] = (),
        gated_by: tuple[str, ...] = (),
    ):
        self.fn, self.windowed, self.options, self.by_day, self.gated_by = fn, windowed, options, by_day, gated_by
        self.name = fn.__name__
        functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def build(self, p: Partitioning, op_tags: dict | None = None) -> AssetsDefinition:
        ins = {name: p.window_input(name) for name in self.windowed}
        ins.update({name: AssetIn(name, metadata={WINDOW: True}) for name in self.by_day})  # {day: artifact}
        options = dict(self.options)
        if self.gated_by:  # read through the event log (the verdicts), shown in the graph as the window's upstream
            options["deps"] = [AssetDep(name, partition_mapping=p.window) for name in self.gated_by]
        if self.by_day or options.pop("single_run", False):
            options["backfill_policy"] = BackfillPolicy.single_run()  # a range of days is one run
        fn = fail_fast_unless_transient(self.fn)
        return asset(name=self.name, partitions_def=p.daily, ins=ins or None, op_tags=op_tags, **options)(fn)


class CheckBlueprint:
    """A blocking, daily-partitioned asset check of `asset`; its function's parameter named like the asset loads it."""

    def __init__(self, fn: Callable, asset_name: str, name: str):
        self.fn, self.asset_name, self.name = fn, asset_name, name
        functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def build(self, p: Partitioning, op_tags: dict | None = None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PreviewWarning)  # partitions_def on an asset check is a preview, and needed
            return asset_check(
                asset=self.asset_name, name=self.name, blocking=True, partitions_def=p.daily, op_tags=op_tags
            )(self.fn)


def pipeline_asset(
    *, windowed: tuple[str, ...] = (), by_day: tuple[str, ...] = (), gated_by: tuple[str, ...] = (), **options
) -> Callable[[Callable], AssetBlueprint]:
    """@asset's options without partitions_def; `windowed` names inputs that load the training window, `by_day`
    inputs loaded as {day: artifact} for the run's days. `single_run=True` (implied by `by_day`): a backfill of a
    range is one run, whose days the asset returns with `days_output`. `gated_by` names assets whose window partitions
    the asset reads from the event log (not loaded), drawn as its upstream in the asset graph."""
    return lambda fn: AssetBlueprint(fn, tuple(windowed), options, tuple(by_day), tuple(gated_by))


def days_output(context, home: str, results: dict[str, tuple[Any, dict]], **output_options) -> Output:
    """The run's days (one, or a single-run backfill's range) as one Output: each day's value for the IO manager
    (ByDay) and each day's own metadata, with its path, on that day's materialization."""
    for day, (_, metadata) in results.items():
        path = artifact_path(home, context.asset_key, day)
        context.add_asset_metadata({**metadata, md.PATH: MetadataValue.path(str(path))}, partition_key=day)
    return Output(ByDay({day: value for day, (value, _) in results.items()}), **output_options)


def pipeline_check(*, asset: str, name: str) -> Callable[[Callable], CheckBlueprint]:
    return lambda fn: CheckBlueprint(fn, asset, name)
