"""The degradation ladder through the running service: every rung reached and left, visible everywhere.

Temperatures come from a fake sysfs file and a fake `vcgencmd` the test writes; memory is the real
memory of the real processes, judged against budgets the test picks so that a level is reached.
Waits are for the service to show the new reading, never sleeps.
"""

from __future__ import annotations

import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from service import Service, image_data_url, wait_until


class NotifyListener:
    """systemd's notify socket, read in the background: every STATUS= line the service sends."""

    def __init__(self, path: Path) -> None:
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(path))
        self.socket.settimeout(0.2)
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.lines.extend(self.socket.recv(4096).decode().split("\n"))
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.socket.close()


class HotPi:
    """A service whose SoC temperature and throttling flags the test sets."""

    def __init__(self, tmp: Path) -> None:
        self.temp_file = tmp / "thermal_zone0_temp"
        self.throttled_file = tmp / "throttled"
        vcgencmd = tmp / "vcgencmd"
        vcgencmd.write_text(f'#!/bin/sh\necho "throttled=$(cat {self.throttled_file})"\n')
        vcgencmd.chmod(vcgencmd.stat().st_mode | stat.S_IEXEC)
        self.set(50.0, 0)
        self.notify = NotifyListener(tmp / "notify.sock")
        config = {
            "thermal": {
                "poll_s": 0.1,
                "soc_temp_file": str(self.temp_file),
                "vcgencmd": str(vcgencmd),
                "warning_max_tokens": 1,
            }
        }
        self.service = Service(tmp, config, env={"NOTIFY_SOCKET": str(tmp / "notify.sock")}).wait_ready()

    def set(self, celsius: float, throttled: int) -> None:
        self.temp_file.write_text(f"{int(celsius * 1000)}\n")
        self.throttled_file.write_text(f"{throttled:#x}\n")

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = self.service.http.get("/health").json()
        return body

    def reaches(self, celsius: float, throttled: int = 0) -> dict[str, Any]:
        """Set the readings and wait until the service has taken them in; its /health then."""
        self.set(celsius, throttled)

        def taken() -> dict[str, Any] | None:
            health = self.health()
            return health if health["thermal"]["soc_c"] == celsius else None

        result: dict[str, Any] = wait_until(taken, timeout_s=30)
        return result

    def chat(self) -> httpx.Response:
        url, _ = image_data_url(5)
        question = {"type": "text", "text": "Hi, who are you?"}  # answered in a few words, more than the cap
        content = [{"type": "image_url", "image_url": {"url": url}}, question]
        body = {"messages": [{"role": "user", "content": content}], "max_tokens": 20, "temperature": 0}
        return self.service.http.post("/v1/chat/completions", json=body)

    def sent_status(self, part: str) -> str:
        """Wait until the service has told systemd a STATUS= line containing `part`; that line."""

        def sent() -> str | None:
            return next((x for x in list(self.notify.lines) if x.startswith("STATUS=") and part in x), None)

        line: str = wait_until(sent, timeout_s=30)
        return line

    def stop(self) -> None:
        self.service.stop()
        self.notify.close()


@pytest.fixture
def hot_pi(tmp_path: Path) -> Iterator[HotPi]:
    pi = HotPi(tmp_path)
    yield pi
    pi.stop()


def test_warm_caps_hot_pauses_and_cooling_past_the_band_recovers(hot_pi: HotPi) -> None:
    normal = hot_pi.reaches(50.0)
    assert (normal["state"], normal["scheduler"]["rung"], normal["thermal"]["level"]) == (
        "ready",
        "normal",
        "normal",
    )

    warm = hot_pi.reaches(76.0)
    assert (warm["state"], warm["scheduler"]["rung"]) == ("degraded", "capped")
    assert "SoC 76.0 C (warning)" in warm["scheduler"]["reasons"]
    assert hot_pi.service.http.get("/health/ready").status_code == 200  # degraded, still serving
    answer = hot_pi.chat()
    assert answer.status_code == 200 and answer.json()["usage"]["completion_tokens"] == 1
    metrics = hot_pi.service.http.get("/metrics").text
    assert 'hailo_vision_degradation_rung{rung="capped"} 1.0' in metrics
    assert 'hailo_vision_temperature_celsius{sensor="soc"} 76.0' in metrics
    assert "limits_applied" in hot_pi.service.logs()
    assert hot_pi.sent_status("capped: SoC 76.0 C (warning)")

    hot = hot_pi.reaches(83.0)
    assert hot["scheduler"]["rung"] == "paused" and hot["thermal"]["level"] == "critical"
    refused = hot_pi.chat()
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "degraded"
    assert (
        int(refused.headers["Retry-After"]) >= 1
        and "inference is paused" in refused.json()["error"]["message"]
    )
    ready = hot_pi.service.http.get("/health/ready")
    assert ready.status_code == 503 and "SoC 83.0 C (critical)" in ready.json()["reason"]
    status = hot_pi.service.http.get("/admin/status").json()
    assert status["scheduler"]["rung"] == "paused" and status["thermal"]["soc_c"] == 83.0
    assert hot_pi.sent_status("paused")

    assert hot_pi.reaches(78.0)["scheduler"]["rung"] == "paused"  # within the 5 C band: no flapping
    assert hot_pi.reaches(76.5)["scheduler"]["rung"] == "capped"  # past it: critical left
    assert hot_pi.reaches(71.0)["scheduler"]["rung"] == "capped"
    assert hot_pi.reaches(69.0)["scheduler"]["rung"] == "normal"
    assert hot_pi.chat().json()["usage"]["completion_tokens"] > 1


def test_the_firmware_throttling_the_arm_counts_as_warm(hot_pi: HotPi) -> None:
    throttled = hot_pi.reaches(60.0, throttled=0x50004)
    assert throttled["scheduler"]["rung"] == "capped"
    assert throttled["thermal"]["throttled"] == ["throttled"]
    assert "vcgencmd: throttled" in throttled["scheduler"]["reasons"]


def rung_is(service: Service, rung: str) -> bool:
    return bool(service.http.get("/health").json()["scheduler"]["rung"] == rung)


def test_memory_past_the_budget_keeps_the_vlm_off_and_serves_clip_only(tmp_path: Path) -> None:
    resources = {"memory_limit_mb": 1, "memory_hard_limit_mb": 100_000}  # (no restarts for memory here)
    config = {"resources": resources, "thermal": {"poll_s": 0.1, "vcgencmd": ""}}
    service = Service(tmp_path, config).wait_ready()
    try:
        wait_until(
            lambda: service.http.get("/health").json()["scheduler"]["rung"] == "clip_only", timeout_s=30
        )
        health = service.http.get("/health").json()
        assert health["memory"]["level"] == "critical" and not health["model_loaded"]
        assert "memory critical" in " ".join(health["scheduler"]["reasons"])
        url, _ = image_data_url(6)
        content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "What shape?"}]
        chat = service.http.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": content}]}
        )
        assert chat.status_code == 503 and "only CLIP is served" in chat.json()["error"]["message"]
        classify = service.http.post("/v1/classify", json={"image": url, "prompts": ["a circle", "a square"]})
        assert classify.status_code == 200
        assert 'hailo_vision_degradation_rung{rung="clip_only"} 1.0' in service.http.get("/metrics").text
    finally:
        service.stop()


def test_memory_pressure_shrinks_the_text_cache(tmp_path: Path) -> None:
    available_mb = psutil.virtual_memory().available / 2**20
    floor = int(available_mb / 1.3)  # available is then under 1.5 x the floor, well above the floor
    config = {"resources": {"min_available_mb": floor}, "thermal": {"poll_s": 0.1, "vcgencmd": ""}}
    service = Service(tmp_path, config).wait_ready()
    try:
        wait_until(
            lambda: service.http.get("/health").json()["scheduler"]["rung"] == "shedding", timeout_s=30
        )
        wait_until(lambda: "cache_share=0.25" in service.logs(), timeout_s=30)
        assert service.http.get("/health").json()["memory"]["level"] == "pressure"
    finally:
        service.stop()


def test_a_worker_past_the_memory_hard_limit_is_restarted_with_the_reason_logged(tmp_path: Path) -> None:
    config = {"resources": {"memory_hard_limit_mb": 20}, "supervisor": {"flap_deaths": 50}}
    service = Service(tmp_path, config)
    try:
        wait_until(lambda: "restart_scheduled role=worker" in service.logs(), timeout_s=60)
        (exited,) = [line for line in service.logs().splitlines() if "child_exited role=worker" in line][:1]
        assert "over the hard limit of 20 MiB" in exited  # the restart says why
        assert "memory_limit_exceeded" in service.logs()
    finally:
        service.stop()
