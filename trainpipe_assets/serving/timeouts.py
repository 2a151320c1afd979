"""Time and size limits for slow, half-sent or oversized requests, which uvicorn does not have.

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

* the size of the request line and headers (httptools has no limit; h11's h11_max_incomplete_event_size answers 400):
  the same protocol counts the bytes of each request until its blank line; past `--max-header-bytes` it writes a 431
  with `connection: close`, reads and throws away what the client still sends for up to DISCARD_SECONDS (so the
  client reads the 431 rather than a connection reset), and closes. The parser never sees the oversized headers.

Not covered: a client that reads the *response* slowly (the answers are small, and the kernel buffers them); TLS
handshakes (`trainpipe serve` speaks plain HTTP). The guard reads only the protocol's `cycle`, `transport` and `loop`
and the cycle's `response_complete` / `response_started` / `more_body`, which both of uvicorn's HTTP/1.1 protocols
have."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Optional

BODY_GRACE_SECONDS = 5.0
DISCARD_SECONDS = 1.0
HEAD_END = b"\r\n\r\n"


def timeout_response(message: str, status: str = "408 Request Timeout") -> bytes:
    body = json.dumps({"error": message}).encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def guarded_protocol(header_timeout: float, body_timeout: float, max_header_bytes: int = 64 << 10) -> type:
    """uvicorn's HTTP protocol class with the header and body deadlines and the header size limit above; pass it as
    uvicorn.run(http=...)."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class GuardedHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        _guard: Optional[tuple[asyncio.TimerHandle, Any]] = None  # the timer and the state it was armed for
        _head_bytes = 0  # bytes of the current request's line and headers received so far
        _head_tail = b""  # the last 3 of them: a blank line may arrive split over two reads
        _discarding = False  # refused with a 431: what still comes is thrown away until the connection closes

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._rearm()

        def data_received(self, data: bytes) -> None:
            if self._discarding:
                return
            cycle = self.cycle  # a new request's head is coming (not the rest of a body answered early)
            heading = cycle is None or (cycle.response_complete and not cycle.more_body)
            if heading and self._head_too_large(data):
                self._refuse_head()
                return
            super().data_received(data)
            self._rearm()

        def _head_too_large(self, data: bytes) -> bool:
            """Count `data` towards the request's line and headers; whether they are now over max_header_bytes."""
            seen = self._head_tail + data
            end = seen.find(HEAD_END)
            if end < 0:
                self._head_bytes += len(data)
                self._head_tail = seen[-3:]
                return self._head_bytes > max_header_bytes
            size = self._head_bytes - len(self._head_tail) + end + len(HEAD_END)
            self._head_bytes, self._head_tail = 0, b""  # the next request counts from its own first byte
            return size > max_header_bytes

        def _refuse_head(self) -> None:
            self._disarm()
            self._discarding = True
            message = f"request headers over {max_header_bytes} bytes (--max-header-bytes)"
            self.transport.write(timeout_response(message, "431 Request Header Fields Too Large"))
            self.loop.call_later(DISCARD_SECONDS, self.transport.close)

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
