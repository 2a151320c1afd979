"""`python -m trainpipe_assets.serving.sandbox --memory-limit-mb N -- serve ...`: the infra validator's sandbox.
Applies an address-space limit and asks the kernel to end this process when its parent dies (so a killed pipeline
step leaves no server behind), then runs the `trainpipe` command line in this same process."""
import argparse
import ctypes
import resource
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="trainpipe_assets.serving.sandbox")
    parser.add_argument("--memory-limit-mb", type=int, required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the trainpipe arguments")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    limit = args.memory_limit_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not glibc/Linux: the parent's finally still stops the server
        pass
    from trainpipe_assets.cli import main as trainpipe

    return trainpipe(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
