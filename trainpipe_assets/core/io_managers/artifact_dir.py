"""The folder IO manager: an asset fills a staging folder (its artifact's `uri`), this renames it into place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagster import ConfigurableIOManager, InputContext, MetadataValue, OutputContext

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.artifacts import MANIFEST, from_manifest, to_manifest
from trainpipe_assets.core.io_managers import ByDay, artifact_path, days_of
from trainpipe_assets.core.storage import replace_dir, unlock_partition, write_text

# Input metadata flag: load a range of partitions as {partition: artifact}.
WINDOW = "trainpipe/window"


def commit_artifact(artifact: Any, final: Path) -> None:
    """Record the artifact's manifest inside its staging folder, then move the folder to `final`. An artifact
    already at `final` (reused from cache) stays as it is."""
    staging = Path(artifact.uri)
    if staging == final:
        return
    write_text(staging / MANIFEST, to_manifest(artifact, uri=str(final)))
    replace_dir(staging, final)


def read_artifact(path: Path) -> Any:
    manifest = path / MANIFEST
    if not manifest.is_file():
        raise FileNotFoundError(f"{path} holds no artifact (no {MANIFEST}); materialize it first")
    return from_manifest(manifest.read_text())


class ArtifactDirIOManager(ConfigurableIOManager):
    """Single partition in -> one artifact; a range of partitions in -> {partition: artifact} of those that exist."""

    home: str

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        """One artifact per day of the run (a ByDay holds several); each day's `path` is in its own metadata when
        the asset wrote several (the asset adds it), else here."""
        for day, artifact in days_of(context, obj).items():
            final = artifact_path(self.home, context.asset_key, day)
            commit_artifact(artifact, final)
            unlock_partition(Path(self.home) / "artifacts", context.asset_key.path[-1], day)
        if not isinstance(obj, ByDay):
            context.add_output_metadata({md.PATH: MetadataValue.path(str(final))})

    def load_input(self, context: InputContext) -> Any:
        keys = context.asset_partition_keys
        dirs = {k: artifact_path(self.home, context.asset_key, k) for k in keys}
        if not (context.definition_metadata or {}).get(WINDOW):
            if len(keys) != 1:
                raise ValueError(
                    f"{context.asset_key.to_user_string()}: {len(keys)} partitions for a single-artifact input"
                )
            return read_artifact(dirs[keys[0]])
        present = {k: read_artifact(d) for k, d in sorted(dirs.items()) if (d / MANIFEST).is_file()}
        if not present:
            raise FileNotFoundError(
                f"no materialized {context.asset_key.to_user_string()} in {sorted(map(str, dirs.values()))}"
            )
        return present
