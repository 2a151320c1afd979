"""The `trainpipe serve` arguments and their checks, shared by the `trainpipe` command line and the infra validator's
sandbox (trainpipe_assets.serving.sandbox), so both start the server the same way."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--model-base-path", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument(
        "--poll-seconds", type=float, default=2.0, help="how often new versions and the pin are picked up"
    )
    parser.add_argument("--labels-file", help='JSON {"stable": 1, "canary": 2}')
    parser.add_argument("--max-body-bytes", type=int, default=10 << 20)
    parser.add_argument(
        "--max-instances-per-request",
        type=int,
        default=10_000,
        help="rows one :predict (instances, or the rows of an input) or :classify/:regress (examples) may send; "
        "more is a 413",
    )
    parser.add_argument(
        "--header-timeout-seconds",
        type=float,
        default=30.0,
        help="seconds a client has to send a request's line and headers, from connecting (or from its first byte on "
        "a kept-alive connection); then 408 and the connection closed",
    )
    parser.add_argument(
        "--body-timeout-seconds",
        type=float,
        default=30.0,
        help="seconds a client has to send a whole request body once its headers are in; then 408",
    )
    parser.add_argument(
        "--enable-batching",
        nargs="?",
        const=True,
        default=True,
        type=true_or_false,
        metavar="true|false",
        help="merge :predict requests that arrive while a model call runs into one call (default: on); a request that "
        "finds no call running goes at once, so a lone client pays nothing for it",
    )
    parser.add_argument(
        "--disable-batching", dest="enable_batching", action="store_false", help="same as --enable-batching=false"
    )
    parser.add_argument("--max-batch-size", type=int, default=32, help="rows per merged call (with batching)")
    parser.add_argument(
        "--batch-timeout-micros",
        type=int,
        default=1000,
        help="how long requests that arrive while a call runs wait for more before taking a free thread (they wait "
        "for none when no call runs, and go as soon as a call ends when all --num-batch-threads are busy)",
    )
    parser.add_argument("--num-batch-threads", type=int, help="merged calls run in parallel (default: number of CPUs)")


def true_or_false(value: str) -> bool:
    if value.lower() not in ("true", "false", "1", "0"):
        raise argparse.ArgumentTypeError(f"{value!r} is neither true nor false")
    return value.lower() in ("true", "1")


def serve_from_args(args: argparse.Namespace) -> int:
    """Check the arguments (a ValueError says which is wrong), print where the server listens, and serve until
    the process is stopped."""
    # imported here, not at the top: the command line imports this module for every command, not only `serve`
    from trainpipe_assets.serving.app import BatchingOptions, Limits, serve

    if not Path(args.model_base_path).is_dir():
        raise ValueError(f"--model-base-path {args.model_base_path} is not a folder")
    if (
        args.max_batch_size < 1
        or args.batch_timeout_micros < 0
        or (args.num_batch_threads is not None and args.num_batch_threads < 1)
    ):
        raise ValueError(
            "--max-batch-size and --num-batch-threads must be at least 1, --batch-timeout-micros at least 0"
        )
    if args.max_body_bytes < 1 or args.max_instances_per_request < 1:
        raise ValueError("--max-body-bytes and --max-instances-per-request must be at least 1")
    if args.header_timeout_seconds <= 0 or args.body_timeout_seconds <= 0:
        raise ValueError("--header-timeout-seconds and --body-timeout-seconds must be more than 0")
    limits = Limits(
        args.max_body_bytes, args.max_instances_per_request, args.body_timeout_seconds, args.header_timeout_seconds
    )
    batching = None
    if args.enable_batching:
        batching = BatchingOptions(
            args.max_batch_size, args.batch_timeout_micros, args.num_batch_threads or BatchingOptions.num_batch_threads
        )
    print(
        f"serving {args.model_name} from {args.model_base_path} on "
        f"http://{args.host}:{args.port}/v1/models/{args.model_name}"
        + (f" (batching: {batching})" if batching else ""),
        flush=True,
    )
    serve(
        args.model_name,
        Path(args.model_base_path),
        args.host,
        args.port,
        args.poll_seconds,
        Path(args.labels_file) if args.labels_file else None,
        limits,
        batching,
    )
    return 0
