"""Retries for the heavy steps: a lost worker, an out-of-memory kill or a flaky filesystem deserve another try.
Bad input and bad module files raise `Failure(allow_retries=False)` and are not retried."""

from dagster import Backoff, RetryPolicy

TRANSIENT_RETRY = RetryPolicy(max_retries=2, delay=10, backoff=Backoff.EXPONENTIAL)
