"""A member's process: `python -m <entry>` with its job in the environment, its output in a log file, and the kernel
told to kill it when the process that started it dies (PR_SET_PDEATHSIG), so a SIGKILLed Celery worker or step leaves
no training process behind. The member reports its result as the last line of its log."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Optional

JOB_ENV = "TRAINPIPE_SCALEOUT_JOB"
RESULT_MARK = "TRAINPIPE_SCALEOUT_RESULT "
TAIL_CHARS = 3000
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def start(entry: str, job: dict, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start `python -m entry` with `job` and `env` added to this environment, its output going to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **env, JOB_ENV: json.dumps(job), "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", entry],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )


def stop(proc: subprocess.Popen, seconds: float = 10) -> Optional[int]:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def tail(log: Path, chars: int = TAIL_CHARS) -> str:
    try:
        text = Path(log).read_text(errors="replace")
    except OSError:
        return ""
    return ("..." + text[-chars:]) if len(text) > chars else text


def result_of(log: Path) -> Optional[dict]:
    """What the member reported on its last result line, None if it reported nothing."""
    try:
        lines = Path(log).read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])
    return None


# In the member process


def job() -> dict:
    return json.loads(os.environ[JOB_ENV])


def report(result: dict) -> None:
    print(RESULT_MARK + json.dumps(result), flush=True)
