"""The server's Prometheus metrics, served at /metrics. Each app has its own registry (not prometheus_client's global
one), so several apps in one process (tests, benchmarks) count separately and never clash over metric names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from trainpipe_assets.serving.registry import ModelRegistry

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        # prometheus_client appends _total to a counter's name: this exposes trainpipe_requests_total
        self.requests = Counter(
            "trainpipe_requests",
            "requests by route and status code; gRPC calls by method (Predict, ...) and code name (OK, NOT_FOUND, ...)",
            ("route", "code"),
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "trainpipe_request_seconds",
            "seconds from request to answer",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "trainpipe_batch_size", "rows per signature call of :predict", buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.fallbacks = Counter(
            "trainpipe_batch_fallbacks", "merged calls that failed and ran request by request", registry=self.registry
        )
        self.serving_version = Gauge(
            "trainpipe_serving_version",
            "the version answering requests without a version or label; -1 before one is loaded",
            ("model",),
            registry=self.registry,
        )
        self.file_errors = Gauge(
            "trainpipe_file_error",
            "1 while the PINNED file (file=pin) or the labels file (file=labels) cannot be read (its last good value "
            "stays in force)",
            ("model", "file"),
            registry=self.registry,
        )
        self.config_error = Gauge(
            "trainpipe_model_config_error",
            "1 while the --model-config-file cannot be read or parsed (the last good config stays in force)",
            registry=self.registry,
        )
        self._request_counters: dict = {}
        self.capture = None  # the capture whose dropped count is exposed, set by render()
        self.registry.register(_CaptureDropped(self))

    def observe(self, route: str, code: int | str, seconds: float) -> None:
        child = self._request_counters.get((route, code))
        if child is None:  # labels() costs a lock and a lookup: once per route and code, not per request
            child = self._request_counters[(route, code)] = self.requests.labels(route, str(code))
        child.inc()
        self.request_seconds.observe(seconds)

    def observe_batch(self, rows: int) -> None:
        self.batch_size.observe(rows)

    def observe_fallback(self) -> None:
        self.fallbacks.inc()

    def render(self, models: ModelRegistry, capture=None) -> bytes:
        """The Prometheus text exposition of every metric; the serving versions are read from the stores now, so they
        follow a pin or a new version (or model) without anyone having to report it. Reads only what the stores hold
        in memory, so it cannot fail on a file: a broken PINNED file is a file error here (and the serving version -1
        if no good pin was ever read, as nothing then answers requests without a version)."""
        self.serving_version.clear()  # a model removed from the config file leaves no stale series
        self.file_errors.clear()
        for store in models.stores().values():
            serving = store.serving()
            self.serving_version.labels(store.name).set(serving.version if serving else -1)
            self.file_errors.labels(store.name, "pin").set(1 if store.pin_error else 0)
            self.file_errors.labels(store.name, "labels").set(1 if store.labels_error else 0)
        self.config_error.set(1 if models.config_error else 0)
        self.capture = capture
        return generate_latest(self.registry)


class _CaptureDropped(Collector):
    """trainpipe_capture_dropped_total, read from the capture's own count when scraped (only with a capture)."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def describe(self):
        return []

    def collect(self):
        if self.metrics.capture is not None:
            yield CounterMetricFamily(
                "trainpipe_capture_dropped",
                "requests the traffic capture dropped (its queue full, or not writable)",
                value=self.metrics.capture.dropped,
            )
