"""Retries for transient faults only: a lost connection, an exhausted resource, a flaky filesystem deserve another
try; nothing else does. Every pipeline step runs behind `fail_fast_unless_transient`, so an exception from the user's
module code, bad input or a bug fails the step at once with its message (and the module file and line when it came
from there) instead of waiting out two retries."""

from __future__ import annotations

import functools
import traceback
from pathlib import Path
from typing import Callable, Optional

from dagster import Backoff, Failure, RetryPolicy

TRANSIENT_RETRY = RetryPolicy(max_retries=2, delay=10, backoff=Backoff.EXPONENTIAL)

# By name, so that this module does not import TensorFlow, gRPC or SQLAlchemy to classify their errors.
TRANSIENT_NAMES = {
    "ResourceExhaustedError",  # tf.errors: out of memory
    "UnavailableError",  # tf.errors: a worker or device went away
    "DeadlineExceededError",
    "AbortedError",
    "OperationalError",  # SQLAlchemy / DB-API: the database went away
    "InterfaceError",
}
TRANSIENT_TYPES = (OSError, MemoryError, ConnectionError, TimeoutError)


def module_frame(error: BaseException, module_file: Optional[Path]) -> Optional[traceback.FrameSummary]:
    """The innermost frame of `error`'s traceback (or of an exception it was raised from) in the module file."""
    if module_file is None:
        return None
    seen, found = set(), None
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        for frame in traceback.extract_tb(error.__traceback__):
            if Path(frame.filename).resolve() == Path(module_file).resolve():
                found = frame
        error = error.__cause__ or error.__context__
    return found


def is_transient(error: BaseException) -> bool:
    return isinstance(error, TRANSIENT_TYPES) or type(error).__name__ in TRANSIENT_NAMES


def describe(error: BaseException, module_file: Optional[Path]) -> str:
    text = f"{type(error).__name__}: {error}"
    if len(text) > 4000:
        text = text[:4000] + " …"
    frame = module_frame(error, module_file)
    if frame is not None:
        return f"module code raised {text}\n  at {frame.filename}:{frame.lineno} in {frame.name}: {frame.line}"
    return text


def _release_write_lock(args, kwargs) -> None:
    """A failed step gives up its partition's write lock at once (the IO manager releases it after a success), so a
    long-lived process (a test session, `trainpipe ingest`) never holds it for another process's later run."""
    from trainpipe_assets.core.storage import unlock_partition

    trainpipe, context = kwargs.get("trainpipe"), args[0] if args else None
    key = getattr(context, "asset_key", None)
    if trainpipe is not None and key is not None and getattr(context, "has_partition_key", False):
        unlock_partition(trainpipe.artifacts_dir, key.path[-1], context.partition_key)


def fail_fast_unless_transient(fn: Callable) -> Callable:
    """Wrap an asset or check function: transient faults outside module code are re-raised (the retry policy may try
    again); everything else becomes a Failure that is never retried."""

    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Failure:
            _release_write_lock(args, kwargs)
            raise
        except Exception as error:
            _release_write_lock(args, kwargs)
            trainpipe = kwargs.get("trainpipe")
            module_file = getattr(trainpipe, "module_file", None) if trainpipe is not None else None
            in_module = module_frame(error, module_file) is not None
            if is_transient(error) and not in_module:
                raise
            raise Failure(description=describe(error, module_file), allow_retries=False) from error

    return guarded
