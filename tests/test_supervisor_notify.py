"""sd_notify as systemd sees it, read from a real datagram socket passed as $NOTIFY_SOCKET."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest
from supervisor_testkit import NotifyListener, RunningSupervisor

from supervisor.notify import Notifier, watchdog_interval_s


def test_watchdog_interval_is_half_of_watchdog_usec_and_only_for_this_process() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "400000"}, pid=42) == 0.2
    assert watchdog_interval_s({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "42"}, pid=42) == 0.2
    assert watchdog_interval_s({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "7"}, pid=42) is None
    assert watchdog_interval_s({}, pid=42) is None


def test_notifier_reaches_an_abstract_socket_and_sends_ready_and_unchanged_status_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"hailo-vision-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        notifier = Notifier()
        for _ in range(2):
            notifier.status("loading fake-vlm")
            notifier.ready()
        notifier.status("ready, 0 in flight, 0 queued")
        systemd.setblocking(False)
        received = []
        while True:
            try:
                received.append(systemd.recv(4096).decode())
            except BlockingIOError:
                break
    assert received == ["STATUS=loading fake-vlm", "READY=1", "STATUS=ready, 0 in flight, 0 queued"]


def test_notify_sequence_from_start_to_silence_to_stop(tmp_path: Path) -> None:
    with (
        NotifyListener(tmp_path / "notify.sock") as notify,
        RunningSupervisor(
            tmp_path,
            api="--in-flight 2 --queued 1",
            worker="--states npu_busy:0.6,loading:1.0,ready --silent-after 3.5",
            NOTIFY_SOCKET=str(notify.path),
            WATCHDOG_USEC="400000",
        ) as supervisor,
    ):
        not_responding = "STATUS=worker not responding"
        supervisor.wait_until(lambda: notify.times(not_responding), timeout_s=30)
        # The silent worker is killed and started again (it is stopped, or its loop is blocked).
        supervisor.wait_until(lambda: len(supervisor.events("worker", "start")) >= 2, timeout_s=30)
        supervisor.signal(signal.SIGTERM)
        assert supervisor.wait() == 0

    (ready_at,) = notify.times("READY=1")
    worker_ready = supervisor.events("worker", "state-ready")[0]  # (the restarted worker may be ready too)
    (api_listening,) = supervisor.events("api", "state-listening")
    assert ready_at > worker_ready.at and ready_at > api_listening.at

    lines = [line for _, line in notify.messages]
    ready = lines.index("READY=1")
    assert lines.count("READY=1") == 1
    assert lines[0] == "STATUS=starting"
    assert "STATUS=NPU busy: held by another process" in lines[:ready]
    assert "STATUS=loading fake-vlm" in lines[:ready]
    extensions = [i for i, line in enumerate(lines) if line.startswith("EXTEND_TIMEOUT_USEC=")]
    assert extensions and max(extensions) < ready
    assert lines[extensions[0]] == "EXTEND_TIMEOUT_USEC=15000000"
    assert "STATUS=ready, 2 in flight, 1 queued" in lines

    silent = supervisor.events("worker", "silent")[0]
    pings = notify.times("WATCHDOG=1")
    assert len([t for t in pings if ready_at < t < silent.at]) >= 2
    (killed, *_) = supervisor.logs("child_silent", role="worker")
    assert killed["pid"] == silent.pid and killed["reason"].startswith("silent for more than")
    exits = supervisor.logs("child_exited", role="worker", pid=silent.pid)
    assert exits and exits[0]["signal"] == "SIGKILL"

    assert [line for line in lines if line != "WATCHDOG=1"][-3:] == [
        "STOPPING=1",
        "STATUS=stopping (SIGTERM received): waiting for api",
        "STATUS=stopping (SIGTERM received): waiting for worker",
    ]


def test_ready_waits_until_the_api_has_seen_the_worker_ready(tmp_path: Path) -> None:
    """/health/ready answers from the API's view of the worker: READY=1 must not come before it."""
    with (
        NotifyListener(tmp_path / "notify.sock") as notify,
        RunningSupervisor(
            tmp_path, api="--sees-worker-after 1.5", NOTIFY_SOCKET=str(notify.path)
        ) as supervisor,
    ):
        supervisor.wait_until(lambda: notify.times("READY=1"), timeout_s=30)
        supervisor.signal(signal.SIGTERM)
        assert supervisor.wait() == 0
    (ready_at,) = notify.times("READY=1")
    worker_ready = supervisor.events("worker", "state-ready")[0]  # (the restarted worker may be ready too)
    (api_started,) = supervisor.events("api", "start")
    assert ready_at >= api_started.at + 1.5  # the API saw the worker only then: READY=1 waited for it
    assert ready_at >= worker_ready.at
