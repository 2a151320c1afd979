"""Fault injection for the chaos tests: `TRAINPIPE_KILL_AT=<point>` makes the process kill itself with SIGKILL when
it reaches that point (no cleanup, no finally blocks: what a power cut or the OOM killer does). Unset, it does
nothing. Points: transform, tuning, training, infra_validation (each after its step filled its staging folder) and
push:after_rename (after the version folder is in place, before the push event is written)."""

import os
import signal

KILL_AT_ENV = "TRAINPIPE_KILL_AT"


def kill_point(name: str) -> None:
    if os.environ.get(KILL_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
