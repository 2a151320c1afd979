"""TFX InfraValidator without Docker: a candidate SavedModel served by a separate `trainpipe serve` process (its own
address-space limit, a free loopback port), loaded within a deadline and, in LOAD_AND_QUERY mode, queried with real
raw examples through TF Serving's REST API. Retried up to `num_tries`; the verdict keeps the reasons and a log tail."""
from __future__ import annotations

import base64
import json
import math
import resource
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .config import InfraValidationSettings

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(url: str, body: Optional[dict] = None, timeout: float = 30.0) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read())
        except ValueError:
            return e.code, {"error": f"HTTP {e.code}"}


def _limit_memory(megabytes: int):
    def apply() -> None:  # runs in the child between fork and exec
        limit = megabytes << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


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


def _attempt(base: Path, model_name: str, examples: list[bytes], settings: InfraValidationSettings, log: Path) -> Attempt:
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "trainpipe_assets.cli", "serve", "--model-name", model_name,
        "--model-base-path", str(base), "--port", str(port), "--poll-seconds", "0.5",
    ]
    started = time.perf_counter()
    with open(log, "ab") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_limit_memory(settings.memory_limit_mb))
    try:
        while True:
            elapsed = time.perf_counter() - started
            if server.poll() is not None:
                return Attempt(False, f"server process exited with code {server.returncode} while loading", log_tail=_tail(log))
            if elapsed > settings.max_loading_time_seconds:
                return Attempt(False, f"model not loaded within max_loading_time_seconds={settings.max_loading_time_seconds:g}", log_tail=_tail(log))
            try:
                code, health = _http(f"{root}/healthz", timeout=5)
            except OSError:
                code, health = 0, {}
            if health.get("errors"):
                return Attempt(False, f"version failed to load: {health['errors']}", log_tail=_tail(log))
            if code == 200:
                break
            time.sleep(0.25)
        load_seconds = time.perf_counter() - started
        if settings.mode == "LOAD_ONLY":
            return Attempt(True, f"loaded in {load_seconds:.1f} s", load_seconds, log_tail=_tail(log))
        latencies = []
        for record in examples:  # one example per request, as an online client sends them
            t0 = time.perf_counter()
            try:
                code, body = _http(f"{root}/v1/models/{model_name}:predict", {"instances": [{"b64": base64.b64encode(record).decode()}]})
            except OSError as e:
                code, body = 0, {"error": f"{type(e).__name__}: {e}"}
            latencies.append((time.perf_counter() - t0) * 1000)
            problem = body.get("error") if code != 200 else _check_predictions(body, 1)
            if server.poll() is not None:
                problem = f"server process exited with code {server.returncode} while answering"
            if problem:
                return Attempt(False, f":predict failed (HTTP {code}): {problem}", load_seconds, latencies, _tail(log))
        batch = {"instances": [{"b64": base64.b64encode(r).decode()} for r in examples]}
        code, body = _http(f"{root}/v1/models/{model_name}:predict", batch)
        problem = body.get("error") if code != 200 else _check_predictions(body, len(examples))
        if problem:
            return Attempt(False, f":predict of {len(examples)} examples failed (HTTP {code}): {problem}", load_seconds, latencies, _tail(log))
        return Attempt(True, f"loaded in {load_seconds:.1f} s; {len(examples)} examples answered", load_seconds, latencies, _tail(log))
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def validate(saved_model_dir: Path, model_name: str, examples: list[bytes], settings: InfraValidationSettings, workdir: Path) -> InfraVerdict:
    """Copy the candidate into a private model base path and try to serve it, up to `num_tries` times."""
    if settings.mode == "LOAD_AND_QUERY" and not examples:
        raise ValueError("LOAD_AND_QUERY needs at least one example")
    base = Path(workdir) / "model_base" / model_name
    if base.exists():
        shutil.rmtree(base)
    shutil.copytree(saved_model_dir, base / str(SANDBOX_VERSION))
    attempts = []
    for n in range(settings.num_tries):
        attempt = _attempt(base, model_name, examples, settings, Path(workdir) / f"server-{n + 1}.log")
        attempts.append(attempt)
        if attempt.ok:
            break
    shutil.rmtree(base.parent, ignore_errors=True)
    return InfraVerdict(attempts[-1].ok, attempts)
