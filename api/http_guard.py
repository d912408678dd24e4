"""uvicorn's httptools protocol with the bounds it lacks against slow and hostile clients.

uvicorn bounds an idle keep-alive connection (`api.keep_alive_s`) and the requests at once, but not
a request head that never ends, nor idle connections piling up, nor a client that stops reading its
answer, nor a body sent after its early answer. Here:
- at most `api.max_connections` connections: one more closes the connection idle the longest (for
  a second at least: between requests, or whose head has not ended), so idle connections never lock
  out working clients; with none idle, its request is answered 503 `overloaded` and it is closed.
  Nothing is ever closed with a request unanswered in it: that is a lost request, not a refusal;
- the request head must arrive whole within `api.header_timeout_s` (408) and `api.max_header_bytes`
  (431), counted from the connection or the request's first byte: a trickled or endless head, or a
  connection that never sends anything, is closed;
- a client that leaves its answer unread for `api.send_timeout_s` (the socket's send buffer full)
  is cut off, which ends its request like any client gone;
- a body still arriving after its answer (413 from the declared length, 401, ...) is read and thrown
  away up to `api.max_body_bytes` more bytes within `api.header_timeout_s`, then the connection closes:
  a client that sends its whole body before reading (Python's urllib) gets its answer, not a reset.
Each connection closed this way is counted by reason (`hailo_vision_connections_closed`) and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import socket
import struct
import termios
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from api.errors import APIError
from api.metrics import Metrics
from npu_worker.config import ApiConfig
from npu_worker.logs import log_event

log = logging.getLogger("api.http")
OVERLOADED = "hailo_vision.overloaded"  # set in a request's scope: the app answers it 503
EVICTABLE_IDLE_S = 1.0  # a connection idle this long may be closed to make room (never a fresher one)
EVICTION_SCAN = 32  # idle connections looked at for one that really is (no request waiting unread)
# What a client that stops reading can hold of its answers, in the kernel and here, before
# api.send_timeout_s starts to count: answers are small and streams slow, so this costs no speed.
SEND_BUFFER_BYTES = 32 * 1024


class GuardedHttpTools(HttpToolsProtocol):
    limits: ClassVar[ApiConfig] = ApiConfig()  # set by `guarded_protocol`, with its own registry:
    idle: ClassVar[dict[GuardedHttpTools, float]] = {}  # connections between requests -> since when
    metrics: ClassVar[Metrics]  # counts each connection closed here, by reason

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._send_timer: asyncio.TimerHandle | None = None
        self._drain_left: int | None = None  # bytes of an answered request's body still allowed
        self._drain_timer: asyncio.TimerHandle | None = None
        self._close_after = False  # the client asked for close: close once its body is drained
        self._over_limit = False  # came past max_connections with none to close: answered 503

    # --- the request head ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        transport.set_write_buffer_limits(high=SEND_BUFFER_BYTES)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        if len(self.connections) > self.limits.max_connections:
            self._make_room()
        self._rest()
        self._start_head()

    def _make_room(self) -> None:
        """Close the oldest connection that is really idle; else this one's request is refused."""
        now = self.loop.time()
        for candidate, since in list(self.idle.items())[:EVICTION_SCAN]:
            if now - since < EVICTABLE_IDLE_S:
                break  # the rest are younger still
            if candidate._unread():
                continue  # its request came and waits for a busy loop: closing it would lose it
            open_now = len(self.connections)
            log_event(log, "idle_connection_closed", client=candidate._peer(), connections=open_now)
            self.metrics.connection_closed("idle_evicted")
            candidate._forget()
            candidate.transport.close()
            return
        self._over_limit = True

    def _unread(self) -> int:
        """Bytes the kernel holds for this connection that the loop has not read yet."""
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return 0
        with contextlib.suppress(OSError):
            answer = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
            return int(struct.unpack("i", answer)[0])
        return 0

    def _rest(self) -> None:
        """Between requests now (the oldest first in `idle`)."""
        self.idle[self] = self.loop.time()

    def _forget(self) -> None:
        self.idle.pop(self, None)

    def _start_head(self) -> None:
        self._head_bytes = 0
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_too_slow)

    def _end_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_head()

    def on_headers_complete(self) -> None:
        self._end_head()
        self._forget()
        self._close_after = self._over_limit
        if self._over_limit:
            self.scope[OVERLOADED] = True  # type: ignore[literal-required]
        super().on_headers_complete()
        if self.cycle is not None and not self.cycle.keep_alive:
            self._close_after, self.cycle.keep_alive = True, True  # closed by us, once the body is in

    def data_received(self, data: bytes) -> None:
        if self._drain_left is not None:
            self._drain_left -= len(data)
            if self._drain_left < 0:
                self.transport.close()  # more body than we throw away: the client loses its answer
                self.metrics.connection_closed("body_over_drain")
                return
        super().data_received(data)
        if self._head_timer is not None and not self.transport.is_closing():
            self._head_bytes += len(data)  # this data was all head: it has not ended yet
            if self._head_bytes > self.limits.max_header_bytes:
                limit = self.limits.max_header_bytes
                self._refuse(431, f"the request head is larger than {limit} bytes", "header_too_large")

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.cycle is None or self.cycle.response_complete:
            if self._head_bytes == 0 and self.cycle is None:
                self.transport.close()  # connected and never said anything: no answer is owed
                self.metrics.connection_closed("silent")
                return
            timeout = self.limits.header_timeout_s
            self._refuse(408, f"the request head did not arrive within {timeout:g} s", "request_timeout")

    def _refuse(self, status: int, message: str, code: str) -> None:
        """Answer a request that never reached the app (OpenAI's error body), and close."""
        body = json.dumps(APIError(status, message, code).body()).encode()
        head = b"content-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n"
        self.transport.write(STATUS_LINE[status] + head % len(body) + body)
        self.transport.close()
        self.metrics.connection_closed(code)
        log_event(log, "request_refused", logging.WARNING, status=status, code=code, client=self._peer())

    # --- an answer sent before its body was read ----------------------------------------------------

    def on_response_complete(self) -> None:
        cycle = self.cycle
        if cycle is not None and cycle.more_body and not self.transport.is_closing():
            self._drain_left = self.limits.max_body_bytes  # keep reading: a close now would reset
            self._drain_timer = self.loop.call_later(self.limits.header_timeout_s, self.transport.close)
        elif self._close_after:
            self.transport.close()
            return
        super().on_response_complete()
        if self._drain_left is None and not self.transport.is_closing():
            self._rest()

    def on_message_complete(self) -> None:
        draining = self._drain_left is not None
        super().on_message_complete()
        if draining:
            self._drain_left = None
            if self._drain_timer is not None:
                self._drain_timer.cancel()
                self._drain_timer = None
            if self._close_after:
                self.transport.close()
            else:
                self._rest()

    # --- a client that does not read ------------------------------------------------------------------

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_timer is None:
            self._send_timer = self.loop.call_later(self.limits.send_timeout_s, self._not_reading)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def _not_reading(self) -> None:
        self._send_timer = None
        seconds = self.limits.send_timeout_s
        log_event(log, "client_not_reading", logging.WARNING, client=self._peer(), s=seconds)
        self.metrics.connection_closed("client_not_reading")
        self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        for timer in (self._head_timer, self._send_timer, self._drain_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._send_timer = self._drain_timer = None
        super().connection_lost(exc)

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "?"


def guarded_protocol(limits: ApiConfig, metrics: Metrics) -> type[GuardedHttpTools]:
    """The protocol class uvicorn instantiates per connection, with this service's limits."""
    return type("GuardedHttpTools", (GuardedHttpTools,), {"limits": limits, "idle": {}, "metrics": metrics})
