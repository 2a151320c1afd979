"""A real PostgreSQL server that a test can stop and start again (an outage), from Debian's binaries in a temporary
folder, run by the postgres user when the tests run as root (initdb refuses root)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from trainpipe_assets.serving.client import free_port
from trainpipe_assets_tests.data.sources.conftest import _pg_bin


class PostgresServer:
    def __init__(self) -> None:
        bin_dir = _pg_bin()
        if bin_dir is None:
            pytest.skip("no PostgreSQL server binaries (initdb) on this machine")
        self.bin, self.run_as = bin_dir, []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root without a postgres user")
            self.run_as = ["runuser", "-u", "postgres", "--"]
        self.base = Path(tempfile.mkdtemp(prefix="trainpipe-pg-outage-"))
        self.data, self.sockets = self.base / "data", self.base / "sock"
        self.sockets.mkdir()
        if self.run_as:
            shutil.chown(self.base, "postgres")
            shutil.chown(self.sockets, "postgres")
        self.port = free_port()
        self._pg("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.start()
        self._pg("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "dagster")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres:secret@127.0.0.1:{self.port}/dagster"

    def _pg(self, tool: str, *args: str) -> None:
        subprocess.run(self.run_as + [str(self.bin / tool), *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1"
        log = str(self.base / "server.log")
        self._pg("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.base, ignore_errors=True)


def outage_tolerant_dagster_yaml(url: str, wait_seconds: float = 300) -> str:
    """$DAGSTER_HOME/dagster.yaml with trainpipe's outage-tolerant PostgreSQL storage."""
    return (
        "storage:\n  custom:\n    module: trainpipe_assets.core.outage\n    class: OutageTolerantPostgresStorage\n"
        f"    config:\n      postgres_url: {url}\n      outage_wait_seconds: {wait_seconds}\n"
        "telemetry:\n  enabled: false\n"
    )
