"""`trainpipe ingest --from D1 --to D2`: a range of days ingested from one process. Each day is its own ingest_job run
(its own examples_valid verdict, its own failure), but the start-up (Python, TensorFlow, the definitions, the instance)
is paid once instead of once per `dagster job execute`."""

from __future__ import annotations

import argparse
import datetime as dt
import time

from trainpipe_assets.cli.common import parse_date, use_instance_home


def run(args: argparse.Namespace) -> int:
    use_instance_home()
    from dagster import DagsterInstance

    from trainpipe_assets.cli.runs import code_location, ingest_day
    from trainpipe_assets.core.settings import TrainpipeConfig

    if args.to < args.start:
        raise ValueError(f"--to {args.to} is before --from {args.start}")
    trainpipe = TrainpipeConfig.from_env()
    days = [(args.start + dt.timedelta(days=i)).isoformat() for i in range((args.to - args.start).days + 1)]
    print(f"ingest_job for {len(days)} days, {days[0]} .. {days[-1]} (examples -> statistics -> examples_valid):")
    failed = []
    with DagsterInstance.get() as instance, code_location(instance) as location:
        for day in days:
            started = time.perf_counter()
            if not ingest_day(location, trainpipe, day, instance, seconds=lambda: time.perf_counter() - started):
                failed.append(day)
    print(
        f"{len(days) - len(failed)} of {len(days)} days ingested and valid" + (f"; failed: {failed}" if failed else "")
    )
    return 1 if failed else 0


def register(sub) -> None:
    ingest = sub.add_parser("ingest", help="ingest a range of days (one ingest_job run per day, from one process)")
    ingest.add_argument("--from", dest="start", type=parse_date, required=True, help="first day (YYYY-MM-DD)")
    ingest.add_argument("--to", type=parse_date, required=True, help="last day (YYYY-MM-DD), included")
    ingest.set_defaults(func=run)
