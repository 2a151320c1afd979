"""`trainpipe`: simulate sample data, and run the pipeline on it end to end (`demo`)."""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from .config import default_home


def _use_instance_home() -> Path:
    """DAGSTER_HOME defaults to $TRAINPIPE_HOME/dagster, so the UI started later sees the runs made here."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(default_home()) / "dagster")))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return home


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}")


def cmd_simulate(args: argparse.Namespace) -> int:
    from .config import TrainpipeConfig
    from .sample_data import write_days

    landing = TrainpipeConfig.from_env().landing_dir
    paths = write_days(landing, args.days, args.rows_per_day, args.end, args.seed, args.drift_from, args.name)
    print(f"wrote {len(paths)} files ({args.rows_per_day} rows each) to {landing}: {paths[0].name} .. {paths[-1].name}")
    return 0


def _run_partition(defs, job_name: str, day: str, instance):
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    result = defs.resolve_job_def(job_name).execute_in_process(
        partition_key=day, instance=instance, raise_on_error=False, run_config=quiet
    )
    failures = [e.message for e in result.all_events if e.is_step_failure]
    return result, failures


def cmd_demo(args: argparse.Namespace) -> int:
    dagster_home = _use_instance_home()
    from dagster import DagsterInstance

    from .config import TrainpipeConfig
    from .definitions import defs
    from .sample_data import write_days

    trainpipe = TrainpipeConfig.from_env()
    end = args.end or dt.date.today() - dt.timedelta(days=1)
    paths = write_days(trainpipe.landing_dir, args.days, args.rows_per_day, end, args.seed)
    print(f"simulated {len(paths)} days x {args.rows_per_day} rows into {trainpipe.landing_dir}")
    instance = DagsterInstance.get()
    days = [(end - dt.timedelta(days=i)).isoformat() for i in range(args.days - 1, -1, -1)]
    print("\ningest_job (examples -> statistics -> examples_valid) per day:")
    for day in days:
        result, failures = _run_partition(defs, "ingest_job", day, instance)
        mats = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
        checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
        rows = mats.get("examples", {})
        split_rows = " ".join(f"{k[5:]}={v.value}" for k, v in rows.items() if k.startswith("rows_"))
        print(f"  {day}: {'ok' if result.success else 'FAILED'} {split_rows} rejected={rows['rejected_rows'].value if 'rejected_rows' in rows else '-'} examples_valid={checks.get('examples_valid')}")
        for failure in failures:
            print(f"    {failure}")
    print(f"\ntraining_job (schema -> transform_graph) for the window ending {days[-1]}:")
    result, failures = _run_partition(defs, "training_job", days[-1], instance)
    for event in result.get_asset_materialization_events():
        md = event.materialization.metadata
        print(f"  {event.asset_key.to_user_string()}: {md['path'].value}")
        for key in ("features", "source", "analyzed_rows", "transformed_rows_train", "transformed_rows_eval", "transformed_features"):
            if key in md:
                print(f"    {key}: {md[key].value}")
    for failure in failures:
        print(f"  FAILED: {failure}")
    print(
        f"\nRuns are in the event log at DAGSTER_HOME={dagster_home}. Look further with:\n"
        f"  DAGSTER_HOME={dagster_home} .venv/bin/dagster dev      # UI at http://127.0.0.1:3000\n"
        f"  DAGSTER_HOME={dagster_home} .venv/bin/dagster job execute -m trainpipe_assets.definitions -j ingest_job "
        f"--tags '{{\"dagster/partition\": \"{days[-1]}\"}}'"
    )
    return 0 if result.success else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trainpipe", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    simulate = sub.add_parser("simulate", help="write sample CSV files, one per day, into $TRAINPIPE_HOME/landing")
    simulate.add_argument("--days", type=int, required=True)
    simulate.add_argument("--rows-per-day", type=int, required=True)
    simulate.add_argument("--end", type=_date, help="last day (default: yesterday)")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--drift-from", type=_date, help="inject drift from this day on")
    simulate.add_argument("--name", default="trips", help="file name prefix: <name>_YYYY-MM-DD.csv")
    simulate.set_defaults(func=cmd_simulate)

    demo = sub.add_parser("demo", help="simulate sample days, ingest each, build schema and transform for the last window")
    demo.add_argument("--days", type=int, default=8)
    demo.add_argument("--rows-per-day", type=int, default=500)
    demo.add_argument("--end", type=_date, help="last day (default: yesterday)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as e:  # bad arguments or settings: say which, without a traceback
        print(f"trainpipe {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
