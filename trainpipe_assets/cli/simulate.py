"""`trainpipe simulate`: sample CSV files, one per day, into the landing folder."""

import argparse

from trainpipe_assets.cli.common import parse_date


def run(args: argparse.Namespace) -> int:
    from trainpipe_assets.core.settings import TrainpipeConfig
    from trainpipe_assets.data.sample_data import write_days

    landing = TrainpipeConfig.from_env().landing_dir
    paths = write_days(landing, args.days, args.rows_per_day, args.end, args.seed, args.drift_from, args.name)
    print(f"wrote {len(paths)} files ({args.rows_per_day} rows each) to {landing}: {paths[0].name} .. {paths[-1].name}")
    return 0


def register(sub) -> None:
    simulate = sub.add_parser("simulate", help="write sample CSV files, one per day, into $TRAINPIPE_HOME/landing")
    simulate.add_argument("--days", type=int, required=True)
    simulate.add_argument("--rows-per-day", type=int, required=True)
    simulate.add_argument("--end", type=parse_date, help="last day (default: yesterday)")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--drift-from", type=parse_date, help="inject drift from this day on")
    simulate.add_argument("--name", default="trips", help="file name prefix: <name>_YYYY-MM-DD.csv")
    simulate.set_defaults(func=run)
