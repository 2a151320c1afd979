"""One day of CSV files from the landing folder, parsed with pyarrow into typed columns plus the rows it rejects.

Rows are told apart by a scan of the bytes (quote parity, the CSV module when quotes are irregular) so that every
rejected row carries the physical line it starts on, even after quoted fields with embedded newlines; rows that are
not UTF-8 are rejected before pyarrow sees them."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import io
import re
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from trainpipe_assets.data.sources.rows import (
    DayTable,
    RejectedRow,
    SourceError,
    SourceFile,
    preview,
    preview_names,
    type_rows,
)

FILE_NAME = re.compile(r"^(?P<name>.+)_(?P<day>\d{4}-\d{2}-\d{2})\.csv$")
IN_PROGRESS_SUFFIXES = (".tmp", ".part")
BOM = b"\xef\xbb\xbf"
LF, CR, QUOTE, COMMA = 10, 13, 34, 44
# Bounds on hostile input: a record (a row, quoted newlines included) longer than this, or a header with more columns,
# fails the day naming the file, the line and the limit (checked on the raw bytes before any parsing).
MAX_RECORD_BYTES = 1 << 20
MAX_COLUMNS = 10_000


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


def _line_ends(data: np.ndarray, has_cr: bool) -> np.ndarray:
    """Offsets of the line terminators: LF, the LF of CRLF, and a lone CR (as pyarrow and the csv module read them)."""
    ends = np.flatnonzero(data == LF)
    if has_cr:
        cr = np.flatnonzero(data == CR)
        following = data[np.minimum(cr + 1, len(data) - 1)]
        ends = np.union1d(ends, cr[(cr + 1 == len(data)) | (following != LF)])
    return ends


def _regular_quotes(data: np.ndarray, quotes: np.ndarray) -> bool:
    """True when every quote opens a field, closes one or is half of an escaped pair: quote parity then tells
    exactly which line ends are inside a quoted field."""
    if len(quotes) % 2:
        return False
    before = data[np.maximum(quotes - 1, 0)]
    after = data[np.minimum(quotes + 1, len(data) - 1)]
    opening = (quotes == 0) | (before == COMMA) | (before == LF) | (before == CR) | (before == QUOTE)
    closing = (quotes == len(data) - 1) | (after == COMMA) | (after == LF) | (after == CR) | (after == QUOTE)
    return bool(np.all(opening[0::2]) and np.all(closing[1::2]))


@contextlib.contextmanager
def _fields_up_to(size: int):
    """Python's csv module refuses fields over 128 KiB by default; pyarrow reads them."""
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, size + 1))
    try:
        yield
    finally:
        csv.field_size_limit(limit)


def _csv_module_record_lines(raw: bytes) -> np.ndarray:
    """Physical start line of every record by Python's csv module: slow, for files whose quotes are irregular."""
    with _fields_up_to(len(raw)):
        reader = csv.reader(io.StringIO(raw.decode("utf-8", "surrogateescape"), newline=""))
        starts, previous = [], 0
        for row in reader:
            if row:  # pyarrow skips empty lines too
                starts.append(previous + 1)
            previous = reader.line_num
    return np.array(starts, dtype=np.int64)


def _records(raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(start offset, physical start line) of every non-empty record, the header included."""
    data = np.frombuffer(raw, np.uint8)
    if not len(data):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ends = _line_ends(data, b"\r" in raw)
    line_starts = np.concatenate(([0], ends + 1))
    quotes = np.flatnonzero(data == QUOTE) if b'"' in raw else None
    if quotes is not None and not _regular_quotes(data, quotes):
        lines = _csv_module_record_lines(raw)
        return line_starts[lines - 1], lines
    closing = np.ones(len(ends), bool) if quotes is None else np.searchsorted(quotes, ends) % 2 == 0
    closing_ends = np.flatnonzero(closing)
    starts = np.concatenate(([0], ends[closing_ends] + 1))
    lines = np.concatenate(([1], closing_ends + 2))
    stops = np.append(ends[closing_ends], len(data))
    length = stops - starts
    blank = (length == 0) | ((length == 1) & (data[np.minimum(starts, len(data) - 1)] == CR))
    return starts[~blank], lines[~blank]


def _check_bounds(path: Path, raw: bytes, starts: np.ndarray, lines: np.ndarray) -> None:
    """Every record within MAX_RECORD_BYTES and the header within MAX_COLUMNS, in linear time."""
    if not len(starts):
        return
    lengths = np.diff(np.append(starts, len(raw)))
    longest = int(np.argmax(lengths))
    if lengths[longest] > MAX_RECORD_BYTES:
        raise SourceError(
            f"{path}:{int(lines[longest])}: a record of {int(lengths[longest])} bytes is longer than the limit of "
            f"{MAX_RECORD_BYTES} bytes per row (MAX_RECORD_BYTES)"
        )
    columns = raw.count(b",", int(starts[0]), int(starts[0] + lengths[0])) + 1
    if columns > MAX_COLUMNS:
        raise SourceError(f"{path}:1: the header has {columns} columns, more than the limit of {MAX_COLUMNS}")


def _header(path: Path, raw: bytes, starts: np.ndarray) -> list[str]:
    if not len(starts):
        raise SourceError(f"{path}: file is empty (no header row)")
    text = raw[starts[0] : starts[1] if len(starts) > 1 else len(raw)]
    try:
        with _fields_up_to(len(text)):
            header = next(csv.reader(io.StringIO(text.decode("utf-8"), newline="")), None)
    except UnicodeDecodeError as e:
        raise SourceError(f"{path}:1: the header is not valid UTF-8 (byte {e.start})") from e
    except csv.Error as e:
        raise SourceError(f"{path}:1: cannot read the header: {preview(str(e))}") from e
    if not header or not any(h.strip() for h in header):
        raise SourceError(f"{path}: file is empty (no header row)")
    header = [h.strip() for h in header]
    seen: set[str] = set()
    for name in header:  # linear: a set, not a scan of the names before each one
        if name in seen:
            raise SourceError(f"{path}:1: column {preview(name)!r} appears more than once in the header")
        seen.add(name)
    return header


def _is_utf8(raw: bytes) -> bool:
    if raw.isascii():
        return True
    offsets = pa.py_buffer(np.array([0, len(raw)], np.int64))
    try:
        pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(raw)]).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _not_utf8_reason(record: bytes, header: list[str]) -> str:
    """`<column>: invalid UTF-8` when the record's fields line up with the header, else `invalid UTF-8`."""
    try:
        with _fields_up_to(len(record)):
            [fields] = list(csv.reader(io.StringIO(record.decode("utf-8", "surrogateescape"), newline="")))
    except (csv.Error, ValueError):
        return "invalid UTF-8"
    if len(fields) == len(header):
        for name, field in zip(header, fields):
            try:
                field.encode("utf-8")
            except UnicodeEncodeError:
                return f"{preview(name)}: invalid UTF-8"
    return "invalid UTF-8"


def _drop_invalid_utf8(path, raw, starts, lines, header) -> tuple[bytes, np.ndarray, list[RejectedRow]]:
    """The data records (bytes from the first one) without those that are not UTF-8, and the start lines of the
    records kept; the others become rejected rows naming the column when it can be told."""
    bounds = np.append(starts, len(raw))
    kept, kept_lines, rejected = [], [], []
    for i in range(1, len(starts)):
        record = raw[bounds[i] : bounds[i + 1]]
        try:
            record.decode("utf-8")
        except UnicodeDecodeError:
            text = record.rstrip(b"\r\n")
            reason = _not_utf8_reason(text, header)
            rejected.append(RejectedRow(str(path), int(lines[i]), reason, text.decode("utf-8", "backslashreplace")))
            continue
        kept.append(record)
        kept_lines.append(lines[i])
    return b"".join(kept), np.array(kept_lines, np.int64), rejected


def _parse(body: pa.Buffer, header: list[str]) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    """Every column as a nullable string; rows with the wrong number of fields are set aside with their number
    (1 = the first data record)."""
    invalid: list[tuple[int, str, str]] = []

    def on_invalid_row(row) -> str:
        invalid.append((row.number, f"expected {row.expected_columns} fields, found {row.actual_columns}", row.text))
        return "skip"

    if not body.size:
        return pa.table({h: pa.array([], pa.string()) for h in header}), invalid
    table = pcsv.read_csv(
        pa.BufferReader(body),
        # Single-threaded parsing is what makes pyarrow report the number of an invalid row.
        read_options=pcsv.ReadOptions(use_threads=False, column_names=header, block_size=1 << 24),
        parse_options=pcsv.ParseOptions(invalid_row_handler=on_invalid_row, newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(
            column_types={h: pa.string() for h in header}, strings_can_be_null=True, null_values=[""]
        ),
    )
    return table, invalid


def _read_file(path: Path, expected_columns: dict[str, str]) -> tuple[pa.Table, list[RejectedRow], SourceFile]:
    raw = path.read_bytes()
    sha256 = hashlib.sha256(raw).hexdigest()
    if raw.startswith(BOM):
        raw = raw[len(BOM) :]
    starts, lines = _records(raw)
    _check_bounds(path, raw, starts, lines)
    header = _header(path, raw, starts)
    missing = [c for c in expected_columns if c not in header]
    if missing:
        raise SourceError(f"{path}: header lacks expected columns {missing} (header has {preview_names(header)})")
    if len(starts) == 1:
        raise SourceError(f"{path}: file has a header but no rows")
    rejected: list[RejectedRow] = []
    if _is_utf8(raw):
        body, lines = pa.py_buffer(raw).slice(int(starts[1])), lines[1:]
    else:
        kept, lines, rejected = _drop_invalid_utf8(path, raw, starts, lines, header)
        body = pa.py_buffer(kept)
    strings, invalid = _parse(body, header)
    if strings.num_rows + len(invalid) != len(lines):  # the scan and pyarrow disagree: number records as pyarrow
        lines = np.arange(2, 2 + strings.num_rows + len(invalid))
    numbers = np.array([n for n, _, _ in invalid], np.int64) - 1
    rejected += [RejectedRow(str(path), int(lines[i]), reason, text) for i, (_, reason, text) in zip(numbers, invalid)]
    strings = strings.append_column("__line", pa.array(np.delete(lines, numbers))).append_column(
        "__file", pa.repeat(pa.scalar(str(path)), strings.num_rows)
    )
    return strings, rejected, SourceFile(str(path), sha256, strings.num_rows + len(rejected))


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
        strings, bad, source = _read_file(path, expected_columns)
        tables.append(strings)
        rejected.extend(bad)
        sources.append(source)
    table = pa.concat_tables(tables, promote_options="default")
    day = type_rows(table, expected_columns, max_rejected_fraction, partition_feature, rejected, sources, str(paths[0]))
    order = {str(p): i for i, p in enumerate(paths)}
    day.rejected.sort(key=lambda r: (order[r.source_file], r.line))  # in file order, whatever rejected them
    return day
