"""The TFRecord IO manager: gzipped tf.Example records under `Split-<name>/`, and loads of one day or a window."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from dagster import ConfigurableIOManager, InputContext, MetadataValue, OutputContext

from trainpipe_assets.core import metadata as md
from trainpipe_assets.core.artifacts import MANIFEST, Examples, from_manifest, split_dir, to_manifest
from trainpipe_assets.core.io_managers import ByDay, artifact_path, days_of
from trainpipe_assets.core.storage import replace_dir, staging_sibling, write_text

RECORDS_FILE = "data-00000-of-00001.gz"
REJECTED_FILE = "rejected.csv"
SOURCES_FILE = "sources.json"


@dataclass
class SplitRecords:
    """What `examples` hands over: serialized tf.Examples per split, the rejected rows as CSV, and their sources."""

    records: dict[str, list[bytes]]
    rejected_csv: str = ""
    sources: list[dict] = field(default_factory=list)


def sources_fingerprint(sources: list[dict]) -> str:
    """The data version of a day: a hash of its source files' paths and content hashes."""
    import hashlib

    return hashlib.sha256(json.dumps(sorted((s["path"], s["sha256"]) for s in sources)).encode()).hexdigest()[:16]


def write_examples_dir(final: Path, partition_key: str, split_records: SplitRecords) -> Examples:
    """Write every split into a staging sibling of `final`, then rename it into place."""
    import tensorflow as tf

    staging = staging_sibling(final)
    try:
        for split, records in split_records.records.items():
            split_dir(staging, split).mkdir()
            with tf.io.TFRecordWriter(str(split_dir(staging, split) / RECORDS_FILE), options="GZIP") as writer:
                for record in records:
                    writer.write(record)
        if split_records.rejected_csv:
            write_text(staging / REJECTED_FILE, split_records.rejected_csv)
        write_text(staging / SOURCES_FILE, json.dumps(split_records.sources, indent=2))
        artifact = Examples(
            uris=[str(final)],
            partitions=[partition_key],
            row_counts={s: len(r) for s, r in split_records.records.items()},
            fingerprints={partition_key: sources_fingerprint(split_records.sources)},
        )
        write_text(staging / MANIFEST, to_manifest(artifact))
    except BaseException:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        raise
    replace_dir(staging, final)
    return artifact


def read_examples(dirs: dict[str, Path]) -> Examples:
    """The union of the partitions that exist among `dirs`; the others are listed as missing."""
    present = {
        k: from_manifest((d / MANIFEST).read_text()) for k, d in sorted(dirs.items()) if (d / MANIFEST).is_file()
    }
    if not present:
        raise FileNotFoundError(f"no materialized examples in {sorted(str(d) for d in dirs.values())}")
    counts: dict[str, int] = {}
    for artifact in present.values():
        for split, n in artifact.row_counts.items():
            counts[split] = counts.get(split, 0) + n
    return Examples(
        uris=[a.uris[0] for a in present.values()],
        partitions=list(present),
        row_counts=counts,
        missing_partitions=sorted(set(dirs) - set(present)),
        fingerprints={k: v for a in present.values() for k, v in a.fingerprints.items()},
    )


class TFRecordIOManager(ConfigurableIOManager):
    """Stores `SplitRecords` as `artifacts/<asset>/<day>/Split-*/data-*.gz`; loads `Examples` for a day or a range."""

    home: str

    def handle_output(self, context: OutputContext, obj: SplitRecords | ByDay) -> None:
        """Each day of the run (a ByDay of SplitRecords for several) in its own folder; with several days, the asset
        records each day's path and file patterns in that day's metadata."""
        for day, split_records in days_of(context, obj).items():
            final = artifact_path(self.home, context.asset_key, day)
            artifact = write_examples_dir(final, day, split_records)
        if not isinstance(obj, ByDay):
            context.add_output_metadata(
                {md.PATH: MetadataValue.path(str(final)), "file_patterns": MetadataValue.json(artifact.file_patterns)}
            )

    def load_input(self, context: InputContext) -> Examples:
        keys = context.asset_partition_keys
        return read_examples({k: artifact_path(self.home, context.asset_key, k) for k in keys})
