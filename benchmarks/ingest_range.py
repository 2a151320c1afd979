"""14 days ingested as `trainpipe ingest --from --to` (one process, one ingest_job run per day) against 14 separate
`dagster job execute -j ingest_job` commands (what a shell loop or a CI job per day does), on the same sample data.

    .venv/bin/python benchmarks/ingest_range.py [--days 14] [--rows-per-day 500]

Prints both wall times and their ratio (aim: the range at least 3x faster). Each side gets a fresh TRAINPIPE_HOME and
DAGSTER_HOME; both read the same files.
"""

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
END = dt.date(2024, 3, 14)


def home_with_data(root: Path, days: int, rows: int) -> dict:
    env = {**os.environ, "TRAINPIPE_HOME": str(root / "tp"), "DAGSTER_HOME": str(root / "dagster")}
    (root / "dagster").mkdir(parents=True)
    (root / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    command = [str(BIN / "trainpipe"), "simulate", "--days", str(days), "--rows-per-day", str(rows), "--end", str(END)]
    subprocess.run(command, env=env, check=True, capture_output=True)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--rows-per-day", type=int, default=500)
    args = parser.parse_args()
    first = END - dt.timedelta(days=args.days - 1)
    days = [(first + dt.timedelta(days=i)).isoformat() for i in range(args.days)]
    root = Path(tempfile.mkdtemp(prefix="ingest-range-"))
    try:
        env = home_with_data(root / "range", args.days, args.rows_per_day)
        started = time.perf_counter()
        done = subprocess.run(
            [str(BIN / "trainpipe"), "ingest", "--from", days[0], "--to", days[-1]],
            env=env,
            capture_output=True,
            text=True,
        )
        one_process = time.perf_counter() - started
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

        env = home_with_data(root / "separate", args.days, args.rows_per_day)
        started = time.perf_counter()
        for day in days:
            tags = json.dumps({"dagster/partition": day})
            command = [
                str(BIN / "dagster"),
                "job",
                "execute",
                "-m",
                "trainpipe_assets.definitions",
                "-j",
                "ingest_job",
                "--tags",
                tags,
            ]
            subprocess.run(command, env=env, check=True, capture_output=True)
        separate = time.perf_counter() - started
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{args.days} days x {args.rows_per_day} rows; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"  trainpipe ingest --from --to (one process):   {one_process:7.1f} s")
    print(f"  {args.days} x dagster job execute -j ingest_job:   {separate:7.1f} s")
    ratio = separate / one_process
    print(f"  speed-up {ratio:.1f}x (aim >= 3x): {'met' if ratio >= 3 else 'NOT met'}")


if __name__ == "__main__":
    main()
