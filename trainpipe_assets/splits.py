"""TFX's split rule: a row's bucket is fingerprint64(serialized example, or its partition feature) mod total buckets."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def bucket_bounds(buckets: dict[str, int]) -> list[tuple[str, int]]:
    """{"train": 2, "eval": 1} -> [("train", 2), ("eval", 3)]: a bucket below a bound goes to that split."""
    bounds, total = [], 0
    for name, count in buckets.items():
        total += count
        bounds.append((name, total))
    return bounds


def assign_splits(
    serialized: Sequence[bytes], buckets: dict[str, int], partition_values: Optional[Sequence[bytes]] = None
) -> np.ndarray:
    """Index into `list(buckets)` for every example; deterministic, and equal keys always land together."""
    import tensorflow as tf

    keys = serialized if partition_values is None else partition_values
    total = sum(buckets.values())
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    # to_hash_bucket_fast is farmhash Fingerprint64 modulo the bucket count, the hash TFX's ExampleGen uses.
    bucket = tf.strings.to_hash_bucket_fast(tf.constant(list(keys), dtype=tf.string), total).numpy()
    upper = np.array([bound for _, bound in bucket_bounds(buckets)])
    return np.searchsorted(upper, bucket, side="right")
