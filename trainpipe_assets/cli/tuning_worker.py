"""`trainpipe tuning-worker`: run tuning trials for the searches that `best_hyperparameters` chiefs publish in the
shared TRAINPIPE_HOME (with `tuning.remote_workers > 0`): join one as a KerasTuner worker named --name (default
<host>-<pid>), run its trials in a child process until the chief's oracle says the search is over, then watch for the
next one (--once: exit with the child's exit code after one search). The trials read and write the chief's files
under TRAINPIPE_HOME (it may be mounted at another path here), so this machine needs the same module code and Python
packages as the chief.

While the trials run, this process writes a heartbeat the chief watches (a worker silent for a minute is taken as gone
and its trial goes to another worker); it stops its child when the search is closed, or its oracle unreachable, for
ORPHAN_SECONDS. Stopped with SIGTERM or Ctrl-C, it stops its child too."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Optional

ORPHAN_SECONDS = 60.0
NAME = re.compile(r"[A-Za-z0-9._-]+")


def default_name() -> str:
    # KerasTuner takes any tuner id containing "chief" for the chief's
    return re.sub(r"[^A-Za-z0-9._-]", "-", f"{socket.gethostname()}-{os.getpid()}").replace("chief", "chf")


def checked_name(name: str) -> str:
    if not NAME.fullmatch(name) or "chief" in name:
        raise ValueError(
            f"--name {name!r}: letters, digits, '.', '_' and '-' only, without 'chief' (KerasTuner's chief)"
        )
    return name


def localized(job: dict, home) -> dict:
    """The job with the chief's TRAINPIPE_HOME and trainpipe_assets folders where this machine has them (a shared home
    may be mounted at another path)."""
    import trainpipe_assets

    here = {"home": str(home), "package_dir": str(Path(trainpipe_assets.__file__).parent)}
    moves = [(job[k].rstrip(os.sep), v.rstrip(os.sep)) for k, v in here.items() if job.get(k) and job[k] != v]

    def move(value):
        if isinstance(value, str):
            for old, new in moves:
                if value == old or value.startswith(old + os.sep):
                    return new + value[len(old) :]
            return value
        if isinstance(value, list):
            return [move(v) for v in value]
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        return value

    return {**job, "module_file": move(job["module_file"]), "fn_args": move(job["fn_args"])}


def reachable(host: Optional[str], port: Optional[int], timeout: float = 3.0) -> bool:
    if not host or not port:
        return False
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def next_search(folder: Path, done: set[str]) -> Optional[tuple[Path, dict]]:
    """The oldest open search not joined yet whose oracle answers (a dead chief's file may stay behind)."""
    paths = []
    for path in folder.glob("*.json"):
        try:
            paths.append((path.stat().st_mtime, path))
        except OSError:  # closed meanwhile
            pass
    for _, path in sorted(paths):
        if path.stem in done:
            continue
        try:
            job = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        oracle = job.get("oracle") or {}
        if reachable(oracle.get("host"), oracle.get("port")):
            return path, job
    return None


def _beat(path: Path, search_file: Path, state: dict) -> None:
    from trainpipe_assets.core.storage import write_text

    if search_file.exists():  # the chief removes the heartbeats with the search: never bring the folder back
        write_text(path, json.dumps({**state, "time": time.time()}))


def _stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def join(search_file: Path, job: dict, name: str, home: str, poll_seconds: float) -> int:
    """Run the search's trials in a child process as tuner `name`; the child's exit code."""
    from trainpipe_assets.model.tuning_workers import heartbeats

    oracle = job["oracle"]
    beat_file = heartbeats(home, job["search"]) / f"{name}.json"
    state = {"worker": name, "host": socket.gethostname(), "pid": os.getpid(), "returncode": None, "beat": 0}
    with tempfile.TemporaryDirectory(prefix="trainpipe-tuning-") as tmp:
        local_job = Path(tmp) / "tuning_job.json"
        local_job.write_text(json.dumps(localized(job, home)))
        env = {
            **os.environ,
            "KERASTUNER_TUNER_ID": name,
            "KERASTUNER_ORACLE_IP": str(oracle["host"]),
            "KERASTUNER_ORACLE_PORT": str(oracle["port"]),
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "trainpipe_assets.model.tuning_workers", str(local_job)], env=env
        )
        orphan_since = None
        try:
            while True:
                state["beat"] += 1
                _beat(beat_file, search_file, state)
                try:
                    code = proc.wait(timeout=max(0.1, min(poll_seconds, 10.0)))
                    break
                except subprocess.TimeoutExpired:
                    pass
                if search_file.exists() and reachable(oracle["host"], oracle["port"]):
                    orphan_since = None
                elif orphan_since is None:
                    orphan_since = time.monotonic()
                elif time.monotonic() - orphan_since >= ORPHAN_SECONDS:
                    print(
                        f"{name}: search {job['search']} is closed or its oracle gone; stopping its trials", flush=True
                    )
                    code = _stop(proc)
                    break
        finally:
            if proc.poll() is None:  # SIGTERM, Ctrl-C or an error here: no trials process left behind
                _stop(proc)
    _beat(beat_file, search_file, {**state, "returncode": code})
    return code


def worker_setup(args: argparse.Namespace, folder_of: Callable[[str], Path]) -> tuple[str, str, Path]:
    """What the worker commands start with: --poll-seconds and --name checked, then (name, the shared home, the folder
    of it they watch); SIGTERM exits through `finally` blocks, so a worker stops its child on the way out."""
    from trainpipe_assets.core.settings import TrainpipeConfig

    if args.poll_seconds <= 0:
        raise ValueError(f"--poll-seconds {args.poll_seconds}: must be > 0")
    name = checked_name(args.name) if args.name else default_name()
    home = TrainpipeConfig.from_env().home
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return name, home, folder_of(home)


def run(args: argparse.Namespace) -> int:
    from trainpipe_assets.model.tuning_workers import open_searches

    name, home, folder = worker_setup(args, open_searches)
    print(f"tuning worker {name}: watching {folder} for open searches", flush=True)
    done: set[str] = set()
    while True:
        found = next_search(folder, done)
        if found is None:
            time.sleep(args.poll_seconds)
            continue
        path, job = found
        done.add(path.stem)
        print(f"{name} joins tuning search {job['search']} (oracle {job['oracle']['host']}:{job['oracle']['port']})")
        code = join(path, job, name, home, args.poll_seconds)
        print(f"{name} left tuning search {job['search']}: its trials process exited with {code}", flush=True)
        if args.once:
            return code if code >= 0 else 128 - code


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true", help="exit after one search (with its trials' exit code)")
    parser.add_argument("--poll-seconds", type=float, default=2.0, help="how often to look for open searches")
    parser.add_argument("--name", help="this worker's name in the trial table (default: <host>-<pid>)")


def register(sub) -> None:
    worker = sub.add_parser(
        "tuning-worker", help="run trials of the tuning searches published in $TRAINPIPE_HOME/tuning/open"
    )
    add_arguments(worker)
    worker.set_defaults(func=run)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="trainpipe tuning-worker", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except ValueError as e:
        print(f"trainpipe tuning-worker: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
