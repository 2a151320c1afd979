"""Dagster's PostgreSQL storage, ending a run truthfully through a database outage.

dagster-postgres retries a connection about 11 s (`retry_pg_connection_fn`), then raises; the process running the run
then died with a traceback, and the run stayed STARTED. `OutageTolerantPostgresStorage` (dagster.yaml:
`storage: custom: {module: trainpipe_assets.core.outage, class: OutageTolerantPostgresStorage, config: {postgres_url:
..., outage_wait_seconds: 300}}`) is dagster-postgres' storage with one rule in every process that loads it (the
`dagster job execute` process, a run worker the daemon or `trainpipe` launches, a Celery step worker):

- the first connection that fails past the same retries starts an outage in this process: one line naming the
  database and the outage goes to stderr, and that call raises `DatabaseOutage` with the same line (the step, or the
  run, fails with it);
- every later connection of this process waits for the database (polling each second, at most
  `outage_wait_seconds` from the outage's start) instead of failing: the step's failure, the run's failure (its
  message names the outage) and whatever the engine reads to get there are written once the database answers;
- past the wait the process gives up (the run stays STARTED; `trainpipe`'s dead-run check or the daemon's run
  monitoring fails it once its process is gone)."""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from typing import Iterator, Optional

import sqlalchemy
from dagster import Field
from dagster._core.definitions.policy import Backoff, Jitter, calculate_delay
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.config import pg_config
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from dagster_postgres.utils import DagsterPostgresException, get_token_provider_from_config, pg_url_from_config

LOG = logging.getLogger("trainpipe.storage")
DEFAULT_WAIT_SECONDS = 300.0
RETRIES, RETRY_WAIT = 5, 0.2  # dagster-postgres' own budget (retry_pg_connection_fn): about 11 s
DB_ERRORS = (sqlalchemy.exc.DatabaseError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.TimeoutError)


class DatabaseOutage(Exception):
    """Dagster's database did not answer past the storage's retries (one line, no driver traceback)."""


def describe_url(url: str) -> str:
    """The database a URL names, without its password: postgresql://127.0.0.1:5432/dagster."""
    parsed = sqlalchemy.engine.make_url(url)
    return f"postgresql://{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


class _Outage:
    """This process's view of the database: answering, or down since `since` (one outage at a time)."""

    def __init__(self) -> None:
        self.since: Optional[float] = None
        self.line = ""
        self.runs: dict[str, str] = {}  # run id -> the outage its run fails with (its progress events raise)
        self.ended: Optional[float] = None

    def begin(self, where: str, error: BaseException, wait: float, tried: float) -> str:
        self.since = time.monotonic() - tried
        self.line = (
            f"Dagster's database {where} did not answer for {tried:.0f} s ({_first_line(error)}): "
            f"the run fails; its failure is written when the database answers again (waiting up to {wait:.0f} s)"
        )
        print(f"trainpipe: {self.line}", file=sys.stderr, flush=True)
        return self.line

    def end(self, where: str) -> None:
        LOG.info("Dagster's database %s answered again after %.0f s", where, time.monotonic() - self.since)
        self.since, self.ended = None, time.monotonic()

    def reason_for(self, run_id: str) -> Optional[str]:
        """The outage a failing run names: its own, or one this process saw end in the last two minutes."""
        if run_id in self.runs:
            return self.runs[run_id]
        recent = self.since is not None or (self.ended is not None and time.monotonic() - self.ended < 120)
        return self.line if self.line and recent else None


OUTAGE = _Outage()


def _connect_with_retries(engine) -> sqlalchemy.Connection:
    """retry_pg_connection_fn's loop (same errors, attempts and backoff) without its warnings on stderr."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return engine.connect()
        except DB_ERRORS as exc:
            LOG.info("retrying Dagster's database connection: %s", _first_line(exc))
            if attempt > RETRIES:
                raise
        time.sleep(
            calculate_delay(
                attempt_num=attempt, base_delay=RETRY_WAIT, jitter=Jitter.PLUS_MINUS, backoff=Backoff.EXPONENTIAL
            )
        )


def _wait_for(engine, where: str, wait: float) -> sqlalchemy.Connection:
    while True:
        try:
            conn = engine.connect()
        except DB_ERRORS as exc:
            if time.monotonic() - OUTAGE.since > wait:
                raise DatabaseOutage(
                    f"Dagster's database {where} did not answer within {wait:.0f} s ({_first_line(exc)}): "
                    "giving up; the run stays STARTED until its process is found gone"
                ) from None
            time.sleep(1.0)
            continue
        OUTAGE.end(where)
        return conn


@contextmanager
def outage_connection(engine, where: str, wait: float) -> Iterator[sqlalchemy.Connection]:
    """dagster-postgres' create_pg_connection, with the outage rule of this module."""
    if OUTAGE.since is not None:
        conn = _wait_for(engine, where, wait)
    else:
        started = time.monotonic()
        try:
            conn = _connect_with_retries(engine)
        except DB_ERRORS as exc:
            raise DatabaseOutage(OUTAGE.begin(where, exc, wait, time.monotonic() - started)) from None
    try:
        yield conn
    finally:
        conn.close()


def _is_disconnect(error: BaseException) -> bool:
    return isinstance(error, (DagsterPostgresException, *DB_ERRORS)) and not isinstance(
        error, sqlalchemy.exc.IntegrityError
    )


# A run whose write was lost fails at the next of these instead of going on as if its log were whole.
PROGRESS = {
    "STEP_START",
    "STEP_INPUT",
    "LOADED_INPUT",
    "STEP_OUTPUT",
    "HANDLED_OUTPUT",
    "ASSET_MATERIALIZATION",
    "ASSET_OBSERVATION",
    "ASSET_CHECK_EVALUATION",
    "STEP_SUCCESS",
}


class OutageTolerantEventLogStorage(PostgresEventLogStorage):
    outage_wait_seconds = DEFAULT_WAIT_SECONDS

    def _connect(self):
        return outage_connection(self._engine, describe_url(self.postgres_url), self.outage_wait_seconds)

    def store_event(self, event) -> None:
        dagster_event = event.dagster_event
        if dagster_event is not None and dagster_event.is_run_failure and OUTAGE.reason_for(event.run_id):
            message = f"{dagster_event.message} {OUTAGE.reason_for(event.run_id)}"
            event = event._replace(user_message=message, dagster_event=dagster_event._replace(message=message))
        if dagster_event is not None and event.run_id in OUTAGE.runs and dagster_event.event_type_value in PROGRESS:
            # a write of this run was lost (a log line's loss the engine swallows): its steps fail, none goes on
            raise DatabaseOutage(OUTAGE.runs[event.run_id])
        try:
            try:
                super().store_event(event)
            except Exception as exc:  # the connection broke mid-write: once more, under the outage rule
                if isinstance(exc, DatabaseOutage) or not _is_disconnect(exc):
                    raise
                LOG.info("writing an event failed mid-write (%s); once more", _first_line(exc))
                super().store_event(event)
        except DatabaseOutage as outage:
            OUTAGE.runs.setdefault(event.run_id, str(outage))
            raise


class OutageTolerantRunStorage(PostgresRunStorage):
    outage_wait_seconds = DEFAULT_WAIT_SECONDS

    def connect(self):
        return outage_connection(self._engine, describe_url(self.postgres_url), self.outage_wait_seconds)


class OutageTolerantPostgresStorage(DagsterPostgresStorage):
    """dagster-postgres' storage (runs, event log, schedules in one database) under the outage rule above."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data=None,
        token_provider=None,
        outage_wait_seconds: float = DEFAULT_WAIT_SECONDS,
    ):
        self.postgres_url = postgres_url
        self.should_autocreate_tables = should_autocreate_tables
        self._inst_data = inst_data
        self._run_storage = OutageTolerantRunStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        self._event_log_storage = OutageTolerantEventLogStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        self._run_storage.outage_wait_seconds = self._event_log_storage.outage_wait_seconds = outage_wait_seconds
        self._schedule_storage = PostgresScheduleStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        DagsterStorage.__init__(self)

    @classmethod
    def config_type(cls):
        return {
            **pg_config(),
            "outage_wait_seconds": Field(float, is_required=False, default_value=DEFAULT_WAIT_SECONDS),
        }

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> "OutageTolerantPostgresStorage":
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
            outage_wait_seconds=config_value.get("outage_wait_seconds", DEFAULT_WAIT_SECONDS),
        )
