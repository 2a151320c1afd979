"""The one reader of examples files: gzipped TFRecords of serialized tf.Examples, in the order of the patterns given
(a window's days in date order) and in file-name order within each."""

from __future__ import annotations

from typing import Iterable, Iterator, Optional

import pyarrow as pa

BATCH_RECORDS = 4096  # one tensor per 4096 records: far fewer Python round trips


def record_files(file_patterns: Iterable[str]) -> list[str]:
    import tensorflow as tf

    return [f for pattern in file_patterns for f in sorted(tf.io.gfile.glob(pattern))]


def iter_record_batches(
    file_patterns: Iterable[str], batch: int = BATCH_RECORDS, limit: Optional[int] = None
) -> Iterator[list[bytes]]:
    """Lists of up to `batch` serialized records, in file-name order; the first `limit` records if given."""
    import tensorflow as tf

    files = record_files(file_patterns)
    if not files:
        return
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    if limit is not None:
        dataset = dataset.take(limit)
    for chunk in dataset.batch(batch):
        yield chunk.numpy().tolist()


def read_records(file_patterns: Iterable[str], limit: Optional[int] = None) -> list[bytes]:
    """The serialized records of gzipped TFRecord files, in order; the first `limit` of them if given."""
    return [r for chunk in iter_record_batches(file_patterns, limit=limit) for r in chunk]


def decode_examples(serialized: list[bytes]) -> pa.RecordBatch:
    """tf.Examples -> one RecordBatch of list columns, types inferred from the data (tfx_bsl's decoder)."""
    from tfx_bsl.coders import example_coder

    return example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(serialized)
