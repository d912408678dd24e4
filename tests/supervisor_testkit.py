"""Helpers for the supervisor tests: run the harness as a real process, read its log lines, the fake
children's event records, and the sd_notify datagrams it sends to a socket the test binds."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
HARNESS = TESTS / "supervisor_harness.py"
_INHERITED_SYSTEMD = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "RUNTIME_DIRECTORY")

# Fast but not hair-trigger: restarts in tenths of a second, no flapping unless a test asks.
FAST_CONFIG = {
    "HAILO_VISION_LOGGING_FORMAT": "json",
    "HAILO_VISION_WORKER_HEARTBEAT_INTERVAL_S": "0.1",
    "HAILO_VISION_WORKER_HEARTBEAT_TIMEOUT_S": "1.0",
    "HAILO_VISION_SUPERVISOR_RESTART_INITIAL_S": "0.1",
    "HAILO_VISION_SUPERVISOR_RESTART_MAX_S": "0.8",
    "HAILO_VISION_SUPERVISOR_FLAP_DEATHS": "50",
    "HAILO_VISION_SUPERVISOR_FLAP_WINDOW_S": "60",
    "HAILO_VISION_API_DRAIN_TIMEOUT_S": "2",
}


def base_environment(**overrides: str) -> dict[str, str]:
    """This process's environment without systemd's or hailo-vision's variables, plus FAST_CONFIG."""
    inherited = {k: v for k, v in os.environ.items() if k not in _INHERITED_SYSTEMD}
    env = {k: v for k, v in inherited.items() if not k.startswith("HAILO_VISION_")}
    env["HAILO_VISION_CONFIG"] = str(REPO / "etc" / "config.yaml")
    env.update(FAST_CONFIG)
    env.update(overrides)
    return env


@dataclass
class Event:
    role: str
    what: str
    pid: int
    at: float


class RunningSupervisor:
    """The harness process (in its own session, like a service or a shell job) and its records."""

    def __init__(self, tmp: Path, api: str = "", worker: str = "", grace_s: float = 5.0, **env: str) -> None:
        self.log_path = tmp / "supervisor.log"
        self.events_path = tmp / "events.txt"
        argv = [sys.executable, str(HARNESS), f"--events={self.events_path}", f"--api={api}"]
        argv += [f"--worker={worker}", f"--api-grace={grace_s}", f"--worker-grace={grace_s}"]
        with open(self.log_path, "wb") as log:
            env_vars = base_environment(**env)
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env_vars, start_new_session=True
            )

    def logs(self, event: str | None = None, **match: Any) -> list[dict[str, Any]]:
        """The supervisor's own log lines (JSON), optionally only one event with matching fields."""
        lines = []
        for text in self.log_path.read_text(encoding="utf-8").splitlines():
            if text.startswith("{"):
                line = json.loads(text)
                if line.get("proc") != "supervisor" or (event and line["event"] != event):
                    continue
                if all(line.get(k) == v for k, v in match.items()):
                    lines.append(line)
        return lines

    def events(self, role: str | None = None, what: str | None = None) -> list[Event]:
        if not self.events_path.exists():
            return []
        found = []
        for text in self.events_path.read_text(encoding="utf-8").splitlines():
            r, w, pid, at = text.split()
            if (role is None or r == role) and (what is None or w == what):
                found.append(Event(r, w, int(pid), float(at)))
        return found

    def wait_until(self, condition: Callable[[], Any], timeout_s: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = condition()
            if result:
                return result
            if self.process.poll() is not None:
                raise AssertionError(f"supervisor exited ({self.process.returncode}):\n{self.output()}")
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {condition}:\n{self.output()}")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def ctrl_c(self) -> None:
        """SIGINT to the whole foreground process group, as a terminal's Ctrl-C does."""
        os.killpg(self.process.pid, signal.SIGINT)

    def wait(self, timeout_s: float = 30.0) -> int:
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"supervisor still running after {timeout_s} s:\n{self.output()}") from None

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8")[-6000:]

    def __enter__(self) -> RunningSupervisor:
        return self

    def __exit__(self, *_exc: object) -> None:
        """Make sure nothing is left running (after a failed test)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class NotifyListener:
    """A unix datagram socket standing in for systemd's $NOTIFY_SOCKET; keeps (time, line) pairs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[tuple[float, str]] = []
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(str(path))
        self._socket.settimeout(0.1)
        self._closed = False
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        while not self._closed:
            try:
                data = self._socket.recv(4096)
            except TimeoutError:
                continue
            now = time.monotonic()
            self.messages.extend((now, line) for line in data.decode().splitlines())

    def lines(self, prefix: str = "") -> list[str]:
        return [line for _, line in list(self.messages) if line.startswith(prefix)]

    def times(self, line_prefix: str) -> list[float]:
        return [t for t, line in list(self.messages) if line.startswith(line_prefix)]

    def __enter__(self) -> NotifyListener:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._closed = True
        self._thread.join()
        self._socket.close()
