"""The fault matrix against real processes: each process killed or stopped at a bad moment.

What must hold every time: no request waits without end (it is answered, or its connection closes),
the service comes back by itself, and nothing is left behind. Timing comes from events (a token
read, a log line, the HailoRT double's journal), and every wait has a deadline.
A worker killed mid-stream is in test_service_faults.py; a compute thread hung in a device call in
test_compute_stall.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from double_service import double_service
from service import Service, image_data_url, wait_until

LONG = {
    "messages": [{"role": "user", "content": "Describe the shapes."}],
    "max_tokens": 2000,
    "min_tokens": 2000,
    "stream": True,
}
SHORT = {"messages": [{"role": "user", "content": "What color is the shape?"}], "max_tokens": 2}


def _health(service: Service) -> dict[str, Any]:
    body: dict[str, Any] = service.http.get("/health").json()
    return body


def _serves(service: Service) -> bool:
    return service.http.post("/v1/chat/completions", json=SHORT).status_code == 200


def _dead(pid: int) -> bool:
    """Gone, or a zombie its parent has not reaped yet (it may be reaped while we look)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _stream_until_first_token(service: Service, client: httpx.Client) -> Any:
    """A long streamed generation, read until its first token; the open stream is returned."""
    stream = client.send(client.build_request("POST", "/v1/chat/completions", json=LONG), stream=True)
    assert stream.status_code == 200
    lines = stream.iter_lines()
    while '"content":""' in (line := next(lines)) or not line.startswith("data: {"):
        pass
    return stream, lines


def test_a_stopped_worker_is_noticed_its_stream_ends_503_and_it_is_restarted(tmp_path: Path) -> None:
    service = Service(tmp_path, {"clip": {"enabled": False}}).wait_ready()
    try:
        with httpx.Client(base_url=service.base_url, timeout=60) as client:
            stream, lines = _stream_until_first_token(service, client)
            worker = service.child_pid("npu_worker.main")
            os.kill(worker, signal.SIGSTOP)
            rest = [line for line in lines if line.startswith("data: {")]
            stream.close()
        error = json.loads(rest[-1][6:])["error"]
        assert error["code"] == "worker_unavailable"
        wait_until(lambda: _dead(worker))
        service.wait_ready()
        assert _serves(service) and _health(service)["worker_restarts"] == 1
        assert "event=child_silent role=worker" in service.logs()
    finally:
        service.stop()


def test_a_killed_api_closes_its_connections_and_is_restarted(tmp_path: Path) -> None:
    service = Service(tmp_path, {"clip": {"enabled": False}}).wait_ready()
    try:
        up_before = _health(service)["uptime_seconds"]
        with httpx.Client(base_url=service.base_url, timeout=60) as client:
            stream, lines = _stream_until_first_token(service, client)
            os.kill(service.child_pid("api.main"), signal.SIGKILL)
            with pytest.raises(httpx.TransportError) as cut:
                for _ in lines:
                    pass
            assert not isinstance(cut.value, httpx.TimeoutException)  # closed, not left hanging
            stream.close()
        service.wait_ready()
        assert _serves(service)
        assert _health(service)["uptime_seconds"] >= up_before  # the service's uptime, not the new API's
    finally:
        service.stop()


def test_a_killed_supervisor_takes_its_children_along_and_frees_the_port(tmp_path: Path) -> None:
    service = Service(tmp_path, {"clip": {"enabled": False}}).wait_ready()
    children = [service.child_pid("api.main"), service.child_pid("npu_worker.main")]
    with httpx.Client(base_url=service.base_url, timeout=60) as client:
        _stream_until_first_token(service, client)  # a request in flight must not hold the API
        service.process.kill()
        service.process.wait()

        wait_until(lambda: all(_dead(p) for p in children), timeout_s=2.0)
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", service.port))
    service.stop()


def _journal(path: Path, event: str) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    entries = [json.loads(line) for line in path.read_text().splitlines() if line]
    return [e for e in entries if e["event"] == event]


def test_a_worker_killed_mid_clip_batch_fails_the_batch_fast_and_comes_back(tmp_path: Path) -> None:
    service, journal = double_service(tmp_path, HAILO_DOUBLE_INFER_DELAY_S="600")
    try:
        service.wait_ready()
        url, _ = image_data_url(7)
        replies: list[httpx.Response] = []
        request = threading.Thread(
            target=lambda: replies.append(
                service.http.post("/v1/embeddings/image", json={"images": [url]}, timeout=60)
            )
        )
        request.start()
        wait_until(lambda: _journal(journal, "infer"))  # the encoder batch is running on the device
        service.kill_worker()
        request.join(60)
        assert not request.is_alive()
        assert (replies[0].status_code, replies[0].json()["error"]["code"]) == (503, "worker_unavailable")
        service.wait_ready()
        assert _health(service)["worker_restarts"] == 1
    finally:
        service.stop()


def test_a_worker_killed_mid_load_is_restarted_and_the_waiting_request_served(tmp_path: Path) -> None:
    service, _ = double_service(tmp_path, HAILO_DOUBLE_LOAD_S="3")
    try:
        wait_until(lambda: _state(service) == "loading", timeout_s=60)
        replies: list[int] = []
        request = threading.Thread(
            target=lambda: replies.append(
                service.http.post("/v1/chat/completions", json=SHORT, timeout=120).status_code
            )
        )
        request.start()
        wait_until(lambda: _health(service)["scheduler"]["queued"] >= 1)  # waiting for its turn
        service.kill_worker()
        request.join(120)
        assert replies == [200]  # the restarted worker loaded and served it
        assert _health(service)["worker_restarts"] == 1
    finally:
        service.stop()


def _state(service: Service) -> str | None:
    try:
        return str(_health(service)["state"])
    except httpx.TransportError:
        return None
