"""The one data plane behind REST (app.py) and gRPC (grpc_service.py), as KServe's DataPlane or TF Serving's
ServerCore: model lookup by name, version or label, status and metadata, :predict on decoded tensors (through the
micro-batcher, so REST and gRPC requests merge into the same model calls), classify and regress, the worker threads,
the traffic capture and the metrics. The codecs only turn their wire format into a Call (or an ExamplesCall) and the
outputs back; everything they share is here, so both answer alike.

Model calls run on worker threads, never on the event loop. The capture is off the hot path: whether a request is
sampled is decided before anything is copied, and the recording itself (a reference to the request as it came and the
answer as it went, put on the capture's queue) is scheduled for after the answer has been handed to the transport;
the writer thread encodes it."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Optional

from trainpipe_assets.serving.batching import Batcher
from trainpipe_assets.serving.capture import Capture, new_request_id
from trainpipe_assets.serving.messages import SIGNATURE_DEF, metadata_response, status_response
from trainpipe_assets.serving.metrics import Metrics
from trainpipe_assets.serving.model_store import LoadedVersion
from trainpipe_assets.serving.options import BatchingOptions, Limits
from trainpipe_assets.serving.predict import Call, run_alone, run_examples, run_merged
from trainpipe_assets.serving.registry import ModelRegistry


@dataclass(eq=False)
class ExamplesCall:
    """One :classify / :regress request: `serialized()` gives its tf.Examples (decoded on the worker thread, as a
    large request's examples take a while to serialize) and `encode` turns run_examples' result into its answer."""

    loaded: LoadedVersion
    signature_name: str
    method: str  # "classify" or "regress"
    serialized: Callable[[], list]
    encode: Callable[[Any], Any]


def _run_examples(call: ExamplesCall) -> Any:
    return call.encode(run_examples(call.loaded, call.signature_name, call.method, call.serialized()))


class DataPlane:
    def __init__(
        self,
        registry: ModelRegistry,
        limits: Limits = Limits(),
        batching: Optional[BatchingOptions] = None,
        capture: Optional[Capture] = None,
    ):
        self.registry, self.limits, self.capture = registry, limits, capture
        self.metrics = Metrics()
        threads = batching.num_batch_threads if batching else (os.cpu_count() or 1)
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="model")
        self.batcher = None
        if batching:
            self.batcher = Batcher(
                lambda calls: run_merged(calls, self.metrics),
                self.executor,
                batching.max_batch_size,
                batching.batch_timeout_micros / 1e6,
                batching.num_batch_threads,
            )

    # Models.

    def resolve(self, name: str, version: Optional[int] = None, label: Optional[str] = None) -> LoadedVersion:
        """The version a request names: a version number, a label, or (neither) the one serving."""
        return self.registry.resolve(name, version, label)

    def status(self, name: str, version: Optional[int] = None, label: Optional[str] = None):
        """GetModelStatusResponse: the version named, else every loaded one."""
        return status_response(self.registry.status_versions(name, version, label))

    def metadata(self, name: str, loaded: LoadedVersion, fields: tuple[str, ...] = (SIGNATURE_DEF,)):
        return metadata_response(name, loaded, fields)

    def health(self) -> tuple[bool, dict]:
        return self.registry.health()

    # Inference.

    async def predict(self, call: Call) -> Any:
        """The call's encoded answer: merged with others' by the batcher when it can be, else a call of its own."""
        batcher = self.batcher
        if batcher is not None and call.rows and call.rows <= batcher.max_batch_size:
            return await batcher.submit((call.loaded, call.signature_name), call, call.rows)
        self.metrics.observe_batch(call.rows or 1)
        return await asyncio.get_running_loop().run_in_executor(self.executor, run_alone, call)

    async def classify_or_regress(self, call: ExamplesCall) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, _run_examples, call)

    # Capture and metrics.

    def request_id(self, sent: Optional[str]) -> Optional[str]:
        """A client's id is echoed; one is made up only when the request may be captured under it."""
        return sent or (new_request_id() if self.capture is not None else None)

    def capture_later(self, model: str, version: int, signature: str, method: str, request, response, request_id):
        """Offer an answered request to the capture: sampled now (nothing is copied for a request left out), put on
        its queue once the answer has gone (at the loop's next turn). `request` and `response` are references to
        what came and what went (RawJSON, or the gRPC messages), never changed afterwards."""
        capture = self.capture
        if capture is None or not capture.sampled():
            return
        asyncio.get_running_loop().call_soon(
            capture.record, model, version, signature, method, request, response, request_id, False
        )

    def observe(self, route: str, code, seconds: float) -> None:
        self.metrics.observe(route, code, seconds)

    def render_metrics(self) -> bytes:
        return self.metrics.render(self.registry, self.capture)

    def close(self) -> None:
        """Write what the capture holds and close its files (blocking: call it on a thread from the loop)."""
        if self.capture is not None:
            self.capture.close()
        self.executor.shutdown(wait=False)
