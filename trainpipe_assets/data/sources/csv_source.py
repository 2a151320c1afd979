"""One day of CSV files from the landing folder, parsed with pyarrow into typed columns plus the rows it rejects."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
from pathlib import Path
from typing import Optional

import pyarrow as pa
import pyarrow.csv as pcsv

from trainpipe_assets.data.sources.rows import DayTable, RejectedRow, SourceError, SourceFile, type_rows

FILE_NAME = re.compile(r"^(?P<name>.+)_(?P<day>\d{4}-\d{2}-\d{2})\.csv$")
IN_PROGRESS_SUFFIXES = (".tmp", ".part")


def parse_file_name(name: str) -> Optional[tuple[str, dt.date]]:
    """`trips_2024-03-01.csv` -> ("trips", date(2024, 3, 1)); None when the name does not follow the rule."""
    m = FILE_NAME.match(name)
    if not m:
        return None
    try:
        return m["name"], dt.date.fromisoformat(m["day"])
    except ValueError:
        return None


def files_for_day(landing_dir: Path, day: dt.date) -> list[Path]:
    if not landing_dir.is_dir():
        return []
    return sorted(p for p in landing_dir.iterdir() if p.is_file() and (parse_file_name(p.name) or ("", None))[1] == day)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f), None)
    if not header or not any(h.strip() for h in header):
        raise SourceError(f"{path}: file is empty (no header row)")
    return [h.strip() for h in header]


def _read_strings(path: Path, header: list[str]) -> tuple[pa.Table, list[RejectedRow]]:
    """Every column as a nullable string; rows with the wrong number of fields are set aside with their line."""
    bad: list[RejectedRow] = []

    def on_invalid_row(row) -> str:
        reason = f"expected {row.expected_columns} fields, found {row.actual_columns}"
        bad.append(RejectedRow(str(path), row.number, reason, row.text))
        return "skip"

    table = pcsv.read_csv(
        path,
        # Single-threaded parsing is what makes pyarrow report the line number of an invalid row.
        read_options=pcsv.ReadOptions(use_threads=False, column_names=header, skip_rows=1, block_size=1 << 24),
        parse_options=pcsv.ParseOptions(invalid_row_handler=on_invalid_row),
        convert_options=pcsv.ConvertOptions(
            column_types={h: pa.string() for h in header}, strings_can_be_null=True, null_values=[""]
        ),
    )
    return table, bad


def _data_line_numbers(num_rows: int, skipped_lines: list[int]) -> pa.Array:
    """Line numbers of the accepted rows: data starts on line 2 and skipped lines are missing from the table."""
    import numpy as np

    lines = np.arange(2, 2 + num_rows + len(skipped_lines))
    if skipped_lines:
        lines = lines[~np.isin(lines, skipped_lines)]
    return pa.array(lines[:num_rows])


def read_day(
    paths: list[Path],
    expected_columns: dict[str, str],
    max_rejected_fraction: float,
    partition_feature: Optional[str] = None,
) -> DayTable:
    """Parse a day's files; types come from `expected_columns` or, when that is empty, are inferred from the data."""
    if not paths:
        raise SourceError("no input files")
    tables, rejected, sources = [], [], []
    for path in paths:
        header = _read_header(path)
        missing = [c for c in expected_columns if c not in header]
        if missing:
            raise SourceError(f"{path}: header lacks expected columns {missing} (header has {header})")
        strings, bad = _read_strings(path, header)
        if strings.num_rows == 0 and not bad:
            raise SourceError(f"{path}: file has a header but no rows")
        lines = _data_line_numbers(strings.num_rows, [b.line for b in bad if b.line is not None])
        strings = strings.append_column("__line", lines).append_column(
            "__file", pa.array([str(path)] * strings.num_rows, pa.string())
        )
        tables.append(strings)
        rejected.extend(bad)
        sources.append(SourceFile(str(path), file_sha256(path), strings.num_rows + len(bad)))
    table = pa.concat_tables(tables, promote_options="default")
    return type_rows(
        table, expected_columns, max_rejected_fraction, partition_feature, rejected, sources, str(paths[0])
    )
