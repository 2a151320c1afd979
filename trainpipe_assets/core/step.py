"""The shape every pipeline step shares around its own logic: the cache key and reuse of an unchanged step, the
run's own staging folder, and the metadata every materialization records. A component file keeps only its logic:

    step = Step(context, trainpipe, CODE_VERSION)
    if reused := step.reuse(schema.cache_key, examples.fingerprints):
        return reused
    ... fill step.staging ...
    return step.output(Artifact(**step.fields(), ...), {"rows": n})
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Optional

from dagster import AssetExecutionContext, Failure, MetadataValue, Output

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.artifacts import Examples
from trainpipe_assets.core.cache import fingerprint, reusable
from trainpipe_assets.core.run_records import tag_run_process
from trainpipe_assets.core.settings import TrainpipeConfig
from trainpipe_assets.core.storage import PartitionBusy, lock_partition, staging_dir
from trainpipe_assets.core.validation import ADMIT_TAG, admitted_days, judge_window


def fail(description: str) -> Failure:
    """A failure that no retry can fix (bad input, bad settings, a bad module): raised at once, never retried."""
    return Failure(description=description, allow_retries=False)


class Step:
    def __init__(
        self,
        context: AssetExecutionContext,
        trainpipe: TrainpipeConfig,
        code_version: str,
        partition: Optional[str] = None,
    ):
        """Takes the partition's write lock for this run: a second run of the same asset and partition fails at once,
        naming the run that is writing it (the IO manager releases the lock once the artifact is in place).
        `partition` is one day of a run over several (a single-run backfill); by default the run's partition."""
        self.context, self.trainpipe, self.code_version = context, trainpipe, code_version
        self._partition = partition
        self.key: Optional[str] = None
        self.window_metadata: dict = {}
        try:
            lock_partition(trainpipe.artifacts_dir, context.asset_key.path[-1], self.partition, context.run.run_id)
        except PartitionBusy as e:
            raise fail(str(e)) from e
        tag_run_process(context.instance, context.run.run_id)  # so a killed run can be told from a running one

    @property
    def partition(self) -> str:
        return self._partition or self.context.partition_key

    def cache_key(self, *parts: Any) -> str:
        """The step's cache key: its code version and everything it reads (settings, module code, input versions)."""
        self.key = fingerprint(self.code_version, *parts)
        return self.key

    def reuse(self, *parts: Any, accept: Optional[Callable[[Any], bool]] = None) -> Optional[Output]:
        """The earlier materialization of this partition with the same cache key, still on disk, as this step's
        output; None when the step must run (or `accept` rejects the earlier artifact)."""
        hit = reusable(self.context, self.cache_key(*parts), self._partition)
        if hit and (accept is None or accept(hit[0])):
            return Output(hit[0], metadata=hit[1])
        return None

    @functools.cached_property
    def staging(self) -> Path:
        """The folder this run fills; the IO manager renames it into place."""
        asset_name = self.context.asset_key.path[-1]
        return staging_dir(self.trainpipe.artifacts_dir, asset_name, self.partition, self.context.run.run_id)

    def fields(self) -> dict:
        """The fields every folder artifact has: where it is being written, its partition and its cache key."""
        return {"uri": str(self.staging), "partition": self.partition, "cache_key": self.key or ""}

    def validated(self, window: Examples | dict[str, Any]) -> Any:
        """The window restricted to the days whose example_anomalies passed on their latest ingest (or were admitted by
        the run tag trainpipe/admit_days). Left-out days are logged and recorded in the metadata; fewer usable days
        than `min_window_days` fails the step, naming them."""
        days = window.partitions if isinstance(window, Examples) else sorted(window)
        verdict = judge_window(self.context.instance, days, admitted_days(self.context.run.tags))
        for day, why in verdict.excluded.items():
            self.context.log.warning(f"{day} is left out of the window: {why}")
        for day, why in verdict.admitted.items():
            self.context.log.warning(f"{day} is admitted by run tag {ADMIT_TAG} although {why}")
        minimum = self.trainpipe.settings.min_window_days
        if len(verdict.usable) < minimum:
            left_out = "; ".join(f"{d}: {why}" for d, why in verdict.excluded.items()) or "none"
            raise fail(
                f"only {len(verdict.usable)} day(s) of the window passed example_anomalies ({verdict.usable}), fewer "
                f"than min_window_days={minimum}. Left out: {left_out}. To use a day anyway, tag the run "
                f"{ADMIT_TAG}=<day>[,<day>]."
            )
        self.window_metadata = {
            md.EXCLUDED_DAYS: MetadataValue.json(verdict.excluded),
            **({md.ADMITTED_DAYS: MetadataValue.json(verdict.admitted)} if verdict.admitted else {}),
        }
        if isinstance(window, Examples):
            return window.only(verdict.usable) if verdict.excluded else window
        return {d: a for d, a in window.items() if d in verdict.usable}

    def output(self, artifact: Any, metadata: dict, cached: bool = False) -> Output:
        return Output(artifact, metadata=self.metadata(metadata, cached))

    def metadata(self, metadata: dict, cached: bool = False) -> dict:
        extra = {md.CACHE_KEY: self.key, md.CACHED: cached} if self.key else {}
        return {**metadata, **self.window_metadata, **extra}
