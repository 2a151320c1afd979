"""Time limits for slow or half-sent requests, which uvicorn does not have.

What uvicorn (0.29 to 0.54, httptools or h11) offers: `timeout_keep_alive` closes a connection idle *between*
requests -- armed only once a response has been sent, and disarmed by any byte received. Nothing times out a
connection that sends nothing after connecting, sends its request line and headers slowly or never finishes them, or
never finishes its body; h11's `h11_max_incomplete_event_size` caps the size of the headers, not their time, and
httptools has no such cap. So a client could hold a connection (and, mid-body, a request) open forever. Here:

* the body: app.py reads it under asyncio.wait_for (`--body-timeout-seconds`, the whole body, not per chunk) and
  answers 408 with `connection: close`;
* the headers: guarded_protocol() subclasses the HTTP protocol uvicorn would pick (httptools', else h11's). From the
  connection being made, or the first byte of a next request on a kept-alive connection, the request line and headers
  must be complete within `--header-timeout-seconds`, else the server writes a 408 and closes the connection;
* a body nobody reads (e.g. a GET with a content-length, answered at once) or a handler that never answers 408: the
  same guard closes a connection whose request body is still incomplete `body_timeout + BODY_GRACE_SECONDS` after
  its headers, so the handler's JSON 408 comes first when it is reading.

Not covered: a client that reads the *response* slowly (the answers are small, and the kernel buffers them); the
total size of the headers under httptools (bounded only by what arrives within the header timeout); TLS handshakes
(`trainpipe serve` speaks plain HTTP). The guard reads only the protocol's `cycle`, `transport` and `loop` and the
cycle's `response_complete` / `response_started` / `more_body`, which both of uvicorn's HTTP/1.1 protocols have."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Optional

BODY_GRACE_SECONDS = 5.0


def timeout_response(message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def guarded_protocol(header_timeout: float, body_timeout: float) -> type:
    """uvicorn's HTTP protocol class with the header and body deadlines above; pass it as uvicorn.run(http=...)."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class GuardedHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        _guard: Optional[tuple[asyncio.TimerHandle, Any]] = None  # the timer and the state it was armed for

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._rearm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._rearm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _state(self):
            """("headers", last cycle): waiting for a request's headers; ("body", cycle): headers read, body not
            complete; None: the request is read and the application has it (its business, not a client's)."""
            cycle = self.cycle
            if cycle is None or cycle.response_complete:
                return ("headers", cycle)
            return ("body", cycle) if cycle.more_body else None

        def _disarm(self) -> None:
            if self._guard is not None:
                self._guard[0].cancel()
                self._guard = None

        def _rearm(self) -> None:
            state = self._state()
            if self._guard is not None and self._guard[1] == state:
                return  # the same phase of the same request: its deadline stands
            self._disarm()
            if state is not None and not self.transport.is_closing():
                seconds = header_timeout if state[0] == "headers" else body_timeout + BODY_GRACE_SECONDS
                self._guard = (self.loop.call_later(seconds, self._expired, state), state)

        def _expired(self, state) -> None:
            self._guard = None
            if self.transport.is_closing() or self._state() != state:
                return  # moved on without a byte from the client (e.g. answered): the next byte rearms
            if state[0] == "headers":  # no response is under way: one can be written
                message = f"request headers not received within {header_timeout:g} s (--header-timeout-seconds)"
                self.transport.write(timeout_response(message))
            self.transport.close()  # mid-body: the handler's task sees a disconnect

    return GuardedHTTPProtocol
