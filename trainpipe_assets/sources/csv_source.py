"""One day of CSV files from the landing folder, parsed with pyarrow into typed columns plus the rows it rejects."""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

FILE_NAME = re.compile(r"^(?P<name>.+)_(?P<day>\d{4}-\d{2}-\d{2})\.csv$")
IN_PROGRESS_SUFFIXES = (".tmp", ".part")
INT_PATTERN = r"^\s*[+-]?\d+\s*$"
FLOAT_PATTERN = r"^\s*[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|nan|NaN|inf|Inf)\s*$"
ARROW_TYPES = {"INT": pa.int64(), "FLOAT": pa.float32(), "STRING": pa.large_binary()}


class SourceError(ValueError):
    """A day's input cannot be read: missing, empty, or without the expected columns."""


@dataclass(frozen=True)
class RejectedRow:
    source_file: str
    line: Optional[int]
    reason: str
    text: str


@dataclass(frozen=True)
class SourceFile:
    path: str
    sha256: str
    rows: int


@dataclass(frozen=True)
class DayTable:
    """A day's accepted rows as typed arrow columns (INT/FLOAT/STRING), the rejected rows, and where they came from."""

    table: pa.Table
    column_types: dict[str, str]
    raw_partition_values: Optional[pa.Array]
    rejected: list[RejectedRow]
    sources: list[SourceFile]

    @property
    def total_rows(self) -> int:
        return self.table.num_rows + len(self.rejected)


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


def _infer_type(values: pa.ChunkedArray, tolerance: float) -> str:
    present = values.drop_null()
    if len(present) == 0:
        return "STRING"
    floats = pc.sum(pc.match_substring_regex(present, FLOAT_PATTERN)).as_py() or 0
    if floats < (1.0 - tolerance) * len(present):
        return "STRING"
    ints = pc.sum(pc.match_substring_regex(present, INT_PATTERN)).as_py() or 0
    return "INT" if ints == floats else "FLOAT"


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
    return type_rows(table, expected_columns, max_rejected_fraction, partition_feature, rejected, sources, str(paths[0]))


def type_rows(
    table: pa.Table,
    expected_columns: dict[str, str],
    max_rejected_fraction: float,
    partition_feature: Optional[str],
    rejected: list[RejectedRow],
    sources: list[SourceFile],
    origin: str,
) -> DayTable:
    """String columns (plus `__file` and `__line` saying where each row came from) -> typed columns; rows with an
    unparseable number join `rejected`. Shared by every source."""
    data_columns = [c for c in table.column_names if not c.startswith("__")]
    missing = [c for c in expected_columns if c not in data_columns]
    if missing:
        raise SourceError(f"{origin}: lacks expected columns {missing} (has {data_columns})")
    types = {c: expected_columns.get(c) or _infer_type(table[c], max_rejected_fraction) for c in data_columns}

    bad_mask = pa.array([False] * table.num_rows)
    reasons = pa.array([None] * table.num_rows, pa.string())
    for column, kind in types.items():
        if kind == "STRING":
            continue
        values = table[column]
        unparseable = pc.and_(pc.is_valid(values), pc.invert(pc.match_substring_regex(values, INT_PATTERN if kind == "INT" else FLOAT_PATTERN)))
        unparseable = pc.fill_null(unparseable, False)
        if pc.any(unparseable).as_py():
            message = pc.binary_join_element_wise(
                pa.scalar(f"{column}: cannot parse "), values, pa.scalar(f" as {kind}"), ""
            )
            reasons = pc.if_else(pc.and_(unparseable, pc.is_null(reasons)), message, reasons)
            bad_mask = pc.or_(bad_mask, unparseable)
    if pc.any(bad_mask).as_py():
        bad_rows = table.filter(bad_mask)
        bad_reasons = reasons.filter(bad_mask)
        for row, reason in zip(bad_rows.to_pylist(), bad_reasons.to_pylist()):
            text = ",".join("" if row[c] is None else str(row[c]) for c in data_columns)
            rejected.append(RejectedRow(row["__file"], row["__line"], reason, text))
        table = table.filter(pc.invert(bad_mask))

    if partition_feature and partition_feature not in types:
        raise SourceError(f"{origin}: partition_feature {partition_feature!r} is not a column (columns: {data_columns})")
    raw_partition = table[partition_feature].combine_chunks() if partition_feature else None
    typed = pa.table(
        {c: pc.cast(pc.utf8_trim_whitespace(table[c]), ARROW_TYPES[types[c]]) for c in data_columns}
    )
    return DayTable(typed, types, raw_partition, rejected, sources)


def check_rejected_fraction(day: DayTable, max_fraction: float, shown: int = 5) -> None:
    """Fail when too much of a day was rejected, naming the files and the first bad lines."""
    if not day.rejected or len(day.rejected) <= max_fraction * day.total_rows:
        return
    files = sorted({r.source_file for r in day.rejected})
    first = "\n".join(f"  {r.source_file}:{r.line}: {r.reason}: {r.text[:120]}" for r in day.rejected[:shown])
    raise SourceError(
        f"{len(day.rejected)} of {day.total_rows} rows rejected ({len(day.rejected) / day.total_rows:.1%}, "
        f"limit {max_fraction:.1%}) in {', '.join(files)}; first bad lines:\n{first}"
    )
