"""`trainpipe history` (every trained model, or which version served when) and `trainpipe diff` (two pushed
versions side by side), read from the event log."""

from __future__ import annotations

import argparse
import json
from typing import Optional

from trainpipe_assets.cli.common import parse_datetime, use_instance_home


def history_table(rows: list[dict], baseline) -> str:
    serving = None
    if baseline:
        pushed = f"pushed by run {baseline.run_id[:8] or '?'}" + (
            f" at {baseline.pushed_at}" if baseline.pushed_at else ""
        )
        serving = f"version {baseline.version} ({baseline.serving_path}, {pushed})"
    lines = [
        "serving now: " + (serving or "nothing pushed yet"),
        "",
        f"{'time (UTC)':<20} {'partition':<11} {'run':<9} {'accuracy':>8} {'auc':>6} {'blessed':<8} {'baseline':>8} "
        f"{'pushed':>6}",
    ]

    def fmt(v: Optional[float]) -> str:
        return "" if v is None else f"{v:.4f}"[:6]

    for row in rows:
        m = row["eval_metrics"]
        pushed = row["pushed_version"] or (
            f"({row['already_pushed'].rsplit(' ', 1)[-1]})" if row.get("already_pushed") else "-"
        )
        blessed = str(row["blessed"]) if row["blessed"] is not None else "-"
        lines.append(
            f"{row['time'][:19]:<20} {row['partition'] or '':<11} {row['run_id'][:8]:<9} {fmt(m.get('accuracy')):>8} "
            f"{fmt(m.get('auc')):>6} {blessed:<8} "
            f"{str(row['baseline_version'] or '-'):>8} {str(pushed):>6}"
        )
    return "\n".join(lines)


def _timeline(instance, args: argparse.Namespace) -> None:
    from trainpipe_assets.core.event_log import serving_at, serving_timeline

    timeline = serving_timeline(instance)
    if args.at:
        event = serving_at(timeline, args.at)
        if args.json:
            print(json.dumps(event))
        elif event:
            print(
                f"at {args.at.isoformat()}: version {event['serving_version']} ({event['event']} at {event['time']}, "
                f"run {event['run_id'][:8] or '-'})"
            )
        else:
            print(f"at {args.at.isoformat()}: nothing was serving")
        return
    if args.json:
        print(json.dumps(timeline, indent=2))
        return
    print(f"{'since (UTC)':<26} {'version':>7}  {'run':<9} {'event':<34} reason")
    for e in timeline:
        print(f"{e['time']:<26} {e['serving_version']:>7}  {e['run_id'][:8] or '-':<9} {e['event']:<34} {e['reason']}")


def run_history(args: argparse.Namespace) -> int:
    use_instance_home()
    from dagster import DagsterInstance

    from trainpipe_assets.core.event_log import current_baseline, model_history
    from trainpipe_assets.core.run_records import record_unrecorded_pushes
    from trainpipe_assets.core.settings import TrainpipeConfig

    serving_dir = TrainpipeConfig.from_env().serving_dir
    with DagsterInstance.get() as instance:
        record_unrecorded_pushes(instance, serving_dir)  # a version a killed run left unrecorded; dead runs failed
        if args.serving or args.at:
            _timeline(instance, args)
            return 0
        rows = model_history(instance, args.limit)
        baseline = current_baseline(instance, serving_dir)
    if args.json:
        print(json.dumps({"serving": baseline and baseline.__dict__, "models": rows}, indent=2, default=str))
    else:
        print(history_table(rows, baseline))
    return 0


def run_diff(args: argparse.Namespace) -> int:
    use_instance_home()
    from dagster import DagsterInstance

    from trainpipe_assets.core.event_log import model_history
    from trainpipe_assets.core.run_records import record_unrecorded_pushes
    from trainpipe_assets.core.settings import TrainpipeConfig

    with DagsterInstance.get() as instance:
        record_unrecorded_pushes(instance, TrainpipeConfig.from_env().serving_dir)
        rows = {r["pushed_version"]: r for r in model_history(instance, 1000) if r["pushed_version"] is not None}
    missing = [v for v in (args.v1, args.v2) if v not in rows]
    if missing:
        raise ValueError(f"no pushed version {missing} in the event log (pushed: {sorted(rows)})")
    a, b = rows[args.v1], rows[args.v2]

    def line(label: str, left, right) -> None:
        print(f"{label:<28} {str(left):<40} {str(right):<40}")

    line("", f"version {args.v1}", f"version {args.v2}")
    for label, key in [
        ("partition", "partition"),
        ("run_id", "run_id"),
        ("trained at", "time"),
        ("code_version", "code_version"),
    ]:
        line(label, a[key], b[key])
    for group in ("eval_metrics", "hyperparameters"):
        for key in sorted(set(a[group]) | set(b[group])):
            line(f"{group[:4]} {key}", a[group].get(key, ""), b[group].get(key, ""))
    line("example partitions", ",".join(a["example_partitions"]), ",".join(b["example_partitions"]))
    print(
        f"{'data versions differ':<28} {a.get('lineage', {}).get('examples') != b.get('lineage', {}).get('examples')}"
    )
    line("blessing", "; ".join(a["blessing_reasons"]), "; ".join(b["blessing_reasons"]))
    return 0


def register(sub) -> None:
    history = sub.add_parser("history", help="every trained model with its metrics, blessing and pushed version")
    history.add_argument("--json", action="store_true", help="print JSON instead of a table")
    history.add_argument("--limit", type=int, default=50)
    history.add_argument("--serving", action="store_true", help="which version served since when (pushes, rollbacks)")
    history.add_argument(
        "--at", type=parse_datetime, help="the version serving at this time (ISO 8601, UTC if no zone)"
    )
    history.set_defaults(func=run_history)

    diff = sub.add_parser("diff", help="two pushed versions side by side")
    diff.add_argument("v1", type=int)
    diff.add_argument("v2", type=int)
    diff.set_defaults(func=run_diff)
