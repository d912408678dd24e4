"""The real service tells systemd the truth: READY=1 once its model is ready, STATUS on the way."""

import socket
import time
from pathlib import Path

import httpx
from service import Service


def test_ready_is_sent_once_the_model_is_ready(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    listener.settimeout(30)
    service = Service(tmp_path, {"clip": {"enabled": False}}, env={"NOTIFY_SOCKET": str(path)})
    try:
        messages: list[str] = []
        while "READY=1" not in messages:
            messages.extend(listener.recv(4096).decode().split("\n"))
        ready = httpx.get(f"{service.base_url}/health/ready", timeout=5)
        assert ready.status_code == 200  # READY=1 was not premature
        statuses = [m for m in messages if m.startswith("STATUS=")]
        assert any("loading" in s or "starting" in s for s in statuses), statuses
        listener.settimeout(1.5)
        later: list[str] = []
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            try:
                later.extend(listener.recv(4096).decode().split("\n"))
            except TimeoutError:
                break
        assert "READY=1" not in later
    finally:
        assert service.stop() == 0
        listener.close()
