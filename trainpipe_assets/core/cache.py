"""Reuse of unchanged steps (TFX's artifact cache, done right).

A step's cache key hashes its code version, the config fields it reads, the source of the module-file functions it
calls (with the helpers and constants they reference), and the cache keys (data versions) of its inputs. The key is
stored in the artifact's manifest and in the materialization's metadata. A step reuses an earlier materialization of
the same partition with the same key, but only when that artifact is still on disk with that key (a deleted or
replaced artifact is recomputed, tfx PR#5093), and never when the run is tagged `trainpipe/force=true` (a forced
re-run makes a new artifact, tfx#3827).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import types
from pathlib import Path
from typing import Any, Callable, Optional

from dagster import AssetExecutionContext, AssetRecordsFilter

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.artifacts import MANIFEST, from_manifest

FORCE_TAG = "trainpipe/force"


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def function_fingerprint(fn: Callable) -> str:
    """Source of `fn` and of every function, class and plain constant of its module that it reaches by name."""
    fn = getattr(fn, "func", fn)  # functools.partial (custom_config bound)
    module_globals = getattr(fn, "__globals__", {})
    seen: dict[str, str] = {}

    def visit(obj: Any, name: str) -> None:
        if name in seen:
            return
        try:
            seen[name] = inspect.getsource(obj)
        except (OSError, TypeError):
            seen[name] = repr(obj)
        if isinstance(obj, types.FunctionType):
            codes = [obj.__code__]
        elif isinstance(obj, type):
            codes = [m.__code__ for m in vars(obj).values() if isinstance(m, types.FunctionType)]
        else:
            codes = []
        while codes:
            code = codes.pop()
            codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
            for ref in code.co_names:
                value = module_globals.get(ref)
                if (
                    isinstance(value, (types.FunctionType, type))
                    and getattr(value, "__module__", None) == fn.__module__
                ):
                    visit(value, ref)
                elif isinstance(value, (int, float, str, bool, tuple, list, dict)) and ref not in seen:
                    seen[ref] = repr(value)

    visit(fn, fn.__name__)
    return fingerprint(sorted(seen.items()))


def forced(context: AssetExecutionContext) -> bool:
    return context.run.tags.get(FORCE_TAG, "").lower() == "true"


def reusable(
    context: AssetExecutionContext, cache_key: str, partition: Optional[str] = None
) -> Optional[tuple[Any, dict]]:
    """(artifact, metadata) of an earlier materialization of this asset and partition (the run's, or `partition`
    of a run over several days) with this key, still on disk."""
    if forced(context):
        return None
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=context.asset_key, asset_partitions=[partition or context.partition_key]), limit=25
    ).records
    for record in records:
        metadata = record.asset_materialization.metadata
        if md.value(metadata, md.CACHE_KEY) != cache_key or md.PATH not in metadata:
            continue
        manifest = Path(str(md.value(metadata, md.PATH))) / MANIFEST
        if not manifest.is_file():
            continue
        artifact = from_manifest(manifest.read_text())
        if getattr(artifact, "cache_key", None) == cache_key:
            reused = {k: v for k, v in metadata.items() if k not in (md.CACHED, md.REUSED_RUN_ID, md.PATH)}
            made_by = md.value(metadata, md.REUSED_RUN_ID) or record.run_id  # the run that computed it, not a reuse
            return artifact, {**reused, md.CACHED: True, md.REUSED_RUN_ID: made_by}
    return None
