"""Quiet by default, loud on request: a command prints only its own lines on stdout. Everything the libraries write
to the process's standard error -- TensorFlow's C++ log (oneDNN, CUDA probing), absl and Python warnings, Beam's
logging, Dagster's console log of every event with its stack traces, the output of step subprocesses that inherit it
-- goes to a log file under $TRAINPIPE_HOME/logs/ (its path printed once), unless `--verbose`. The command's own
error lines still reach the terminal (`error()`)."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

_terminal_err = None  # the terminal's stderr while fd 2 goes to the log file


def log_dir(home: str | Path) -> Path:
    return Path(home) / "logs"


def quiet(command: str, home: str | Path) -> Path:
    """Send file descriptor 2 (and `sys.stderr`) to a new log file for this command, before TensorFlow or Dagster
    load; returns the file's path."""
    global _terminal_err
    folder = log_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = folder / f"{command}-{stamp}-{os.getpid()}.log"
    sys.stderr.flush()
    _terminal_err = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stderr = os.fdopen(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    os.environ["TRAINPIPE_QUIET"] = "1"  # child commands (the demo's server) stay quiet too
    return path


def error(text: str) -> None:
    """A line the person must see (bad arguments or settings), on the terminal's stderr even when quiet."""
    print(text, file=_terminal_err or sys.stderr, flush=True)


def dagster_log_level(verbose: bool) -> str:
    """Quiet: every Dagster event goes to the log file (DEBUG); verbose: the terminal gets INFO and up."""
    return "INFO" if verbose else "DEBUG"
