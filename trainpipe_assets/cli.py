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

    serving = current_baseline(instance, trainpipe.serving_dir)
    print("\nserving now: " + (f"{trainpipe.settings.model_name} version {serving.version} at {serving.serving_path}" if serving else "nothing (no model was blessed)"))
    if serving:
        _score_day(defs, days[-1], instance)
        request = _write_predict_request(trainpipe, days[-1])
        name = trainpipe.settings.model_name
        served = _ask_a_server(name, trainpipe.serving_dir, request)
        print(
            f"\n{name} served by `trainpipe serve` (a server process started for this check, then stopped):\n"
            f"  POST /v1/models/{name}:predict with 3 raw eval examples -> {served}"
        )
        print(
            "\nServe it with TF Serving's REST API and ask for predictions:\n"
            f"  .venv/bin/trainpipe serve --model-name {name} --model-base-path {trainpipe.serving_dir} --port 8501 &\n"
            f"  curl -s -d @{request} http://127.0.0.1:8501/v1/models/{name}:predict"
        )
    print(
        f"\nRuns are in the event log at DAGSTER_HOME={dagster_home}. Look further with:\n"
        f"  .venv/bin/trainpipe history                      # every model, its evaluation and push\n"
        f"  DAGSTER_HOME={dagster_home} .venv/bin/dagster dev      # UI at http://127.0.0.1:3000\n"
        f"  DAGSTER_HOME={dagster_home} .venv/bin/dagster job execute -m trainpipe_assets.definitions -j training_job "
        f"--tags '{{\"dagster/partition\": \"{days[-1]}\"}}'"
    )
    return 0 if ingested and serving is not None else 1


def _score_day(defs, day: str, instance) -> None:
    print(f"\nbatch_inference_job for {day} (batch_predictions on Beam, serving_model_performance):")
    result, failures = _run_partition(defs, "batch_inference_job", day, instance)
    mats = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    if "batch_predictions" in mats:
        md = mats["batch_predictions"]
        print(f"  batch_predictions: {md['rows'].value} rows scored by version {md['model_version'].value} ({md['rows_per_second'].value} rows/s)")
    if "serving_model_performance" in mats:
        md = mats["serving_model_performance"]
        accuracy = md["metric_accuracy"].value if "metric_accuracy" in md else None
        print(f"  serving_model_performance: version {md['model_version'].value} accuracy={accuracy and round(accuracy, 4)} degraded={md['degraded'].value}")
    for failure in failures:
        print(f"    {failure}")


def _ask_a_server(name: str, base: Path, request: Path) -> str:
    """Start `trainpipe serve` on the pushed versions, send the request the printed curl sends, and stop it."""
    import json
    import subprocess
    import time

    from .serving.client import free_port, http_json

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "trainpipe_assets.cli", "serve", "--model-name", name, "--model-base-path", str(base), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and server.poll() is None:
            if http_json(f"http://127.0.0.1:{port}/healthz", timeout=5)[0] == 200:
                code, body = http_json(f"http://127.0.0.1:{port}/v1/models/{name}:predict", json.loads(request.read_text()))
                return f"HTTP {code} {json.dumps(body)}"
            time.sleep(0.25)
        return "the server did not become healthy: " + (server.stderr.read().decode()[-500:] if server.poll() is not None else "timed out")
    finally:
        server.terminate()
        server.wait(timeout=30)


def _write_predict_request(trainpipe, day: str) -> Path:
    """A TF Serving :predict body with three raw eval examples of `day`, serialized and base64-encoded."""
    import base64
    import json

    from .feature_stats import read_records

    records = read_records([str(trainpipe.artifacts_dir / "examples" / day / "Split-eval" / "*.gz")])[:3]
    path = Path(trainpipe.home) / "predict_request.json"
    path.write_text(json.dumps({"instances": [{"b64": base64.b64encode(r).decode()} for r in records]}))
    return path


def _train(defs, window_end: str, instance):
    print(f"\ntraining_job for the window ending {window_end} (schema -> transform -> tune -> train -> evaluate -> infra-validate -> push):")
    result, failures = _run_partition(defs, "training_job", window_end, instance)
    shown = {
        "schema": ("features", "source"),
        "transform_graph": ("analyzed_rows", "transformed_rows_eval"),
        "best_hyperparameters": ("mode", "num_trials", "best_hyperparameters"),
        "trained_model": ("parameters", "metric_validation_binary_accuracy"),
        "model_evaluation": ("blessed", "baseline_version", "candidate_accuracy", "candidate_auc"),
        "infra_validation": ("infra_blessed", "load_seconds", "latency_p50_ms"),
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

    from .config import TrainpipeConfig
    from .history import current_baseline, history_table, model_history, serving_at, serving_timeline

    serving_dir = TrainpipeConfig.from_env().serving_dir
    with DagsterInstance.get() as instance:
        if args.serving or args.at:
            timeline = serving_timeline(instance)
            if args.at:
                event = serving_at(timeline, args.at)
                print(json.dumps(event) if args.json else (f"at {args.at.isoformat()}: version {event['serving_version']} ({event['event']} at {event['time']})" if event else f"at {args.at.isoformat()}: nothing was serving"))
                return 0
            if args.json:
                print(json.dumps(timeline, indent=2))
            else:
                print(f"{'since (UTC)':<26} {'version':>7}  {'event':<34} reason")
                for e in timeline:
                    print(f"{e['time']:<26} {e['serving_version']:>7}  {e['event']:<34} {e['reason']}")
            return 0
        rows = model_history(instance, args.limit)
        baseline = current_baseline(instance, serving_dir)
    if args.json:
        print(json.dumps({"serving": baseline and baseline.__dict__, "models": rows}, indent=2, default=str))
    else:
        print(history_table(rows, baseline))
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    _use_instance_home()
    from dagster import DagsterInstance

    from .config import TrainpipeConfig
    from .rollback import clear, rollback

    trainpipe = TrainpipeConfig.from_env()
    with DagsterInstance.get() as instance:
        if args.clear:
            version = clear(instance, trainpipe, args.reason)
            print(f"pin removed: {trainpipe.settings.model_name} version {version} serves")
        else:
            version = rollback(instance, trainpipe, args.to, args.reason)
            print(f"{trainpipe.settings.model_name} version {version} serves (pinned in {trainpipe.serving_dir})")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    _use_instance_home()
    from dagster import DagsterInstance

    from .history import model_history

    with DagsterInstance.get() as instance:
        rows = {r["pushed_version"]: r for r in model_history(instance, 1000) if r["pushed_version"] is not None}
    missing = [v for v in (args.v1, args.v2) if v not in rows]
    if missing:
        raise ValueError(f"no pushed version {missing} in the event log (pushed: {sorted(rows)})")
    a, b = rows[args.v1], rows[args.v2]
    fields = [("partition", "partition"), ("run_id", "run_id"), ("trained at", "time"), ("code_version", "code_version")]
    print(f"{'':<28} {'version ' + str(args.v1):<40} {'version ' + str(args.v2):<40}")
    for label, key in fields:
        print(f"{label:<28} {str(a[key]):<40} {str(b[key]):<40}")
    for group in ("eval_metrics", "hyperparameters"):
        for key in sorted(set(a[group]) | set(b[group])):
            print(f"{group[:4] + ' ' + key:<28} {str(a[group].get(key, '')):<40} {str(b[group].get(key, '')):<40}")
    print(f"{'example partitions':<28} {','.join(a['example_partitions']):<40} {','.join(b['example_partitions']):<40}")
    print(f"{'data versions differ':<28} {a.get('lineage', {}).get('examples') != b.get('lineage', {}).get('examples')}")
    print(f"{'blessing':<28} {'; '.join(a['blessing_reasons']):<40} {'; '.join(b['blessing_reasons']):<40}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .serving.server import BatchingOptions, serve

    if not Path(args.model_base_path).is_dir():
        raise ValueError(f"--model-base-path {args.model_base_path} is not a folder")
    if args.max_batch_size < 1 or args.batch_timeout_micros < 0 or (args.num_batch_threads is not None and args.num_batch_threads < 1):
        raise ValueError("--max-batch-size and --num-batch-threads must be at least 1, --batch-timeout-micros at least 0")
    batching = None
    if args.enable_batching:
        batching = BatchingOptions(args.max_batch_size, args.batch_timeout_micros,
                                   args.num_batch_threads or BatchingOptions.num_batch_threads)
    print(f"serving {args.model_name} from {args.model_base_path} on http://{args.host}:{args.port}/v1/models/{args.model_name}"
          + (f" (batching: {batching})" if batching else ""), flush=True)
    serve(args.model_name, Path(args.model_base_path), args.host, args.port, args.poll_seconds,
          Path(args.labels_file) if args.labels_file else None, args.max_body_bytes, batching)
    return 0


def _datetime(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}")
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


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
    history.add_argument("--serving", action="store_true", help="which version served since when (pushes, rollbacks)")
    history.add_argument("--at", type=_datetime, help="the version serving at this time (ISO 8601, UTC if no zone)")
    history.set_defaults(func=cmd_history)

    rollback = sub.add_parser("rollback", help="serve an earlier pushed version (a pin the server and evaluator follow)")
    rollback.add_argument("--to", type=int, help="version to serve (default: the one before the version serving now)")
    rollback.add_argument("--clear", action="store_true", help="remove the pin: the newest version serves again")
    rollback.add_argument("--reason", default="", help="recorded in the event log")
    rollback.set_defaults(func=cmd_rollback)

    serve = sub.add_parser("serve", help="serve <base>/<version>/ SavedModels with TF Serving's REST API")
    serve.add_argument("--model-name", required=True)
    serve.add_argument("--model-base-path", required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8501)
    serve.add_argument("--poll-seconds", type=float, default=2.0, help="how often new versions and the pin are picked up")
    serve.add_argument("--labels-file", help='JSON {"stable": 1, "canary": 2}')
    serve.add_argument("--max-body-bytes", type=int, default=10 << 20)
    serve.add_argument("--enable-batching", action="store_true", help="merge concurrent :predict requests into one model call")
    serve.add_argument("--max-batch-size", type=int, default=32, help="rows per merged call (with --enable-batching)")
    serve.add_argument("--batch-timeout-micros", type=int, default=1000, help="how long a batch waits for more requests")
    serve.add_argument("--num-batch-threads", type=int, help="merged calls run in parallel (default: number of CPUs)")
    serve.set_defaults(func=cmd_serve)

    diff = sub.add_parser("diff", help="two pushed versions side by side")
    diff.add_argument("v1", type=int)
    diff.add_argument("v2", type=int)
    diff.set_defaults(func=cmd_diff)
    return parser


def main(argv: list[str] | None = None) -> int:
    import logging
    import warnings

    # Library chatter a user cannot act on: Keras on tf.data shuffling, TensorFlow deprecations inside tfx_bsl.
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as e:  # bad arguments or settings: say which, without a traceback
        print(f"trainpipe {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
