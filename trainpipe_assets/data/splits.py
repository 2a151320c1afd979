"""TFX's split rule: a row's bucket is fingerprint64(its key) mod total buckets, the key being the example's content
or its partition feature. tfx_bsl's encoder orders features differently from run to run, so the content key is a
canonical text of the row rather than the serialized bytes (TFX uses SerializeToString(deterministic=True))."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def bucket_bounds(buckets: dict[str, int]) -> list[tuple[str, int]]:
    """{"train": 2, "eval": 1} -> [("train", 2), ("eval", 3)]: a bucket below a bound goes to that split."""
    bounds, total = [], 0
    for name, count in buckets.items():
        total += count
        bounds.append((name, total))
    return bounds


def canonical_row_keys(table: pa.Table) -> np.ndarray:
    """One text key per row: `name=value` for every column in name order, missing values empty."""
    parts = []
    for name in sorted(table.column_names):
        text = pc.fill_null(pc.cast(table[name], pa.string()), "")
        parts.append(pc.binary_join_element_wise(pa.scalar(name + "="), text, ""))
    if not parts:
        return np.zeros(0, dtype=object)
    return pc.binary_join_element_wise(*parts, "\x1f").to_numpy(zero_copy_only=False)


def assign_splits(keys: Sequence[bytes] | np.ndarray, buckets: dict[str, int]) -> np.ndarray:
    """Index into `list(buckets)` for every key; deterministic, and equal keys always land together."""
    import tensorflow as tf

    total = sum(buckets.values())
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    # to_hash_bucket_fast is farmhash Fingerprint64 modulo the bucket count, the hash TFX's ExampleGen uses.
    bucket = tf.strings.to_hash_bucket_fast(tf.constant(np.asarray(keys, dtype=object), dtype=tf.string), total).numpy()
    upper = np.array([bound for _, bound in bucket_bounds(buckets)])
    return np.searchsorted(upper, bucket, side="right")
