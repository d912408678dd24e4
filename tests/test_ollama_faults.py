"""hailo-ollama unreachable, slow (holding every request) or answering garbage: the service is told
in /health and the log, keeps serving, and never waits on it without a bound."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ollama_testkit import RunningOllama
from service import Service, free_port, wait_until

CHAT = {"messages": [{"role": "user", "content": "What color is the shape?"}], "max_tokens": 2}
SCHEDULER = {"ollama_poll_s": 0.2, "ollama_timeout_s": 0.5}


def _ollama(service: Service) -> dict[str, Any]:
    view: dict[str, Any] = service.http.get("/health").json()["npu"]["ollama"]
    return view


def _serves(service: Service) -> bool:
    return service.http.post("/v1/chat/completions", json=CHAT).status_code == 200


@pytest.fixture
def ollama(tmp_path: Path) -> Iterator[RunningOllama]:
    running = RunningOllama(tmp_path, {}, dict(os.environ))
    yield running
    running.stop()


@pytest.fixture
def service(tmp_path: Path, ollama: RunningOllama) -> Iterator[Service]:
    scheduler = {**SCHEDULER, "ollama_url": ollama.url}
    running = Service(tmp_path, {"clip": {"enabled": False}, "scheduler": scheduler}).wait_ready()
    yield running
    running.stop()


def test_an_unreachable_hailo_ollama_is_shown_and_logged_once(tmp_path: Path) -> None:
    scheduler = {**SCHEDULER, "ollama_url": f"http://127.0.0.1:{free_port()}"}
    service = Service(tmp_path, {"clip": {"enabled": False}, "scheduler": scheduler}).wait_ready()
    try:
        wait_until(lambda: _ollama(service)["reachable"] is False)
        assert _serves(service)
        wait_until(lambda: service.logs().count("event=ollama_unreachable") == 1)
    finally:
        service.stop()


def test_a_hailo_ollama_that_holds_every_request_counts_as_busy(
    service: Service, ollama: RunningOllama
) -> None:
    wait_until(lambda: _ollama(service)["reachable"] is True)
    ollama.mode_path.write_text("hang")
    wait_until(lambda: _ollama(service)["busy"] is True)  # /api/ps unanswered in time: generating
    assert _serves(service)
    ollama.mode_path.write_text("")
    wait_until(lambda: _ollama(service)["busy"] is False)


def test_a_hailo_ollama_answering_garbage_is_unreachable_and_recovers(
    service: Service, ollama: RunningOllama
) -> None:
    wait_until(lambda: _ollama(service)["reachable"] is True)
    ollama.mode_path.write_text("garbage")
    wait_until(lambda: _ollama(service)["reachable"] is False)
    assert _serves(service)
    assert "no model list" in service.logs()
    ollama.mode_path.write_text("")
    wait_until(lambda: _ollama(service)["reachable"] is True)
