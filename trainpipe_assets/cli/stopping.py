"""Stopping a command that runs the pipeline: SIGINT (Ctrl-C) or SIGTERM marks the run in flight CANCELING before
Dagster's own interrupt handling stops the step in flight, so the run ends CANCELED (not "interrupted unexpectedly",
which Dagster records as a failure); the command then says what finished and exits 130 or 143.

Dagster installs its SIGINT handler (and maps SIGTERM to it) each time execution enters or leaves user code, so a
handler of ours would be replaced: for the duration of a run, every handler installed for those signals is wrapped
so that ours runs first, in the main thread, before Dagster's raises."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Optional

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stop:
    """The signal that asked the command to stop, if any."""

    def __init__(self) -> None:
        self.signum: Optional[int] = None

    @property
    def exit_code(self) -> int:
        return 128 + self.signum if self.signum else 0

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


@contextmanager
def stoppable(instance, run, stop: Stop):
    """While a run executes: the first SIGINT/SIGTERM records itself in `stop` and marks the run CANCELING."""
    original_install = signal.signal

    def on_stop(signum: int) -> None:
        if stop.signum is None:
            stop.signum = signum
            instance.report_run_canceling(run, message=f"{signal.Signals(signum).name}: the command was stopped")

    def wrap(handler):
        if not callable(handler):
            return handler

        def stopping(signum, frame):
            on_stop(signum)
            return handler(signum, frame)

        stopping.__wrapped__ = handler
        return stopping

    def install(signum, handler):
        if signum in STOP_SIGNALS:
            return original_install(signum, wrap(handler))
        return original_install(signum, handler)

    def default(signum, _frame):  # before Dagster has installed its own
        on_stop(signum)
        raise KeyboardInterrupt

    saved = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s in STOP_SIGNALS:
        original_install(s, default)
    signal.signal = install
    try:
        yield stop
    finally:
        signal.signal = original_install
        for s, handler in saved.items():
            original_install(s, handler)
