"""Slow and hostile clients against the real service: every one is bounded, and the others are served.

Raw sockets play the clients no library would be: a head or a body trickled a byte at a time, a head
without end, idle connections by the hundred, a stream nobody reads. Each test waits for the event it
expects (the server's answer or its close) with a deadline, never for a time.
"""

from __future__ import annotations

import contextlib
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from service import Service, wait_until

LIMITS = {
    "header_timeout_s": 1.0,
    "max_header_bytes": 4096,
    "body_timeout_s": 1.0,
    "send_timeout_s": 1.0,
    "max_connections": 40,
    "max_body_bytes": 200_000,
}
CHAT = {"messages": [{"role": "user", "content": "What color is the shape?"}], "max_tokens": 2}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = Service(tmp_path_factory.mktemp("guarded"), {"clip": {"enabled": False}, "api": LIMITS})
    yield running.wait_ready()
    running.stop()


def _connect(service: Service, receive_buffer: int | None = None) -> socket.socket:
    client = socket.socket()
    if receive_buffer is not None:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    client.connect(("127.0.0.1", service.port))
    client.settimeout(30)  # the deadline for every answer below
    return client


def _answer(client: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := client.recv(65536):
        received += chunk
    return received


def _status_and_code(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["error"]["code"]


def _closed(service: Service, reason: str) -> float:
    """hailo_vision_connections_closed_total{reason=...} as /metrics shows it now."""
    prefix = f'hailo_vision_connections_closed_total{{reason="{reason}"}} '
    lines = [line for line in service.http.get("/metrics").text.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


def _still_serves(service: Service) -> None:
    assert service.http.post("/v1/chat/completions", json=CHAT).status_code == 200


def test_a_client_that_sends_its_whole_body_before_reading_gets_the_413(guarded: Service) -> None:
    """Python's urllib sends all of it (and Connection: close) before it reads a byte."""
    request = urllib.request.Request(
        f"{guarded.base_url}/v1/chat/completions", data=b"x" * 390_000, headers={"Content-Type": "x"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 413
    assert json.loads(refused.value.read())["error"]["code"] == "body_too_large"


def test_a_trickled_head_is_cut_at_its_deadline_while_others_are_served(guarded: Service) -> None:
    with _connect(guarded) as slow:
        slow.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        _still_serves(guarded)
        assert _status_and_code(_answer(slow)) == (408, "request_timeout")
    assert _closed(guarded, "request_timeout") >= 1


def test_a_head_without_end_is_cut_off_with_431(guarded: Service) -> None:
    with _connect(guarded) as endless:
        endless.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        with contextlib.suppress(OSError):  # the server may close while the header still comes
            endless.sendall(b"".join(b"X-Filler: " + b"a" * 1000 + b"\r\n" for _ in range(100)))
        with contextlib.suppress(ConnectionResetError):  # closed with the flood unread: a reset
            assert _status_and_code(_answer(endless)) == (431, "header_too_large")
    wait_until(lambda: "event=request_refused status=431" in guarded.logs())
    assert _closed(guarded, "header_too_large") >= 1
    _still_serves(guarded)


def test_a_trickled_body_is_408(guarded: Service) -> None:
    body = json.dumps(CHAT).encode()
    with _connect(guarded) as slow:
        head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
        slow.sendall(head.encode() + body[:10])
        assert _status_and_code(_one_answer(slow)) == (408, "request_timeout")


def test_idle_connections_by_the_hundred_neither_lock_others_out_nor_grow_memory(guarded: Service) -> None:
    """300 keep-alive connections, each idle after one request, against max_connections 40: each of
    their requests is answered (200, or 503 overloaded past the bound), and once they have idled a
    second a new client gets in by closing one of them."""
    api = psutil.Process(guarded.child_pid("api.main"))
    before = api.memory_info().rss
    idle = [_connect(guarded) for _ in range(300)]
    try:
        statuses = set()
        for connection in idle:
            connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            statuses.add(int(_one_answer(connection).split()[1]))
        assert statuses <= {200, 503} and 200 in statuses
        wait_until(lambda: _serves(guarded), timeout_s=10)  # the idle ones make room
        assert "event=idle_connection_closed" in guarded.logs() and _closed(guarded, "idle_evicted") >= 1
        assert api.memory_info().rss - before < 16 * 2**20
    finally:
        for connection in idle:
            connection.close()


def _one_answer(connection: socket.socket) -> bytes:
    """One answer read off a connection kept open: its head, then its body by Content-Length."""
    received = b""
    while b"\r\n\r\n" not in received and (chunk := connection.recv(65536)):
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lengths = [line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")]
    while len(body) < int(lengths[0].split(b":")[1]) and (chunk := connection.recv(65536)):
        body += chunk
    return head + b"\r\n\r\n" + body


def _serves(service: Service) -> bool:
    return service.http.post("/v1/chat/completions", json=CHAT).status_code == 200


def test_a_stream_nobody_reads_is_cut_off_and_its_generation_stopped(guarded: Service) -> None:
    body = json.dumps({**CHAT, "max_tokens": 2000, "min_tokens": 2000, "stream": True}).encode()
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    with _connect(guarded, receive_buffer=4096) as deaf:
        deaf.sendall(head.encode() + body)
        wait_until(lambda: "client_not_reading" in guarded.logs(), timeout_s=60)
    assert _closed(guarded, "client_not_reading") >= 1
    wait_until(lambda: _health(guarded)["in_flight"] == 0, timeout_s=30)
    _still_serves(guarded)


def test_every_answer_has_one_request_id(guarded: Service) -> None:
    for path in ("/health", "/v1/models/nonexistent"):
        response = guarded.http.get(path)
        assert len(response.headers.get_list("x-request-id")) == 1


def _health(service: Service) -> dict[str, Any]:
    body: dict[str, Any] = service.http.get("/health").json()
    return body
