"""What the commands share: the Dagster instance home, and date/time arguments."""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

from trainpipe_assets.core.settings import default_home


def use_instance_home() -> Path:
    """DAGSTER_HOME defaults to $TRAINPIPE_HOME/dagster, so the UI started later sees the runs made here."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(default_home()) / "dagster")))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return home


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}")


def parse_datetime(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}")
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow's, Beam's and Dagster's own output here (by default it goes to $TRAINPIPE_HOME/logs/)",
    )
