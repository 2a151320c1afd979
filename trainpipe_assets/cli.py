"""`trainpipe`: simulate sample data, run the pipeline on it end to end (`demo`), and read the model history."""
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
    ingested = True
    for day in days:
        result, failures = _run_partition(defs, "ingest_job", day, instance)
        mats = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
        checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
        rows = mats.get("examples", {})
        split_rows = " ".join(f"{s}={rows[f'rows_{s}'].value}" for s in trainpipe.settings.splits if f"rows_{s}" in rows)
        print(f"  {day}: {'ok' if result.success else 'FAILED'} {split_rows} rejected={rows['rejected_rows'].value if 'rejected_rows' in rows else '-'} examples_valid={checks.get('examples_valid')}")
        ingested &= result.success
        for failure in failures:
            print(f"    {failure}")
    # Two windows: the second model is evaluated against the first one, which is serving by then.
    for window_end in days[-2:] if len(days) > 1 else days:
        _train(defs, window_end, instance)
    from .history import current_baseline

    serving = current_baseline(instance)
    print("\nserving now: " + (f"{trainpipe.settings.model_name} version {serving.version} at {serving.serving_path}" if serving else "nothing (no model was blessed)"))
    print(
        f"\nRuns are in the event log at DAGSTER_HOME={dagster_home}. Look further with:\n"
        f"  .venv/bin/trainpipe history                      # every model, its evaluation and push\n"
        f"  DAGSTER_HOME={dagster_home} .venv/bin/dagster dev      # UI at http://127.0.0.1:3000\n"
        f"  DAGSTER_HOME={dagster_home} .venv/bin/dagster job execute -m trainpipe_assets.definitions -j training_job "
        f"--tags '{{\"dagster/partition\": \"{days[-1]}\"}}'"
    )
    return 0 if ingested and serving is not None else 1


def _train(defs, window_end: str, instance):
    print(f"\ntraining_job for the window ending {window_end} (schema -> transform -> tune -> train -> evaluate -> push):")
    result, failures = _run_partition(defs, "training_job", window_end, instance)
    shown = {
        "schema": ("features", "source"),
        "transform_graph": ("analyzed_rows", "transformed_rows_eval"),
        "best_hyperparameters": ("mode", "num_trials", "best_hyperparameters"),
        "trained_model": ("parameters", "metric_validation_binary_accuracy"),
        "model_evaluation": ("blessed", "baseline_version", "candidate_accuracy", "candidate_auc"),
        "pushed_model": ("version", "serving_path"),
    }
    for event in result.get_asset_materialization_events():
        md = event.materialization.metadata
        name = event.asset_key.to_user_string()
        facts = ", ".join(f"{k}={md[k].value}" for k in shown.get(name, ()) if k in md)
        print(f"  {name}: {facts}")
    for check in result.get_asset_check_evaluations():
        print(f"  check {check.check_name}: {'passed' if check.passed else 'FAILED'} ({check.description})")
    for failure in failures:
        print(f"  FAILED: {failure}")
    return result


def cmd_history(args: argparse.Namespace) -> int:
    import json

    _use_instance_home()
    from dagster import DagsterInstance

    from .history import current_baseline, history_table, model_history

    with DagsterInstance.get() as instance:
        rows = model_history(instance, args.limit)
        baseline = current_baseline(instance)
    if args.json:
        print(json.dumps({"serving": baseline and baseline.__dict__, "models": rows}, indent=2, default=str))
    else:
        print(history_table(rows, baseline))
    return 0


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

    demo = sub.add_parser("demo", help="simulate sample days, ingest each, train, evaluate and push the last window")
    demo.add_argument("--days", type=int, default=8)
    demo.add_argument("--rows-per-day", type=int, default=500)
    demo.add_argument("--end", type=_date, help="last day (default: yesterday)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=cmd_demo)

    history = sub.add_parser("history", help="every trained model with its metrics, blessing and pushed version")
    history.add_argument("--json", action="store_true", help="print JSON instead of a table")
    history.add_argument("--limit", type=int, default=50)
    history.set_defaults(func=cmd_history)
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
