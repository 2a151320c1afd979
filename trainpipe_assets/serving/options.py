"""`trainpipe serve`'s options: one ServeOptions (with its limits, batching and gRPC parts), shared by the `trainpipe`
command line, the --workers workers (which get the ServeOptions as JSON) and the infra validator's sandbox. The flags
that fill it are in flags.py. Imports nothing of the server:
serving/main.py assembles the server from a ServeOptions."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Optional


@dataclass(frozen=True)
class Limits:
    """What one request may ask: body size, seconds to send the body (and headers, see timeouts.py), rows, the
    size of its headers, and the memory its inputs take once decoded (None: DECODED_PER_BODY_BYTE x max_body_bytes)."""

    max_body_bytes: int = 10 << 20
    max_instances: int = 10_000
    body_timeout_seconds: float = 30.0
    header_timeout_seconds: float = 30.0
    max_header_bytes: int = 64 << 10
    max_decoded_bytes: Optional[int] = None

    @property
    def decoded_bytes(self) -> int:
        return self.max_decoded_bytes or DECODED_PER_BODY_BYTE * self.max_body_bytes


# A tensor carried element by element in a message decodes into at most this many bytes per byte of message (an empty
# string: 2 bytes on the wire, 32 decoded); only a shape claiming more elements than the message carries goes over.
DECODED_PER_BODY_BYTE = 16


@dataclass(frozen=True)
class BatchingOptions:
    """TF Serving's --enable_batching parameters."""

    max_batch_size: int = 32
    batch_timeout_micros: int = 1000
    num_batch_threads: int = os.cpu_count() or 1


@dataclass(frozen=True)
class GrpcOptions:
    """Where the gRPC API listens (--grpc-port); reuse_port for --workers, which share it."""

    host: str = "127.0.0.1"
    port: int = 8500
    reuse_port: bool = False


@dataclass(frozen=True)
class ServeOptions:
    """Everything `trainpipe serve` was asked for. The models: `model_config_file` (several, reread every
    config_poll_seconds if more than 0), else `model_name` at `model_base_path` with `model_version_policy` (plus
    the versions pinned or labelled) and `labels_file`.
    `listen_fd`: a --workers worker's inherited listening socket (then the gRPC port is shared by SO_REUSEPORT)."""

    model_name: Optional[str] = None
    model_base_path: Optional[str] = None
    labels_file: Optional[str] = None
    model_config_file: Optional[str] = None
    config_poll_seconds: float = 0.0
    model_version_policy: str = "latest:1"  # the one model's: latest:N, all or specific:V1,V2 (model_config.py)
    host: str = "127.0.0.1"
    port: int = 8501
    poll_seconds: float = 2.0
    grpc_port: int = 0  # 0: no gRPC
    limits: Limits = field(default_factory=Limits)
    batching: Optional[BatchingOptions] = field(default_factory=BatchingOptions)  # None: --disable-batching
    capture_dir: Optional[str] = None
    capture_sampling_rate: float = 1.0
    capture_file_mode: int = 0o600  # folders get x where the files get r (0o600 -> 0o700)
    workers: int = 1
    listen_fd: Optional[int] = None

    @property
    def grpc(self) -> Optional[GrpcOptions]:
        if not self.grpc_port:
            return None
        return GrpcOptions(self.host, self.grpc_port, reuse_port=self.listen_fd is not None)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeOptions:
        values = json.loads(text)
        batching = values.pop("batching")
        limits = Limits(**values.pop("limits"))
        return cls(**values, limits=limits, batching=batching and BatchingOptions(**batching))

    def describe(self, model_names: list[str]) -> str:
        """What the server serves, and where, for its first line of output."""
        if self.model_config_file:
            what = f"{', '.join(sorted(model_names))} from {self.model_config_file}"
        else:
            what = f"{self.model_name} from {self.model_base_path}"
        return (
            f"serving {what} on http://{self.host}:{self.port}/v1/models/<name>"
            + (f" and gRPC {self.host}:{self.grpc_port}" if self.grpc_port else "")
            + (f" (batching: {self.batching})" if self.batching else "")
            + (
                f" (capturing {self.capture_sampling_rate:g} of requests into {self.capture_dir})"
                if self.capture_dir
                else ""
            )
        )
