"""`trainpipe serve`'s command-line flags (add_serve_arguments) read into one ServeOptions (options_from_args, which
checks them: a ValueError says which flag is wrong)."""

from __future__ import annotations

import argparse
from pathlib import Path

from trainpipe_assets.serving.options import (
    DECODED_PER_BODY_BYTE,
    BatchingOptions,
    Limits,
    ServeOptions,
)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-name",
        help="the one model to serve, with --model-base-path: the versions --model-version-policy picks are loaded, "
        "plus the one the PINNED rollback file names and those --labels-file names, so rollback and labels work",
    )
    parser.add_argument(
        "--model-version-policy",
        help="which versions of --model-name's base path to load, as TF Serving's model_version_policy: latest:N "
        "(the newest N), all, or specific:1,3; default latest:1. A pinned or labelled version is loaded too",
    )
    parser.add_argument("--model-base-path", help="the model's folder of <version>/ SavedModels (TF Serving's layout)")
    parser.add_argument(
        "--model-config-file",
        help="instead of --model-name/--model-base-path: TF Serving's ModelServerConfig text file (model_config_list "
        "{ config { name, base_path, model_platform, model_version_policy, version_labels } ... }); several models, "
        "each with its version policy (default: latest 1, as TF Serving) and labels; PINNED is honoured too",
    )
    parser.add_argument(
        "--model-config-file-poll-wait-seconds",
        type=float,
        default=0.0,
        help="reread --model-config-file this often (models added are loaded, removed ones unloaded; a broken file "
        "is reported in /healthz and the last good config stays); 0, the default as in TF Serving: read it once",
    )
    parser.add_argument(
        "--grpc-port",
        type=int,
        default=0,
        help="also serve TF Serving's gRPC API (PredictionService, ModelService) on this port, e.g. 8500 (TF "
        "Serving's); 0, the default: no gRPC",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument(
        "--poll-seconds", type=float, default=2.0, help="how often new versions and the pin are picked up"
    )
    parser.add_argument("--labels-file", help='JSON {"stable": 1, "canary": 2}')
    parser.add_argument(
        "--capture-dir",
        help="record a sample of :predict/:classify/:regress (REST) and Predict/Classify/Regress (gRPC) requests with "
        "their responses, as daily JSON-lines files under <dir>/<model>/",
    )
    parser.add_argument(
        "--capture-sampling-rate",
        type=float,
        help="the share of requests recorded, 0 to 1 (default 1 with --capture-dir)",
    )
    parser.add_argument(
        "--capture-file-mode",
        type=lambda text: int(text, 8),
        help="permissions of capture files, octal (default 0600: they hold whole requests; folders 0700); e.g. 0640 "
        "lets the group read them (folders 0750)",
    )
    parser.add_argument(
        "--max-header-bytes",
        type=int,
        default=64 << 10,
        help="the largest request line and headers of a REST request, in bytes (default 65536); more is a 431",
    )
    parser.add_argument(
        "--max-decoded-bytes",
        type=int,
        help="the memory the inputs of one request may take once decoded, as their declared shape x element size (a "
        "string: its length + 32), checked before anything is allocated; more is a 400 / INVALID_ARGUMENT (default "
        f"{DECODED_PER_BODY_BYTE} x --max-body-bytes: only a tensor claiming more elements than it carries goes over)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=10 << 20,
        help="the largest request body (more is a 413), and gRPC's largest message (RESOURCE_EXHAUSTED)",
    )
    parser.add_argument(
        "--max-instances-per-request",
        type=int,
        default=10_000,
        help="rows one :predict (instances, or the rows of an input) or :classify/:regress (examples) may send; "
        "more is a 413 (gRPC: RESOURCE_EXHAUSTED)",
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
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the port (SO_REUSEPORT), for loads CPU-bound in Python rather than in the "
        "model; each worker is a whole server with its own copy of every version: measured with the sample model, "
        "1 process 720 MB resident, --workers 2 1440 MB (2 x 685 MB + 70 MB for the parent)",
    )


def true_or_false(value: str) -> bool:
    if value.lower() not in ("true", "false", "1", "0"):
        raise argparse.ArgumentTypeError(f"{value!r} is neither true nor false")
    return value.lower() in ("true", "1")


def options_from_args(args: argparse.Namespace) -> ServeOptions:
    """The arguments checked (a ValueError says which is wrong; a model config file is parsed, so a bad one names
    its file and line) and read into a ServeOptions."""
    policy = getattr(args, "model_version_policy", None)
    if args.model_config_file:
        if args.model_name or args.model_base_path or args.labels_file or policy:
            raise ValueError(
                f"--model-config-file {args.model_config_file} lists the models: give it without --model-name, "
                "--model-base-path, --labels-file and --model-version-policy (version_labels and "
                "model_version_policy go in the file)"
            )
        from trainpipe_assets.serving.model_config import read_model_config

        read_model_config(Path(args.model_config_file))  # a ValueError names file and line
    elif not (args.model_name and args.model_base_path):
        raise ValueError("give --model-name and --model-base-path, or --model-config-file")
    elif not Path(args.model_base_path).is_dir():
        raise ValueError(f"--model-base-path {args.model_base_path} is not a folder")
    if policy:
        from trainpipe_assets.serving.model_config import parse_version_policy

        parse_version_policy(policy)  # a ValueError says what is accepted
    if args.model_config_file_poll_wait_seconds < 0:
        raise ValueError("--model-config-file-poll-wait-seconds must be at least 0")
    if not 0 <= args.grpc_port <= 65535 or (args.grpc_port and args.grpc_port == args.port):
        raise ValueError(f"--grpc-port {args.grpc_port} must be a port other than --port (0: no gRPC)")
    rate = args.capture_sampling_rate
    if rate is not None and (not args.capture_dir or not 0 <= rate <= 1):
        raise ValueError("--capture-sampling-rate must be between 0 and 1, and needs --capture-dir")
    if (
        args.max_batch_size < 1
        or args.batch_timeout_micros < 0
        or (args.num_batch_threads is not None and args.num_batch_threads < 1)
    ):
        raise ValueError(
            "--max-batch-size and --num-batch-threads must be at least 1, --batch-timeout-micros at least 0"
        )
    if args.max_body_bytes < 1 or args.max_instances_per_request < 1 or args.workers < 1:
        raise ValueError("--max-body-bytes, --max-instances-per-request and --workers must be at least 1")
    mode, decoded = getattr(args, "capture_file_mode", None), getattr(args, "max_decoded_bytes", None)
    if mode is not None and (not args.capture_dir or mode & ~0o666 or not mode & 0o600 == 0o600):
        raise ValueError(
            "--capture-file-mode must be an octal mode within 0666 with owner rw (e.g. 0640), and needs --capture-dir"
        )
    header_bytes = getattr(args, "max_header_bytes", None) or Limits.max_header_bytes
    if header_bytes < 1024 or (decoded is not None and decoded < 1):
        raise ValueError("--max-header-bytes must be at least 1024, --max-decoded-bytes at least 1")
    if args.header_timeout_seconds <= 0 or args.body_timeout_seconds <= 0:
        raise ValueError("--header-timeout-seconds and --body-timeout-seconds must be more than 0")
    batching = None
    if args.enable_batching:
        threads = args.num_batch_threads or BatchingOptions.num_batch_threads
        batching = BatchingOptions(args.max_batch_size, args.batch_timeout_micros, threads)
    return ServeOptions(
        model_name=args.model_name,
        model_base_path=args.model_base_path and str(args.model_base_path),
        labels_file=args.labels_file and str(args.labels_file),
        model_config_file=args.model_config_file and str(args.model_config_file),
        model_version_policy=getattr(args, "model_version_policy", None) or "latest:1",
        config_poll_seconds=args.model_config_file_poll_wait_seconds,
        host=args.host,
        port=args.port,
        poll_seconds=args.poll_seconds,
        grpc_port=args.grpc_port,
        limits=Limits(
            args.max_body_bytes,
            args.max_instances_per_request,
            args.body_timeout_seconds,
            args.header_timeout_seconds,
            header_bytes,
            decoded,
        ),
        batching=batching,
        capture_dir=args.capture_dir and str(args.capture_dir),
        capture_sampling_rate=1.0 if rate is None else rate,
        capture_file_mode=0o600 if mode is None else mode,
        workers=args.workers,
    )
