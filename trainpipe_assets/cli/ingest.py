"""`trainpipe ingest --from D1 --to D2`: a range of days ingested as ONE ingest_job run (a single-run backfill, as the
UI launches one): examples, statistics and example_anomalies write one partition per day, each with its own verdict;
a bad day fails only its own verdict, and the command names it."""

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

    if args.to < args.start:
        raise ValueError(f"--to {args.to} is before --from {args.start}")
    trainpipe = TrainpipeConfig.from_env()
    days = [(args.start + dt.timedelta(days=i)).isoformat() for i in range((args.to - args.start).days + 1)]
    print(f"ingest_job for {len(days)} days, {days[0]} .. {days[-1]}, one run (examples -> statistics -> anomalies):")
    started = time.perf_counter()
    with DagsterInstance.get() as instance, code_location(instance) as location:
        failed = ingest_days(location, trainpipe, days, instance)
    print(
        f"{len(days) - len(failed)} of {len(days)} days ingested and valid in {time.perf_counter() - started:.1f} s"
        + (f"; failed: {failed}" if failed else "")
    )
    return 1 if failed else 0


def register(sub) -> None:
    ingest = sub.add_parser("ingest", help="ingest a range of days as one ingest_job run")
    ingest.add_argument("--from", dest="start", type=parse_date, required=True, help="first day (YYYY-MM-DD)")
    ingest.add_argument("--to", type=parse_date, required=True, help="last day (YYYY-MM-DD), included")
    add_verbose(ingest)
    ingest.set_defaults(func=run)
