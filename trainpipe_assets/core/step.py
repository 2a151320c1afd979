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

from dagster import AssetExecutionContext, Failure, Output

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.cache import fingerprint, reusable
from trainpipe_assets.core.settings import TrainpipeConfig
from trainpipe_assets.core.storage import staging_dir


def fail(description: str) -> Failure:
    """A failure that no retry can fix (bad input, bad settings, a bad module): raised at once, never retried."""
    return Failure(description=description, allow_retries=False)


class Step:
    def __init__(self, context: AssetExecutionContext, trainpipe: TrainpipeConfig, code_version: str):
        self.context, self.trainpipe, self.code_version = context, trainpipe, code_version
        self.key: Optional[str] = None

    @property
    def partition(self) -> str:
        return self.context.partition_key

    def cache_key(self, *parts: Any) -> str:
        """The step's cache key: its code version and everything it reads (settings, module code, input versions)."""
        self.key = fingerprint(self.code_version, *parts)
        return self.key

    def reuse(self, *parts: Any, accept: Optional[Callable[[Any], bool]] = None) -> Optional[Output]:
        """The earlier materialization of this partition with the same cache key, still on disk, as this step's
        output; None when the step must run (or `accept` rejects the earlier artifact)."""
        hit = reusable(self.context, self.cache_key(*parts))
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

    def output(self, artifact: Any, metadata: dict) -> Output:
        extra = {md.CACHE_KEY: self.key, md.CACHED: False} if self.key else {}
        return Output(artifact, metadata={**metadata, **extra})
