"""TFX InfraValidator without Docker: a candidate SavedModel served by a separate `trainpipe serve` process (its own
address-space limit, a free loopback port), loaded within a deadline and, in LOAD_AND_QUERY mode, queried with real
raw examples through TF Serving's REST API. Retried up to `num_tries`; the verdict keeps the reasons and a log tail."""

from __future__ import annotations

import base64
import math
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from trainpipe_assets.core.net import free_port
from trainpipe_assets.core.settings import InfraValidationSettings
from trainpipe_assets.serving.client import http_json

LOG_TAIL_CHARS = 3000
SANDBOX_VERSION = 1


@dataclass
class Attempt:
    ok: bool
    reason: str
    load_seconds: Optional[float] = None
    latencies_ms: list[float] = field(default_factory=list)
    log_tail: str = ""


@dataclass
class InfraVerdict:
    blessed: bool
    attempts: list[Attempt]

    @property
    def last(self) -> Attempt:
        return self.attempts[-1]

    def to_json(self) -> dict:
        return {"blessed": self.blessed, "attempts": [a.__dict__ for a in self.attempts]}


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    except OSError:
        return ""


def _check_predictions(body: dict, expected_rows: int) -> Optional[str]:
    """None when the answer has one finite prediction per example, else what is wrong with it."""
    predictions = body.get("predictions")
    if not isinstance(predictions, list) or len(predictions) != expected_rows:
        got = len(predictions) if isinstance(predictions, list) else type(predictions).__name__
        return f"expected {expected_rows} predictions, got {got}"

    def numbers(value):
        if isinstance(value, dict):
            for v in value.values():
                yield from numbers(v)
        elif isinstance(value, list):
            for v in value:
                yield from numbers(v)
        else:
            yield value

    for row, prediction in enumerate(predictions):
        for value in numbers(prediction):
            if isinstance(value, (int, float)) and not math.isfinite(value):
                return f"prediction {row} is not finite: {prediction}"
    return None


def _attempt(
    base: Path, model_name: str, examples: list[bytes], settings: InfraValidationSettings, log: Path
) -> Attempt:
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    # The sandbox: a launcher that applies the address-space limit and dies with this process, then `trainpipe serve`.
    command = [
        sys.executable,
        "-m",
        "trainpipe_assets.serving.sandbox",
        "--memory-limit-mb",
        str(settings.memory_limit_mb),
        "--",
        "--model-name",
        model_name,
        "--model-base-path",
        str(base),
        "--port",
        str(port),
        "--poll-seconds",
        "0.5",
    ]
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}  # glibc's per-thread arenas would count against the limit
    started = time.perf_counter()
    with open(log, "ab") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)

    def failed(
        reason: str, load_seconds: Optional[float] = None, latencies: list[float] = (), no_answer: bool = False
    ) -> Attempt:
        if no_answer:  # the connection dropped: give a dying server a moment to be reaped, to report how it ended
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if server.poll() is not None:
            reason += f" (server process exited with code {server.returncode})"
        return Attempt(False, reason, load_seconds, list(latencies), _tail(log))

    try:
        while True:  # ready = this model's status answers; another server on the port would answer 404
            if server.poll() is not None:
                return failed("server process ended while loading")
            if time.perf_counter() - started > settings.max_loading_time_seconds:
                return failed(f"model not loaded within max_loading_time_seconds={settings.max_loading_time_seconds:g}")
            code, health = http_json(f"{root}/healthz", timeout=5)
            if health.get("errors"):
                return failed(f"version failed to load: {health['errors']}")
            if code == 200 and http_json(f"{root}/v1/models/{model_name}", timeout=5)[0] == 200:
                break
            time.sleep(0.25)
        load_seconds = time.perf_counter() - started
        if settings.mode == "LOAD_ONLY":
            return Attempt(True, f"loaded in {load_seconds:.1f} s", load_seconds, log_tail=_tail(log))
        latencies: list[float] = []
        for batch in [[r] for r in examples] + [examples]:  # one example per request, as online clients send; then all
            t0 = time.perf_counter()
            code, body = http_json(
                f"{root}/v1/models/{model_name}:predict",
                {"instances": [{"b64": base64.b64encode(r).decode()} for r in batch]},
            )
            if len(batch) == 1:
                latencies.append((time.perf_counter() - t0) * 1000)
            problem = (body.get("error") or f"HTTP {code}") if code != 200 else _check_predictions(body, len(batch))
            if server.poll() is not None:
                problem = "server process ended while answering"
            if problem:
                what = ":predict" if len(batch) == 1 else f":predict of {len(batch)} examples"
                return failed(f"{what} failed (HTTP {code}): {problem}", load_seconds, latencies, no_answer=code == 0)
        return Attempt(
            True,
            f"loaded in {load_seconds:.1f} s; {len(examples)} examples answered",
            load_seconds,
            latencies,
            _tail(log),
        )
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def validate(
    saved_model_dir: Path, model_name: str, examples: list[bytes], settings: InfraValidationSettings, workdir: Path
) -> InfraVerdict:
    """Copy the candidate into a private model base path and try to serve it, up to `num_tries` times. The sandbox
    serves it under a name of its own, so no other server that happens to take the port can answer for it."""
    if settings.mode == "LOAD_AND_QUERY" and not examples:
        raise ValueError("LOAD_AND_QUERY needs at least one example")
    sandbox_name = f"{model_name}-infra-{uuid.uuid4().hex[:8]}"
    base = Path(workdir) / "model_base" / sandbox_name
    attempts: list[Attempt] = []
    try:
        shutil.copytree(saved_model_dir, base / str(SANDBOX_VERSION))
        for n in range(settings.num_tries):
            attempt = _attempt(base, sandbox_name, examples, settings, Path(workdir) / f"server-{n + 1}.log")
            attempts.append(attempt)
            if attempt.ok:
                break
    finally:
        shutil.rmtree(base.parent, ignore_errors=True)  # the copy; the server logs stay
    return InfraVerdict(attempts[-1].ok, attempts)
