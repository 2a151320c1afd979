"""A real PostgreSQL server for the SQL-source tests, started from Debian's binaries in a temporary folder."""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from trainpipe_assets.serving.client import free_port

PG_BIN = Path("/usr/lib/postgresql")


def _pg_bin() -> Path | None:
    versions = sorted(PG_BIN.glob("*/bin/initdb")) if PG_BIN.is_dir() else []
    if versions:
        return versions[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    bin_dir = _pg_bin()
    if bin_dir is None:
        print("PostgreSQL tests skipped: no initdb found (apt-get install postgresql)")
        pytest.skip("no PostgreSQL server binaries (initdb) on this machine")
    run_as = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            print("PostgreSQL tests skipped: running as root and there is no postgres user")
            pytest.skip("running as root without a postgres user")
        run_as = ["runuser", "-u", "postgres", "--"]
    # Not under pytest's tmp folder: that one is private to root, and the server runs as postgres.
    base = Path(tempfile.mkdtemp(prefix="trainpipe-pg-"))
    data, sockets = base / "data", base / "sock"
    sockets.mkdir()
    if run_as:
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    subprocess.run(
        run_as + [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    server = subprocess.Popen(
        run_as
        + [
            str(bin_dir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(sockets),
            "-c",
            "listen_addresses=127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        time.sleep(0.5)
        yield f"postgresql+pg8000://postgres:secret@127.0.0.1:{port}/postgres"
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(base, ignore_errors=True)
