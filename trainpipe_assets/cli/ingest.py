"""`trainpipe ingest --from D1 --to D2`: a range of days ingested as ONE ingest_job run (a single-run backfill, as the
UI launches one): examples, statistics and example_anomalies write one partition per day, each with its own verdict;
a bad day fails only its own verdict, and the command names it. Days without landing data are not ingested; SIGINT or
SIGTERM cancels the run in flight, says which days were judged, and exits 130 or 143."""

from __future__ import annotations

import argparse
import datetime as dt
import time

from trainpipe_assets.cli.common import add_verbose, parse_date, use_instance_home


def run(args: argparse.Namespace) -> int:
    use_instance_home()
    from dagster import DagsterInstance

    from trainpipe_assets.cli.runs import code_location, ingest_days
    from trainpipe_assets.core.settings import TrainpipeConfig

    trainpipe = TrainpipeConfig.from_env()
    days = days_to_ingest(trainpipe, args.start, args.to, args.max_days)
    if not days:
        print(f"no landing data for any day from {args.start} to {args.to} in {trainpipe.landing_dir}: nothing to do")
        return 1
    print(f"ingest_job for {len(days)} days, {days[0]} .. {days[-1]}, one run (examples -> statistics -> anomalies):")
    started = time.perf_counter()
    with DagsterInstance.get() as instance, code_location(instance) as location:
        failed = ingest_days(location, trainpipe, days, instance)
    print(
        f"{len(days) - len(failed)} of {len(days)} days ingested and valid in {time.perf_counter() - started:.1f} s"
        + (f"; failed: {failed}" if failed else "")
    )
    return 1 if failed else 0


def days_to_ingest(trainpipe, start: dt.date, end: dt.date, max_days: int) -> list[str]:
    """The days of the range that have data: for CSV, a file in the landing folder (found without a run); a SQL
    source's days are the whole range. A range longer than `max_days` is refused (--max-days raises it)."""
    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    span = (end - start).days + 1
    if span > max_days:
        raise ValueError(
            f"{span} days from {start} to {end} is more than --max-days {max_days}; raise it to ingest more"
        )
    days = [start + dt.timedelta(days=i) for i in range(span)]
    if trainpipe.settings.source.kind == "sql":
        return [d.isoformat() for d in days]
    from trainpipe_assets.data.sources.csv_source import parse_file_name

    folder = trainpipe.landing_dir
    names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    with_files = {parsed[1] for name in names if (parsed := parse_file_name(name))}
    landed = [d.isoformat() for d in days if d in with_files]
    skipped = span - len(landed)
    if skipped and landed:
        print(f"{skipped} day(s) of the range have no file in {trainpipe.landing_dir}: not ingested")
    return landed


def register(sub) -> None:
    ingest = sub.add_parser("ingest", help="ingest a range of days as one ingest_job run")
    ingest.add_argument("--from", dest="start", type=parse_date, required=True, help="first day (YYYY-MM-DD)")
    ingest.add_argument("--to", type=parse_date, required=True, help="last day (YYYY-MM-DD), included")
    ingest.add_argument("--max-days", type=int, default=366, help="the longest range accepted (default 366 days)")
    add_verbose(ingest)
    ingest.set_defaults(func=run)
