import numpy as np
import pyarrow as pa
import tensorflow as tf

from trainpipe_assets.data.splits import assign_splits, bucket_bounds, canonical_row_keys


def test_bucket_bounds_are_cumulative():
    assert bucket_bounds({"train": 2, "eval": 1}) == [("train", 2), ("eval", 3)]


def test_split_is_fingerprint_modulo_buckets_and_deterministic():
    keys = [f"row-{i}".encode() for i in range(3000)]
    first = assign_splits(keys, {"train": 2, "eval": 1})
    assert np.array_equal(first, assign_splits(keys, {"train": 2, "eval": 1}))
    expected = (tf.strings.to_hash_bucket_fast(keys, 3).numpy() >= 2).astype(int)
    assert np.array_equal(first, expected)
    assert 0.62 < (first == 0).mean() < 0.72


def test_partition_feature_keeps_equal_keys_together():
    users = [f"user-{i % 20}".encode() for i in range(600)]
    split = assign_splits(users, {"train": 1, "eval": 1, "test": 1})
    for user in set(users):
        assert len({s for s, u in zip(split, users) if u == user}) == 1
    assert set(split) <= {0, 1, 2}


def test_row_keys_are_canonical_text_of_the_row():
    table = pa.table({"b": pa.array([1, None]), "a": pa.array([b"x", b"y"])})
    assert canonical_row_keys(table).tolist() == ["a=x\x1fb=1", "a=y\x1fb="]
    assert canonical_row_keys(table.select(["a", "b"])).tolist() == canonical_row_keys(table).tolist()


def test_empty_input():
    assert len(assign_splits([], {"train": 2, "eval": 1})) == 0
