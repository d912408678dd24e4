"""`hailo-visionctl`'s screens and exit codes, drawn from fixture status documents (schema 1)."""

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console, RenderableType

from supervisor.ctl_view import down_view, exit_code, models_view, slow_reasons, status_view

FIXTURES = Path(__file__).parent / "fixtures" / "ctl"


def fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{name}.json").read_text()))


def shown(renderable: RenderableType, width: int = 80) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("state", "code"),
    [("ready", 0), ("degraded", 1), ("loading", 1), ("draining", 1), ("unavailable", 2)],
)
def test_exit_code_follows_the_service_state(state: str, code: int) -> None:
    status = fixture("ready")
    status["service"]["state"] = state
    assert exit_code(status) == code


def test_exit_code_of_an_unreachable_service_is_2() -> None:
    assert exit_code(None) == 2


@pytest.mark.parametrize("name", ["ready", "degraded"])
def test_the_status_fits_one_terminal_screen(name: str) -> None:
    lines = shown(status_view(fixture(name))).splitlines()
    assert len(lines) <= 24 and max(len(line) for line in lines) <= 80


def test_a_ready_service_says_who_holds_the_npu_and_that_nothing_waits() -> None:
    text = shown(status_view(fixture("ready")), width=120)
    assert text.splitlines()[0] == "hailo-vision ready, up 2h 13m (version 0.1.0, pid 4242)"
    assert "Service    127.0.0.1:11435, backend hailo, 0 worker restarts" in text
    assert "nothing holds requests back" in text
    assert "hailo-vision since " in text and "(12m 34s): vision request" in text
    assert "hailo-ollama at http://127.0.0.1:8000: idle, models qwen2.5:1.5b" in text
    assert "qwen2-vl-2b (vlm) npu" in text and "qwen2.5:1.5b (llm, hailo-ollama) not loaded" in text
    assert "policy share, rung normal; queued 0/16, in flight 1; NPU switches 2 (20 s)" in text
    assert "Last 60 s  42 requests (200: 42); p50 812 ms, p95 2.1 s; 8.3 tokens/s" in text
    assert "normal: SoC 58.4 °C, Hailo 51.0 °C; throttled no" in text
    assert "normal: service 812 of 4096 MiB; 5120 MiB available (floor 512 MiB)" in text
    assert "Errors     none" in text


def test_a_degraded_service_says_why_requests_wait_most_pressing_first() -> None:
    status = fixture("degraded")
    assert slow_reasons(status) == [
        "the NPU is with hailo-ollama (hailo-ollama has a request in flight); it comes back in about 12 s",
        "5 request(s) queued behind 1 in flight (limit 16)",
        "scheduler degraded to rung clip-on-cpu: thermal warning, memory pressure",
        "throttled: soft temperature limit",
        "memory pressure: service 3790 of 4096 MiB; 610 MiB available (floor 512 MiB)",
    ]
    text = shown(status_view(status), width=160)
    assert text.splitlines()[0].startswith("hailo-vision degraded, up 1m 33s")
    assert "3 worker restarts" in text
    assert "Why        the NPU is lent to hailo-ollama" in text
    assert "hailo-ollama since " in text and "(42 s): hailo-ollama has a request in flight" in text
    assert "9 requests (200: 6, 503: 3); p50 11.8 s, p95 24.3 s; 4.1 tokens/s" in text
    assert "npu_busy: held by hailo-ollama" in text and "queue_full: 16 requests already waiting" in text


def test_only_the_last_three_errors_are_shown_newest_last() -> None:
    status = fixture("degraded")
    status["errors"] = [
        {"at": f"2026-11-30T14:0{i}:00Z", "code": f"code{i}", "message": f"error {i}"} for i in (4, 1, 3, 2)
    ]
    text = shown(status_view(status), width=160)
    assert "code1" not in text
    assert text.index("code2") < text.index("code3") < text.index("code4")


def test_unknown_figures_are_dashes_and_a_missing_ollama_is_named() -> None:
    status = copy.deepcopy(fixture("ready"))
    status["npu"].update(owner="nobody", since=None, since_s=None, ollama=None)
    status["requests"].update(count=0, by_status={}, p50_ms=None, p95_ms=None, tokens_per_s=None)
    status["thermal"].update(level="unknown", soc_c=None, hailo_c=None, throttled=None)
    status["memory"].update(level="unknown", service_rss_mb=None, available_mb=None)
    text = shown(status_view(status), width=160)
    assert "nobody since - (-)" in text and "hailo-ollama: not configured" in text
    assert "0 requests (none); p50 -, p95 -; - tokens/s" in text
    assert "unknown: SoC -, Hailo -; throttled unknown" in text
    assert "unknown: service - of 4096 MiB; - MiB available" in text
    assert "nothing holds requests back" in text


def test_a_loading_service_is_the_first_reason_to_wait() -> None:
    status = fixture("ready")
    status["service"].update(state="loading", reasons=["loading qwen2-vl-2b"])
    assert slow_reasons(status)[0] == "the service is loading: loading qwen2-vl-2b"


def test_a_down_service_says_so_and_what_systemd_says() -> None:
    systemd = {
        "is-active": "failed",
        "ActiveState": "failed",
        "SubState": "failed",
        "Result": "exit-code",
        "ExecMainStatus": "1",
        "NRestarts": "5",
        "StatusText": "NPU worker restarting (exit 1)",
    }
    text = shown(down_view("http://127.0.0.1:11435", "connection refused", systemd), width=160)
    assert text.splitlines()[0] == "hailo-vision down: http://127.0.0.1:11435 connection refused"
    assert "systemd: failed (failed/failed, result exit-code, exit status 1, 5 restart(s))" in text
    assert "last status: NPU worker restarting (exit 1)" in text


def test_a_down_service_without_systemd_says_how_to_start_it() -> None:
    text = shown(down_view("http://127.0.0.1:1", "refused", None))
    assert "systemd is not running here" in text and "hailo-vision serve" in text


def test_the_model_table_shows_both_servers() -> None:
    text = shown(models_view(fixture("degraded")["models"]))
    assert text.splitlines()[0].split() == ["model", "kind", "served", "by", "loaded", "placement"]
    assert text.splitlines()[3].split() == ["qwen2.5:1.5b", "llm", "hailo-ollama", "yes", "npu"]


def test_the_services_words_are_shown_as_they_are_not_as_markup() -> None:
    status = fixture("degraded")
    status["service"]["reasons"] = ["[bold]not markup[/bold] :smile:"]
    status["models"][0]["id"] = "llava:7b:latest[q4]"
    text = shown(status_view(status), width=160)
    assert "[bold]not markup[/bold] :smile:" in text and "llava:7b:latest[q4]" in text
    assert "llava:7b:latest[q4]" in shown(models_view(status["models"]), width=160)
