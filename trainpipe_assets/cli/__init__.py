"""`trainpipe`: simulate sample data, run the pipeline on it end to end (`demo`), serve models, and read the model
history. One file per command; this one only assembles them."""

from __future__ import annotations

import argparse
import sys

from trainpipe_assets.cli import demo, history, ingest, rollback, run_tfx, serve, simulate


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trainpipe", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (simulate, ingest, demo, history, rollback, serve, run_tfx):
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    import logging
    import warnings

    # Library chatter a user cannot act on: Keras on tf.data shuffling, TensorFlow deprecations inside tfx_bsl.
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    sys.stdout.reconfigure(line_buffering=True)  # progress lines show as they are printed, also through a pipe
    args = build_parser().parse_args(argv)
    if getattr(args, "verbose", True) is False:  # a command that runs the pipeline, without --verbose
        from trainpipe_assets.cli import console
        from trainpipe_assets.core.settings import default_home

        home = getattr(args, "home", None) or default_home()  # run-tfx --home: its log goes there too
        print(f"log (TensorFlow, Dagster events, tracebacks): {console.quiet(args.command, home)}")
    from trainpipe_assets.cli.runs import Stopped

    try:
        return args.func(args)
    except Stopped as stopped:  # SIGINT/SIGTERM: the run in flight was canceled, what finished was said
        print(f"trainpipe {args.command}: {stopped}")
        return stopped.exit_code
    except ValueError as e:  # bad arguments or settings: say which, without a traceback
        from trainpipe_assets.cli.console import error

        error(f"trainpipe {args.command}: error: {e}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
