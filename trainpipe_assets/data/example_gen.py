"""`examples` (TFX ExampleGen): a day's CSV files -> tf.Examples split by hash into Split-train / Split-eval."""

import csv
import datetime as dt
import io
import warnings
from dataclasses import asdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from dagster import AssetExecutionContext, BetaWarning, DataVersion, MetadataValue, Output

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.io_managers import ByDay
from trainpipe_assets.core.io_managers.tfrecord import SplitRecords, sources_fingerprint
from trainpipe_assets.core.metadata import preview
from trainpipe_assets.core.partitions import days_output, pipeline_asset
from trainpipe_assets.core.settings import TrainpipeConfig
from trainpipe_assets.core.step import fail
from trainpipe_assets.core.storage import write_text
from trainpipe_assets.data.sources.csv_source import files_for_day, read_day
from trainpipe_assets.data.sources.rows import RejectedRow, SourceError, check_rejected_fraction
from trainpipe_assets.data.sources.sql_source import SqlSource, read_sql_day
from trainpipe_assets.data.splits import assign_splits, canonical_row_keys

ENCODE_BATCH_ROWS = 65536


def encode_examples(table: pa.Table) -> list[bytes]:
    """Typed arrow columns -> serialized tf.Examples with tfx_bsl's C++ encoder (no per-cell Python)."""
    from tfx_bsl.arrow import array_util
    from tfx_bsl.coders import example_coder

    # One value per present row, a null list where the value is missing (a tf.Example without that value).
    lists = pa.table(
        {name: array_util.ToSingletonListArray(table[name].combine_chunks()) for name in table.column_names}
    )
    records: list[bytes] = []
    for batch in lists.to_batches(max_chunksize=ENCODE_BATCH_ROWS):
        records.extend(example_coder.RecordBatchToExamples(batch))
    return records


def rejected_csv(rejected: list[RejectedRow]) -> str:
    if not rejected:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["source_file", "line", "reason", "text"])
    writer.writeheader()
    writer.writerows(asdict(r) for r in rejected)
    return out.getvalue()


def build_split_records(trainpipe: TrainpipeConfig, day: dt.date) -> tuple[SplitRecords, dict]:
    """Read, validate, encode and split one day; returns the records and the facts for metadata."""
    settings = trainpipe.settings
    null_timestamps = None
    if settings.source.kind == "sql":
        table, null_timestamps = read_sql_day(
            SqlSource.from_settings(settings.source),
            day,
            settings.columns,
            settings.max_rejected_fraction,
            settings.partition_feature,
        )
    else:
        files = files_for_day(trainpipe.landing_dir, day)
        if not files:
            raise SourceError(f"no input for {day}: no file named <name>_{day}.csv in {trainpipe.landing_dir}")
        table = read_day(files, settings.columns, settings.max_rejected_fraction, settings.partition_feature)
    try:
        check_rejected_fraction(table, settings.max_rejected_fraction)
    except SourceError:
        # Keep what was rejected where a person can look at it; the raw files stay untouched in the landing folder.
        write_text(
            trainpipe.artifacts_dir.parent / "quarantine" / "examples" / f"{day}-rejected.csv",
            rejected_csv(table.rejected),
        )
        raise
    serialized = encode_examples(table.table)
    if table.raw_partition_values is not None:
        keys = pc.fill_null(table.raw_partition_values, "").to_numpy(zero_copy_only=False)
    else:
        keys = canonical_row_keys(table.table)
    split_index = assign_splits(keys, settings.splits)
    records = np.array(serialized, dtype=object)
    split_records = SplitRecords(
        records={name: records[split_index == i].tolist() for i, name in enumerate(settings.splits)},
        rejected_csv=rejected_csv(table.rejected),
        sources=[asdict(s) for s in table.sources],
    )
    facts = {
        "column_types": table.column_types,
        "rejected": len(table.rejected),
        "rejected_non_finite": table.non_finite,
        "total_rows": table.total_rows,
    }
    if null_timestamps is not None:
        facts["rows_without_timestamp"] = null_timestamps  # in no day: reported, never silently dropped
    return split_records, facts


@pipeline_asset(
    io_manager_key="tfrecord_io_manager",
    kinds={"tensorflow", "csv"},
    group_name="data",
    code_version="examples-v2",  # v2: non-finite FLOATs and out-of-range numbers are rejected
    single_run=True,
)
def examples(context: AssetExecutionContext, trainpipe: TrainpipeConfig) -> Output[ByDay]:
    """TFX ExampleGen: the day's CSV rows as gzipped tf.Example TFRecords in Split-train/ and Split-eval/.

    To ingest days from the UI, launch **ingest_job** (Jobs > ingest_job > Materialize, pick a day or a range: a
    range is one run): it runs examples, statistics and example_anomalies together, and a training window uses a day
    only when its example_anomalies verdict passed. In a run over several days, a day whose input cannot be read (no
    file, too many rejected rows) is written empty with `ingest_failed` naming why, and its example_anomalies verdict
    fails; the other days are ingested. A run of one such day fails here, naming why."""
    days = list(context.partition_keys)
    results, failed = {}, {}
    for key in days:
        try:
            split_records, facts = build_split_records(trainpipe, dt.date.fromisoformat(key))
        except SourceError as e:
            if len(days) == 1:
                raise fail(str(e)) from e
            context.log.error(f"examples {key}: {e}")
            failed[key] = str(e)
            split_records = SplitRecords(records={s: [] for s in trainpipe.settings.splits})
            facts = {"column_types": {}, "rejected": 0, "rejected_non_finite": {}, "total_rows": 0}
        results[key] = (split_records, {**_metadata(split_records, facts), **_failed(failed.get(key))})
    version = sources_fingerprint(results[days[0]][0].sources) if len(days) == 1 else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)  # Output(data_version=...) is beta and is what we want
        return days_output(
            context, trainpipe.home, results, **({"data_version": DataVersion(version)} if version else {})
        )


def _failed(reason: str | None) -> dict:
    return {md.INGEST_FAILED: reason} if reason else {}


def _metadata(split_records: SplitRecords, facts: dict) -> dict:
    counts = {name: len(r) for name, r in split_records.records.items()}
    sources = "\n".join(f"| {s['path']} | {s['rows']} | `{s['sha256'][:16]}` |" for s in split_records.sources)
    return {
        md.ROWS: sum(counts.values()),
        **{md.rows_key(name): n for name, n in counts.items()},
        md.REJECTED_ROWS: facts["rejected"],
        "rejected_fraction": facts["rejected"] / max(1, facts["total_rows"]),
        "source_files": MetadataValue.md("| file | rows | sha256 |\n|---|---|---|\n" + sources),
        md.SOURCE_FINGERPRINT: MetadataValue.json({s["path"]: s["sha256"] for s in split_records.sources}),
        # Column names come from the data: cut to a preview like every other text from it.
        "column_types": MetadataValue.json({preview(c): t for c, t in facts["column_types"].items()}),
        # {column: rows rejected for a NaN or infinite value in it}
        md.REJECTED_NON_FINITE: MetadataValue.json({preview(c): n for c, n in facts["rejected_non_finite"].items()}),
        **({"rows_without_timestamp": facts["rows_without_timestamp"]} if "rows_without_timestamp" in facts else {}),
    }
