"""A small JSON client for `trainpipe serve` (used by the infra validator and the demo). free_port is re-exported
from trainpipe_assets.core.net, the one free-port helper, for callers that start a server and then ask it."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Optional

from trainpipe_assets.core.net import free_port

__all__ = ["HTTP_ERRORS", "free_port", "http_json"]

HTTP_ERRORS = (OSError, http.client.HTTPException, ValueError)  # refused, reset, timed out, not JSON


def http_json(url: str, body: Optional[dict] = None, timeout: float = 30.0) -> tuple[int, dict]:
    """(status, JSON body) of a GET, or a POST of `body`; (0, {"error": ...}) when there is no HTTP answer at all."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read())
        except HTTP_ERRORS:
            return e.code, {"error": f"HTTP {e.code}"}
    except HTTP_ERRORS as e:
        return 0, {"error": f"{type(e).__name__}: {e}"}
