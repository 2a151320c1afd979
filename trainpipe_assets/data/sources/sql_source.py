"""One day of rows from a SQL table or query through SQLAlchemy, and the new rows since a (timestamp, key) cursor."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Optional

import pyarrow as pa
import sqlalchemy as sa

from trainpipe_assets.core.metadata import preview
from trainpipe_assets.data.sources.rows import DayTable, SourceError, SourceFile, type_rows


@dataclass(frozen=True)
class SqlSource:
    url: str
    timestamp_column: str
    primary_key: str
    table: Optional[str] = None
    query: Optional[str] = None

    @classmethod
    def from_settings(cls, source) -> "SqlSource":
        """The SQL source a SourceSettings (kind: sql) describes."""
        return cls(
            url=source.url,
            timestamp_column=source.timestamp_column,
            primary_key=source.primary_key,
            table=source.table,
            query=source.query,
        )

    @property
    def masked_url(self) -> str:
        return sa.make_url(self.url).render_as_string(hide_password=True)

    @property
    def name(self) -> str:
        return self.table or "query"

    def _selectable(self) -> str:
        return self.table if self.table else f"({self.query}) AS source_rows"

    def _run(self, sql: str, **params) -> list:
        engine = None
        try:
            engine = sa.create_engine(self.url)
            with engine.connect() as connection:
                return list(connection.execute(sa.text(sql), params).mappings())
        except sa.exc.SQLAlchemyError as e:
            cause = preview((str(getattr(e, "orig", None) or e).splitlines() or [""])[0])  # may quote data
            raise SourceError(f"SQL source {self.masked_url} ({self.name}): {type(e).__name__}: {cause}") from e
        finally:
            if engine is not None:
                engine.dispose()

    def read_day(self, day: dt.date) -> tuple[list[dict], int]:
        """The rows whose timestamp falls on `day` (UTC), ordered by key; and how many rows have no timestamp."""
        start = dt.datetime.combine(day, dt.time())
        ts, pk = self.timestamp_column, self.primary_key
        rows = self._run(
            f"SELECT * FROM {self._selectable()} WHERE {ts} >= :start AND {ts} < :end ORDER BY {pk}",
            start=start,
            end=start + dt.timedelta(days=1),
        )
        nulls = self._run(f"SELECT COUNT(*) AS n FROM {self._selectable()} WHERE {ts} IS NULL")[0]["n"]
        return [dict(r) for r in rows], int(nulls)

    def earliest_day(self) -> Optional[dt.date]:
        """The UTC day of the earliest timestamp, or None for an empty source."""
        [row] = self._run(f"SELECT MIN({self.timestamp_column}) AS first FROM {self._selectable()}")
        first = row["first"]
        if first is None:
            return None
        return first.date() if isinstance(first, dt.datetime) else dt.datetime.fromisoformat(str(first)).date()

    def new_rows(self, after_key) -> list[dict]:
        """(timestamp, key) of rows with a key above `after_key`: new inserts, late ones for old days included."""
        ts, pk = self.timestamp_column, self.primary_key
        where = f"WHERE {pk} > :after" if after_key is not None else ""
        sql = f"SELECT {ts} AS ts, {pk} AS pk FROM {self._selectable()} {where} ORDER BY {pk}"
        return [dict(r) for r in self._run(sql, after=after_key)]


def _text(value) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)


def read_sql_day(
    source: SqlSource,
    day: dt.date,
    expected_columns: dict[str, str],
    max_rejected_fraction: float,
    partition_feature: Optional[str] = None,
) -> tuple[DayTable, int]:
    """A day's rows as a DayTable, the same as a CSV day (the timestamp column is dropped: it only places rows in
    days); also returns the count of rows that have no timestamp and so belong to no day. A FLOAT from the database
    that is NaN or infinite (float('nan'), 'Infinity'...) rejects its row as in a CSV file."""
    rows, null_timestamps = source.read_day(day)
    if not rows:
        raise SourceError(f"no rows for {day} in {source.masked_url} ({source.name}, {source.timestamp_column})")
    columns = [c for c in rows[0] if c != source.timestamp_column]
    strings = {c: pa.array([_text(r[c]) for r in rows], pa.string()) for c in columns}
    strings["__line"] = pa.array([_text(r[source.primary_key]) for r in rows], pa.string())
    strings["__file"] = pa.array([f"{source.masked_url} {source.name}"] * len(rows), pa.string())
    digest = hashlib.sha256(repr([[_text(r[c]) for c in columns] for r in rows]).encode()).hexdigest()
    origin = f"{source.masked_url} ({source.name})"
    sources = [SourceFile(f"{origin} {day}", digest, len(rows))]
    table = type_rows(
        pa.table(strings), expected_columns, max_rejected_fraction, partition_feature, [], sources, origin
    )
    return table, null_timestamps
