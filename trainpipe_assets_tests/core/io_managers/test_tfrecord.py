import pytest
import tensorflow as tf
from dagster import AssetKey, PartitionKeyRange, build_input_context, build_output_context

from trainpipe_assets.core.io_managers import artifact_path
from trainpipe_assets.core.io_managers.tfrecord import (
    SplitRecords,
    TFRecordIOManager,
    read_examples,
    write_examples_dir,
)
from trainpipe_assets_tests.helpers import daily_partitions


def example(i: int) -> bytes:
    return tf.train.Example(
        features=tf.train.Features(feature={"i": tf.train.Feature(int64_list=tf.train.Int64List(value=[i]))})
    ).SerializeToString()


def records(n_train: int, n_eval: int) -> SplitRecords:
    return SplitRecords(
        records={"train": [example(i) for i in range(n_train)], "eval": [example(i) for i in range(n_eval)]}
    )


def read_ints(patterns):
    files = [f for p in patterns for f in tf.io.gfile.glob(p)]
    return [
        tf.train.Example.FromString(r.numpy()).features.feature["i"].int64_list.value[0]
        for r in tf.data.TFRecordDataset(files, "GZIP")
    ]


def test_write_then_load_one_partition(tmp_path):
    final = tmp_path / "examples" / "2024-03-01"
    written = write_examples_dir(final, "2024-03-01", records(4, 2))
    loaded = read_examples({"2024-03-01": final})
    assert loaded == written
    assert loaded.row_counts == {"train": 4, "eval": 2}
    assert read_ints(loaded.file_patterns["train"]) == [0, 1, 2, 3]
    assert sorted(p.name for p in final.iterdir()) == ["Split-eval", "Split-train", "artifact.json", "sources.json"]


def test_a_range_loads_the_union_and_names_missing_days(tmp_path):
    dirs = {d: tmp_path / d for d in ("2024-03-01", "2024-03-02", "2024-03-03")}
    write_examples_dir(dirs["2024-03-01"], "2024-03-01", records(3, 1))
    write_examples_dir(dirs["2024-03-03"], "2024-03-03", records(5, 2))
    union = read_examples(dirs)
    assert union.partitions == ["2024-03-01", "2024-03-03"]
    assert union.missing_partitions == ["2024-03-02"]
    assert union.row_counts == {"train": 8, "eval": 3}
    assert len(union.file_patterns["train"]) == 2  # a list of patterns, like TFX's train_files
    assert len(read_ints(union.file_patterns["train"])) == 8
    with pytest.raises(FileNotFoundError, match="no materialized examples"):
        read_examples({"2024-03-02": dirs["2024-03-02"]})


def test_a_crash_while_writing_keeps_the_previous_partition_whole(tmp_path):
    final = tmp_path / "examples" / "2024-03-01"
    write_examples_dir(final, "2024-03-01", records(4, 2))

    class Exploding(list):
        def __iter__(self):
            yield example(99)
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_examples_dir(final, "2024-03-01", SplitRecords(records={"train": Exploding([1]), "eval": []}))
    assert read_examples({"2024-03-01": final}).row_counts == {"train": 4, "eval": 2}
    assert read_ints([str(final / "Split-train" / "*.gz")]) == [0, 1, 2, 3]
    assert [p.name for p in final.parent.iterdir()] == ["2024-03-01"]  # no staging folder left behind


def test_io_manager_paths_single_and_window_loads(tmp_path):
    manager = TFRecordIOManager(home=str(tmp_path))
    key = AssetKey("examples")
    for day in ("2024-03-01", "2024-03-02"):
        manager.handle_output(build_output_context(asset_key=key, partition_key=day), records(2, 1))
    assert (artifact_path(str(tmp_path), key, "2024-03-02") / "Split-train").is_dir()
    one = manager.load_input(
        build_input_context(asset_key=key, partition_key="2024-03-02", asset_partitions_def=daily_partitions)
    )
    assert one.partitions == ["2024-03-02"] and one.row_counts == {"train": 2, "eval": 1}
    window = manager.load_input(
        build_input_context(
            asset_key=key,
            asset_partition_key_range=PartitionKeyRange("2024-02-28", "2024-03-02"),
            asset_partitions_def=daily_partitions,
        )
    )
    assert window.partitions == ["2024-03-01", "2024-03-02"]
    assert window.missing_partitions == ["2024-02-28", "2024-02-29"]
    assert window.row_counts == {"train": 4, "eval": 2}
