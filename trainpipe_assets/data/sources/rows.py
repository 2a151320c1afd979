"""What every source produces: a day's rows as typed arrow columns, the rows it rejected with file, line and reason,
and where they came from. The typing rules (INT, FLOAT, STRING, inferred or given) are shared by every source.

A FLOAT is a finite number: NaN and infinities, in any spelling (nan, Inf, -Infinity...), and numbers beyond float32
are rejected with the row, as are INTs beyond int64. Text from the data is cut to a preview in every message."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from trainpipe_assets.core.metadata import PREVIEW_CHARS, preview

INT_PATTERN = r"^\s*[+-]?\d+\s*$"
FLOAT_PATTERN = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"  # finite numbers only
NUMBER_PATTERN = r"(?i)^\s*[+-]?((\d+\.?\d*|\.\d+)(e[+-]?\d+)?|nan|inf|infinity)\s*$"  # finite or not
NON_FINITE = re.compile(r"\s*[+-]?(nan|inf|infinity)\s*", re.IGNORECASE | re.ASCII)
ARROW_TYPES = {"INT": pa.int64(), "FLOAT": pa.float32(), "STRING": pa.large_binary()}


class SourceError(ValueError):
    """A day's input cannot be read: missing, empty, or without the expected columns."""


def preview_names(names: list[str], limit: int = 5 * PREVIEW_CHARS) -> str:
    """A list of column names for a message, each name and the whole list cut to a preview."""
    return preview(repr([preview(n) for n in names]), limit)


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
    """A day's accepted rows as typed arrow columns (INT/FLOAT/STRING), the rejected rows, and where they came from;
    `non_finite` counts, per column, the rejected rows with a NaN or infinite value in it."""

    table: pa.Table
    column_types: dict[str, str]
    raw_partition_values: Optional[pa.Array]
    rejected: list[RejectedRow]
    sources: list[SourceFile]
    non_finite: dict[str, int] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return self.table.num_rows + len(self.rejected)


def _infer_type(values: pa.ChunkedArray, tolerance: float) -> str:
    """STRING unless nearly all values are numbers; NaN and infinities count as (FLOAT) numbers, to be rejected."""
    present = values.drop_null()
    if len(present) == 0:
        return "STRING"
    numbers = pc.sum(pc.match_substring_regex(present, NUMBER_PATTERN)).as_py() or 0
    if numbers < (1.0 - tolerance) * len(present):
        return "STRING"
    ints = pc.sum(pc.match_substring_regex(present, INT_PATTERN)).as_py() or 0
    return "INT" if ints == numbers else "FLOAT"


def _int64_out_of_range(texts: pa.ChunkedArray) -> pa.Array:
    """Which integer texts (all matching INT_PATTERN) do not fit in an int64; only long ones are looked at."""
    long = pc.fill_null(pc.greater(pc.utf8_length(texts), 18), False)
    mask = np.zeros(len(texts), bool)
    rows = np.flatnonzero(long.to_numpy(zero_copy_only=False))
    for row, text in zip(rows, texts.filter(long).to_pylist()):
        mask[row] = not -(2**63) <= int(text) < 2**63
    return pa.array(mask)


def _to_numbers(texts: pa.ChunkedArray, kind: str) -> tuple[pa.ChunkedArray, Optional[pa.Array]]:
    """Trimmed texts that match the kind's pattern -> int64 or float32, and which of them are out of range (None
    when all fit): an INT beyond int64, a FLOAT beyond float32 (which would become infinite)."""
    if kind == "INT":
        try:
            return pc.cast(texts, pa.int64()), None
        except pa.ArrowInvalid:  # a leading "+" (arrow does not take it) or more digits than an int64 has
            texts = pc.replace_substring_regex(texts, r"^\+", "")
            out = _int64_out_of_range(texts)
            if not pc.any(out).as_py():
                out = None
            else:
                texts = pc.if_else(out, pa.scalar(None, pa.string()), texts)
            return pc.cast(texts, pa.int64()), out
    numbers = pc.cast(texts, pa.float32())
    infinite = pc.fill_null(pc.is_inf(numbers), False)
    if not pc.any(infinite).as_py():
        return numbers, None
    return pc.if_else(infinite, pa.scalar(None, pa.float32()), numbers), infinite


def _reason(column: str, kind: str, value: str, out_of_range: bool) -> tuple[str, bool]:
    """Why `value` is not a `kind`, and whether it is a non-finite number."""
    column = preview(column)
    if out_of_range:
        return f"{column}: value '{preview(value.strip())}' out of range ({kind})", False
    if kind == "FLOAT" and NON_FINITE.fullmatch(value):
        return f"{column}: non-finite value '{value.strip()}' (FLOAT)", True
    return f"{column}: cannot parse {preview(value)} as {kind}", False


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
    unparseable, non-finite or out-of-range number join `rejected`. Shared by every source."""
    data_columns = [c for c in table.column_names if not c.startswith("__")]
    missing = [c for c in expected_columns if c not in data_columns]
    if missing:
        raise SourceError(f"{origin}: lacks expected columns {missing} (has {preview_names(data_columns)})")
    if partition_feature and partition_feature not in data_columns:
        columns = preview_names(data_columns)
        raise SourceError(f"{origin}: partition_feature {partition_feature!r} is not a column (columns: {columns})")
    types = {c: expected_columns.get(c) or _infer_type(table[c], max_rejected_fraction) for c in data_columns}

    typed, unparseable, out_of_range = {}, {}, {}
    for column, kind in types.items():
        values = table[column]
        if kind == "STRING":
            typed[column] = pc.cast(pc.utf8_trim_whitespace(values), ARROW_TYPES[kind])
            continue
        matches = pc.match_substring_regex(values, INT_PATTERN if kind == "INT" else FLOAT_PATTERN)
        bad = pc.fill_null(pc.invert(matches), False)
        if pc.any(bad).as_py():
            unparseable[column] = bad
            values = pc.if_else(bad, pa.scalar(None, pa.string()), values)
        typed[column], out = _to_numbers(pc.utf8_trim_whitespace(values), kind)
        if out is not None:
            out_of_range[column] = out
    masks = [*unparseable.values(), *out_of_range.values()]
    non_finite: dict[str, int] = {}
    if masks:
        bad_mask = masks[0]
        for mask in masks[1:]:
            bad_mask = pc.or_(bad_mask, mask)
        bad_rows = table.filter(bad_mask).to_pylist()
        flags = {
            (c, kind): m.filter(bad_mask).to_numpy(zero_copy_only=False)
            for kind, group in (("parse", unparseable), ("range", out_of_range))
            for c, m in group.items()
        }
        for i, row in enumerate(bad_rows):
            reasons = []
            for column in data_columns:
                for problem in ("parse", "range"):
                    if (column, problem) in flags and flags[column, problem][i]:
                        reason, infinite = _reason(column, types[column], row[column], problem == "range")
                        reasons.append(reason)
                        if infinite:
                            non_finite[column] = non_finite.get(column, 0) + 1
            text = ",".join("" if row[c] is None else str(row[c]) for c in data_columns)
            rejected.append(RejectedRow(row["__file"], row["__line"], reasons[0], text))
        keep = pc.invert(bad_mask)
        table = table.filter(keep)
        typed = {c: v.filter(keep) for c, v in typed.items()}

    raw_partition = table[partition_feature].combine_chunks() if partition_feature else None
    return DayTable(pa.table(typed), types, raw_partition, rejected, sources, non_finite)


def check_rejected_fraction(day: DayTable, max_fraction: float, shown: int = 5) -> None:
    """Fail when too much of a day was rejected, naming the files and the first bad lines."""
    if not day.rejected or len(day.rejected) <= max_fraction * day.total_rows:
        return
    files = sorted({r.source_file for r in day.rejected})
    first = "\n".join(
        f"  {r.source_file}:{preview(str(r.line), 40)}: {r.reason}: {preview(r.text, 120)}"
        for r in day.rejected[:shown]
    )
    raise SourceError(
        f"{len(day.rejected)} of {day.total_rows} rows rejected ({len(day.rejected) / day.total_rows:.1%}, "
        f"limit {max_fraction:.1%}) in {', '.join(files)}; first bad lines:\n{first}"
    )
