"""What every source produces: a day's rows as typed arrow columns, the rows it rejected with file, line and reason,
and where they came from. The typing rules (INT, FLOAT, STRING, inferred or given) are shared by every source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pyarrow as pa
import pyarrow.compute as pc

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


def _infer_type(values: pa.ChunkedArray, tolerance: float) -> str:
    present = values.drop_null()
    if len(present) == 0:
        return "STRING"
    floats = pc.sum(pc.match_substring_regex(present, FLOAT_PATTERN)).as_py() or 0
    if floats < (1.0 - tolerance) * len(present):
        return "STRING"
    ints = pc.sum(pc.match_substring_regex(present, INT_PATTERN)).as_py() or 0
    return "INT" if ints == floats else "FLOAT"


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
        unparseable = pc.and_(
            pc.is_valid(values),
            pc.invert(pc.match_substring_regex(values, INT_PATTERN if kind == "INT" else FLOAT_PATTERN)),
        )
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
        raise SourceError(
            f"{origin}: partition_feature {partition_feature!r} is not a column (columns: {data_columns})"
        )
    raw_partition = table[partition_feature].combine_chunks() if partition_feature else None
    typed = pa.table({c: pc.cast(pc.utf8_trim_whitespace(table[c]), ARROW_TYPES[types[c]]) for c in data_columns})
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
