"""`trainpipe serve` assembled in one place: ServeOptions (options.py) -> the models (ModelRegistry), the capture,
the DataPlane (dataplane.py), the REST app (app.py) and, with a gRPC port, the gRPC server (grpc_service.py) on the
same event loop, started and stopped by the app's lifespan; then uvicorn, on its own port or a --workers worker's
inherited socket (workers.py: `python -m trainpipe_assets.serving.main --worker PARENT_PID OPTIONS_JSON`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sys
from pathlib import Path
from typing import Optional

from starlette.applications import Starlette

from trainpipe_assets.serving.app import rest_app
from trainpipe_assets.serving.dataplane import DataPlane
from trainpipe_assets.serving.flags import options_from_args
from trainpipe_assets.serving.model_config import parse_version_policy
from trainpipe_assets.serving.model_store import ModelStore
from trainpipe_assets.serving.options import ServeOptions
from trainpipe_assets.serving.registry import ModelRegistry
from trainpipe_assets.serving.workers import run_workers, worker_setup


def build_registry(options: ServeOptions) -> ModelRegistry:
    """The models: those of the config file (a ValueError names file and line), else the one model."""
    if options.model_config_file:
        return ModelRegistry.from_config_file(Path(options.model_config_file))
    labels = Path(options.labels_file) if options.labels_file else None
    policy = parse_version_policy(options.model_version_policy)
    return ModelRegistry([ModelStore(options.model_name, Path(options.model_base_path or "."), labels, policy)])


def build_capture(options: ServeOptions):
    if not options.capture_dir:
        return None
    from trainpipe_assets.serving.capture import Capture

    return Capture(Path(options.capture_dir), options.capture_sampling_rate, file_mode=options.capture_file_mode)


def grpc_threads(options: ServeOptions) -> int:
    """gRPC's threads, sized to the batcher: enough calls waiting at once to fill a batch on every batch thread."""
    batching = options.batching
    wanted = batching.max_batch_size * batching.num_batch_threads if batching else os.cpu_count() or 1
    return min(256, max(8, wanted))


def build_app(models: ModelRegistry | ModelStore, options: ServeOptions = ServeOptions(), capture=None) -> Starlette:
    """The REST app over one DataPlane; with options.grpc_port the gRPC API starts and stops with it (its lifespan),
    on the same loop and plane. `capture` is closed on the way out."""
    registry = models if isinstance(models, ModelRegistry) else ModelRegistry([models])
    plane = DataPlane(registry, options.limits, options.batching, capture)
    grpc = options.grpc

    @contextlib.asynccontextmanager
    async def lifespan(app):
        server = None
        if grpc is not None:  # imported only then: grpc and TF Serving's protos are not needed otherwise
            from trainpipe_assets.serving.grpc_service import start_grpc_server

            server = start_grpc_server(
                plane, grpc.host, grpc.port, plane.limits.max_body_bytes, grpc.reuse_port, grpc_threads(options)
            )
        try:
            yield
        finally:
            if server is not None:  # its threads wait for answers from this loop: it must keep running meanwhile
                await asyncio.to_thread(server.stop(grace=5).wait)
            # here, with the server's own shutdown: written out before the process ends, however it is ended
            await asyncio.to_thread(plane.close)

    return rest_app(plane, lifespan)


def _clean_exit_server(config):
    import uvicorn

    class CleanExitServer(uvicorn.Server):
        """uvicorn's server, except that a shutdown on SIGTERM or SIGINT returns: uvicorn re-raises the signal once
        it has shut down, so the process would end by it (status 143) after its clean shutdown, not with 0."""

        @contextlib.contextmanager
        def capture_signals(self):
            with super().capture_signals():
                try:
                    yield
                finally:
                    self._captured_signals.clear()  # what uvicorn (0.55) raises again on the way out

    return CleanExitServer(config)


def serve(options: ServeOptions, registry: Optional[ModelRegistry] = None) -> None:
    """Serve until stopped, on (host, port) or on the inherited listening socket of a --workers worker."""
    import uvicorn

    from trainpipe_assets.serving.timeouts import guarded_protocol

    registry = registry or build_registry(options)
    capture = build_capture(options)
    registry.start(options.poll_seconds, options.config_poll_seconds)
    limits = options.limits
    config = uvicorn.Config(
        build_app(registry, options, capture),
        host=options.host,
        port=options.port,
        log_level="warning",
        http=guarded_protocol(limits.header_timeout_seconds, limits.body_timeout_seconds, limits.max_header_bytes),
    )
    server = _clean_exit_server(config)
    sock = None if options.listen_fd is None else socket.socket(fileno=options.listen_fd)
    try:
        server.run(sockets=[sock] if sock else None)
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it shut down on; uvicorn.run() swallows it the same way
        pass
    finally:
        if capture is not None:
            capture.close()
    if not server.started:  # e.g. the gRPC port taken: uvicorn logged why and returned
        raise SystemExit(1)


def serve_from_args(args: argparse.Namespace) -> int:
    """Check the arguments (a ValueError says which is wrong), print where the server listens, and serve until
    the process is stopped (with --workers N, as the parent of N worker processes)."""
    options = options_from_args(args)
    registry = build_registry(options)  # a bad config file stops the server here, before anything starts
    if options.workers > 1:
        return run_workers(options)
    return serve_options(options, registry)


def serve_options(options: ServeOptions, registry: Optional[ModelRegistry] = None) -> int:
    registry = registry or build_registry(options)
    print(options.describe(list(registry.stores())), flush=True)
    serve(options, registry)
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:  # a --workers worker, started by run_workers
    if not worker_setup(int(sys.argv[2])):
        sys.exit(1)
    sys.exit(serve_options(ServeOptions.from_json(sys.argv[3])))
