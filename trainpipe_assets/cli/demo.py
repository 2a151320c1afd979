"""`trainpipe demo`: simulate sample days, ingest each, train two windows (the second evaluated against the first,
which is serving by then), score the last day in batch, and ask a real server for predictions."""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

from trainpipe_assets.cli.common import add_verbose, parse_date, use_instance_home
from trainpipe_assets.cli.runs import code_location, ingest_days
from trainpipe_assets.cli.runs import materialized as _materialized
from trainpipe_assets.cli.runs import run_partition as _run_partition
from trainpipe_assets.core import metadata as md

# The facts the demo prints for each asset of training_job.
SHOWN = {
    "schema": ("features", "source"),
    "transform_graph": ("analyzed_rows", "transformed_rows_eval"),
    "best_hyperparameters": ("mode", "num_trials", "best_hyperparameters"),
    "trained_model": ("parameters", md.metric_key("validation_binary_accuracy")),
    "model_evaluation": (md.BLESSED, md.BASELINE_VERSION, "candidate_accuracy", "candidate_auc"),
    "infra_validation": ("infra_blessed", "load_seconds", "latency_p50_ms"),
    "pushed_model": (md.VERSION, md.SERVING_PATH),
}


def _train(location, window_end: str, instance):
    print(
        f"\ntraining_job for the window ending {window_end} "
        "(schema -> transform -> tune -> train -> evaluate -> infra-validate -> push), step by step:",
        flush=True,
    )
    result, failures = _run_partition(location, "training_job", window_end, instance)
    seconds = {
        e.step_key: e.event_specific_data.duration_ms / 1000
        for e in result.all_events
        if e.event_type_value == "STEP_SUCCESS"
    }
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        name = event.asset_key.to_user_string()
        facts = ", ".join(f"{k}={metadata[k].value}" for k in SHOWN.get(name, ()) if k in metadata)
        took = f" ({seconds[event.step_key]:.1f} s)" if event.step_key in seconds else ""
        print(f"  {name}{took}: {facts}")
    evaluation = _materialized(result).get("model_evaluation", {})
    for warning in md.value(evaluation, md.EVALUATION_WARNINGS, []):
        print(f"  warning: {warning}")
    for check in result.get_asset_check_evaluations():
        print(f"  check {check.check_name}: {'passed' if check.passed else 'FAILED'} ({check.description})")
    for failure in failures:
        print(f"  FAILED: {failure}")
    return result


def _score_day(location, day: str, instance) -> None:
    print(f"\nbatch_inference_job for {day} (batch_predictions on Beam, serving_model_performance):")
    result, failures = _run_partition(location, "batch_inference_job", day, instance)
    mats = _materialized(result)
    if "batch_predictions" in mats:
        m = mats["batch_predictions"]
        print(
            f"  batch_predictions: {md.value(m, md.ROWS)} rows scored by version {md.value(m, md.MODEL_VERSION)} "
            f"({md.value(m, 'rows_per_second')} rows/s)"
        )
    if "serving_model_performance" in mats:
        m = mats["serving_model_performance"]
        accuracy = md.value(m, md.METRICS, {}).get("accuracy")
        print(
            f"  serving_model_performance: version {md.value(m, md.MODEL_VERSION)} "
            f"accuracy={accuracy and round(accuracy, 4)} degraded={md.value(m, md.DEGRADED)}"
        )
    for failure in failures:
        print(f"    {failure}")


def _ask_a_server(name: str, base: Path, request: Path) -> str:
    """Start `trainpipe serve` on the pushed versions, send the request the printed curl sends, and stop it."""
    from trainpipe_assets.core.net import free_port
    from trainpipe_assets.serving.client import http_json

    port = free_port()
    command = [
        sys.executable,
        "-m",
        "trainpipe_assets.cli",
        "serve",
        "--model-name",
        name,
        "--model-base-path",
        str(base),
        "--port",
        str(port),
    ]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        root = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline and server.poll() is None:
            if http_json(f"{root}/healthz", timeout=5)[0] == 200:
                code, body = http_json(f"{root}/v1/models/{name}:predict", json.loads(request.read_text()))
                return f"HTTP {code} {json.dumps(body)}"
            time.sleep(0.25)
        ended = server.poll() is not None
        return "the server did not become healthy: " + (server.stderr.read().decode()[-500:] if ended else "timed out")
    finally:
        server.terminate()
        server.wait(timeout=30)


def _write_predict_request(trainpipe, day: str) -> Path:
    """A TF Serving :predict body with three raw eval examples of `day`, serialized and base64-encoded."""
    from trainpipe_assets.core.example_reader import read_records

    records = read_records([str(trainpipe.artifacts_dir / "examples" / day / "Split-eval" / "*.gz")], limit=3)
    path = Path(trainpipe.home) / "predict_request.json"
    path.write_text(json.dumps({"instances": [{"b64": base64.b64encode(r).decode()} for r in records]}))
    return path


def run(args: argparse.Namespace) -> int:
    dagster_home = use_instance_home()
    from dagster import DagsterInstance

    from trainpipe_assets.core.settings import TrainpipeConfig
    from trainpipe_assets.data.sample_data import write_days

    trainpipe = TrainpipeConfig.from_env()
    end = args.end or dt.date.today() - dt.timedelta(days=1)
    paths = write_days(trainpipe.landing_dir, args.days, args.rows_per_day, end, args.seed)
    print(f"simulated {len(paths)} days x {args.rows_per_day} rows into {trainpipe.landing_dir}")
    instance = DagsterInstance.get()
    with code_location(instance) as location:  # loaded after the data landed: partitions_start: auto begins there
        return _run_demo(args, trainpipe, location, instance, dagster_home, end)


def _run_demo(args, trainpipe, location, instance, dagster_home, end) -> int:
    from trainpipe_assets.core.event_log import current_baseline

    days = [(end - dt.timedelta(days=i)).isoformat() for i in range(args.days - 1, -1, -1)]
    print(f"\ningest_job for {len(days)} days in one run (examples -> statistics -> example_anomalies):")
    ingested = not ingest_days(location, trainpipe, days, instance)
    # Two windows: the second model is evaluated against the first one, which is serving by then.
    for window_end in days[-2:] if len(days) > 1 else days:
        _train(location, window_end, instance)
    serving = current_baseline(instance, trainpipe.serving_dir)
    name = trainpipe.settings.model_name
    print(
        "\nserving now: "
        + (
            f"{name} version {serving.version} at {serving.serving_path}"
            if serving
            else "nothing (no model was blessed)"
        )
    )
    if serving:
        _score_day(location, days[-1], instance)
        request = _write_predict_request(trainpipe, days[-1])
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
        f'--tags \'{{"dagster/partition": "{days[-1]}"}}\''
    )
    return 0 if ingested and serving is not None else 1


def register(sub) -> None:
    demo = sub.add_parser("demo", help="simulate sample days, ingest each, train, evaluate and push the last window")
    demo.add_argument("--days", type=int, default=8)
    demo.add_argument("--rows-per-day", type=int, default=500)
    demo.add_argument("--end", type=parse_date, help="last day (default: yesterday)")
    demo.add_argument("--seed", type=int, default=0)
    add_verbose(demo)
    demo.set_defaults(func=run)
