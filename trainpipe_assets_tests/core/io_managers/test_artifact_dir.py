import pytest
from dagster import AssetKey, PartitionKeyRange, build_input_context, build_output_context

from trainpipe_assets.core.artifacts import Schema
from trainpipe_assets.core.io_managers.artifact_dir import WINDOW, ArtifactDirIOManager
from trainpipe_assets_tests.helpers import daily_partitions

KEY = AssetKey("schema")


def staged_schema(tmp_path, day: str, text: str) -> Schema:
    staging = tmp_path / f"staging-{day}"
    staging.mkdir()
    (staging / "schema.pbtxt").write_text(text)
    return Schema(uri=str(staging), partition=day, inferred_from=[day])


def test_output_is_moved_into_place_and_loads_back(tmp_path):
    manager = ArtifactDirIOManager(home=str(tmp_path))
    manager.handle_output(
        build_output_context(asset_key=KEY, partition_key="2024-03-01"),
        staged_schema(tmp_path, "2024-03-01", "feature { name: 'a' }"),
    )
    assert not (tmp_path / "staging-2024-03-01").exists()
    loaded = manager.load_input(
        build_input_context(asset_key=KEY, partition_key="2024-03-01", asset_partitions_def=daily_partitions)
    )
    assert loaded.uri == str(tmp_path / "artifacts" / "schema" / "2024-03-01")
    assert loaded.load().feature[0].name == "a"


def test_rematerializing_replaces_the_folder_whole(tmp_path):
    manager = ArtifactDirIOManager(home=str(tmp_path))
    manager.handle_output(
        build_output_context(asset_key=KEY, partition_key="2024-03-01"),
        staged_schema(tmp_path, "2024-03-01", "feature { name: 'old' }"),
    )
    (tmp_path / "staging-2024-03-01").mkdir()
    (tmp_path / "staging-2024-03-01" / "schema.pbtxt").write_text("feature { name: 'new' }")
    manager.handle_output(
        build_output_context(asset_key=KEY, partition_key="2024-03-01"),
        Schema(uri=str(tmp_path / "staging-2024-03-01"), partition="2024-03-01", inferred_from=[]),
    )
    final = tmp_path / "artifacts" / "schema"
    assert [p.name for p in final.iterdir()] == ["2024-03-01"]
    assert "new" in (final / "2024-03-01" / "schema.pbtxt").read_text()


def test_window_input_gives_the_partitions_that_exist(tmp_path):
    manager = ArtifactDirIOManager(home=str(tmp_path))
    manager.handle_output(
        build_output_context(asset_key=KEY, partition_key="2024-03-02"), staged_schema(tmp_path, "2024-03-02", "")
    )
    window = build_input_context(
        asset_key=KEY,
        asset_partition_key_range=PartitionKeyRange("2024-03-01", "2024-03-02"),
        asset_partitions_def=daily_partitions,
        definition_metadata={WINDOW: True},
    )
    assert list(manager.load_input(window)) == ["2024-03-02"]
    with pytest.raises(FileNotFoundError, match="no artifact"):
        manager.load_input(
            build_input_context(asset_key=KEY, partition_key="2024-03-01", asset_partitions_def=daily_partitions)
        )
