"""The SavedModel IO manager: every trained model stays under `artifacts/<asset>/<day>/<run_id>/`, never overwritten."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetRecordsFilter, ConfigurableIOManager, InputContext, MetadataValue, OutputContext

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.artifacts import MANIFEST, Model, to_manifest
from trainpipe_assets.core.io_managers import artifact_path
from trainpipe_assets.core.io_managers.artifact_dir import read_artifact
from trainpipe_assets.core.storage import commit_new_dir, unlock_partition, write_text


class SavedModelIOManager(ConfigurableIOManager):
    """Stores a `Model` whose uri is a filled staging folder; loads the model of this run, else the latest one
    the event log records for the partition."""

    home: str

    def handle_output(self, context: OutputContext, obj: Model) -> None:
        final = artifact_path(self.home, context.asset_key, context.asset_partition_key) / obj.run_id
        if (Path(obj.uri) / MANIFEST).is_file() and Path(obj.uri) == final:  # a model reused from cache
            context.add_output_metadata({md.PATH: MetadataValue.path(str(final))})
            return
        if final.exists():
            raise FileExistsError(f"{final} exists: a trained model is never overwritten")
        staging = Path(obj.uri)
        write_text(staging / MANIFEST, to_manifest(obj, uri=str(final)))
        commit_new_dir(staging, final, "trained model")
        unlock_partition(Path(self.home) / "artifacts", context.asset_key.path[-1], context.asset_partition_key)
        context.add_output_metadata({md.PATH: MetadataValue.path(str(final))})

    def load_input(self, context: InputContext) -> Model:
        partition = context.asset_partition_key
        this_run = artifact_path(self.home, context.asset_key, partition) / context.step_context.run_id
        if (this_run / MANIFEST).is_file():
            return read_artifact(this_run)
        records = context.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=context.asset_key, asset_partitions=[partition]), limit=1
        ).records
        if not records:
            raise FileNotFoundError(f"no materialization of {context.asset_key.to_user_string()} for {partition}")
        return read_artifact(Path(md.value(records[0].asset_materialization.metadata, md.PATH)))
