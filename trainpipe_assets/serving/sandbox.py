"""`python -m trainpipe_assets.serving.sandbox --memory-limit-mb N -- --model-name X --model-base-path B ...`: the
infra validator's sandbox. Applies an address-space limit and asks the kernel to end this process when its parent dies
(so a killed pipeline step leaves no server behind), then runs `trainpipe serve` with the arguments after `--` in this
same process."""

import argparse
import ctypes
import logging
import resource
import signal
import sys

from trainpipe_assets.serving.flags import add_serve_arguments
from trainpipe_assets.serving.main import serve_from_args

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="trainpipe_assets.serving.sandbox",
        usage="%(prog)s --memory-limit-mb N -- [serve arguments]",
        description="Run `trainpipe serve` under an address-space limit, ended when its parent process dies.",
    )
    parser.add_argument("--memory-limit-mb", type=int, required=True)
    add_serve_arguments(parser)
    if "--" in argv:  # argparse would read everything after "--" as positional arguments
        argv = argv[: argv.index("--")] + argv[argv.index("--") + 1 :]
    args = parser.parse_args(argv)
    limit = args.memory_limit_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not glibc/Linux: the parent's finally still stops the server
        pass
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # as `trainpipe`: chatter a user cannot act on
    try:
        return serve_from_args(args)
    except ValueError as e:  # bad arguments: say which, without a traceback, as `trainpipe serve` does
        print(f"trainpipe serve: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
