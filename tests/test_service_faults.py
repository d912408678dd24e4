"""The service under faults: a killed worker, SIGTERM while streaming, clients that leave, a full queue.

Long generations use `min_tokens` (the vLLM extension) so the demo model cannot stop early.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from service import Service, image_data_url, wait_until

MODEL = "qwen2-vl-demo"


def _long_request(tokens: int = 1500) -> dict[str, Any]:
    url, _ = image_data_url(seed=77)
    return {
        "model": MODEL,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": url}},
                    {"type": "text", "text": "Describe it."},
                ],
            }
        ],
        "max_tokens": tokens,
        "min_tokens": tokens,
        "temperature": 1.0,
        "seed": 1,
    }


def _openai_request(tokens: int = 1500) -> dict[str, Any]:
    """The long request as openai-client arguments (min_tokens travels in extra_body)."""
    request = _long_request(tokens)
    min_tokens = request.pop("min_tokens")
    return {**request, "extra_body": {"min_tokens": min_tokens}}


def _worker_tokens(service: Service) -> float:
    for line in service.http.get("/metrics").text.splitlines():
        if line.startswith("hailo_vision_worker_tokens_generated "):
            return float(line.split()[1])
    raise AssertionError("no worker token gauge")


@pytest.fixture
def fault_service(tmp_path: Any) -> Iterator[Service]:
    running = Service(
        tmp_path,
        {"clip": {"enabled": False}, "supervisor": {"restart_initial_s": 1.5}, "resources": {"max_queue": 1}},
    ).wait_ready()
    yield running
    running.stop()


def test_worker_killed_mid_stream_fails_fast_then_recovers(fault_service: Service) -> None:
    client = openai.OpenAI(base_url=f"{fault_service.base_url}/v1", api_key="x", max_retries=0)
    stream = client.chat.completions.create(**_openai_request(), stream=True)
    chunks = iter(stream)
    next(chunks), next(chunks)
    fault_service.kill_worker()
    with pytest.raises(openai.APIError) as failure:  # an error event, not the client's timeout
        for _ in chunks:
            pass
    assert not isinstance(failure.value, openai.APITimeoutError)
    assert "worker" in str(failure.value.message).lower()

    during = fault_service.http.post("/v1/chat/completions", json=_long_request(4))
    assert during.status_code == 503
    assert during.json()["error"]["code"] in ("worker_unavailable", "model_loading")
    assert int(during.headers["retry-after"]) >= 1
    ready = fault_service.http.get("/health/ready")
    assert ready.status_code == 503 and ready.json()["ready"] is False

    fault_service.wait_ready()
    after = fault_service.http.post("/v1/chat/completions", json=_long_request(4))
    assert after.status_code == 200
    assert fault_service.http.get("/health").json()["worker_restarts"] == 1
    assert "hailo_vision_worker_restarts_total 1.0" in fault_service.http.get("/metrics").text


def test_client_disconnect_stops_generation(fault_service: Service) -> None:
    before = _worker_tokens(fault_service)
    with httpx.stream(
        "POST",
        f"{fault_service.base_url}/v1/chat/completions",
        json={**_long_request(2000), "stream": True},
        timeout=30,
    ) as response:
        lines = response.iter_lines()
        for _ in range(6):
            next(lines)

    # Generations run one at a time in arrival order: once a short one sent now is answered, the long
    # one has ended; the worker noticed the abort within one token, well before its 2000.
    assert fault_service.http.post("/v1/chat/completions", json=_long_request(2)).status_code == 200
    generated = _worker_tokens(fault_service) - before - 2
    assert generated < 2000
    assert fault_service.http.get("/health").json()["in_flight"] == 0


def test_full_queue_answers_503_with_retry_after(fault_service: Service) -> None:
    results: list[int] = []

    def stream_long() -> None:
        with httpx.stream(
            "POST",
            f"{fault_service.base_url}/v1/chat/completions",
            json={**_long_request(2000), "stream": True},
            timeout=60,
        ) as response:
            results.append(response.status_code)
            for _ in response.iter_lines():
                pass

    threads = [threading.Thread(target=stream_long) for _ in range(2)]
    for admitted, thread in enumerate(threads, start=1):
        thread.start()  # the API counts it in flight in the step that admits it to the queue
        wait_until(lambda n=admitted: fault_service.http.get("/health").json()["in_flight"] >= n)
    rejected = fault_service.http.post("/v1/chat/completions", json=_long_request(4))
    for thread in threads:
        thread.join()
    assert results == [200, 200]
    assert rejected.status_code == 503
    assert rejected.json()["error"]["code"] == "queue_full"
    assert int(rejected.headers["retry-after"]) >= 1


def test_generation_timeout_is_504(tmp_path: Any) -> None:
    service = Service(tmp_path, {"clip": {"enabled": False}, "inference": {"timeout_s": 0.3}}).wait_ready()
    try:
        response = service.http.post("/v1/chat/completions", json=_long_request(2000))
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "timeout"
        assert service.http.post("/v1/chat/completions", json=_long_request(2)).status_code == 200
    finally:
        service.stop()


def test_sigterm_drains_an_in_flight_stream_to_its_end(tmp_path: Any) -> None:
    service = Service(tmp_path, {"clip": {"enabled": False}}).wait_ready()
    client = openai.OpenAI(base_url=f"{service.base_url}/v1", api_key="x", max_retries=0)
    stream = client.chat.completions.create(
        **_openai_request(600), stream=True, stream_options={"include_usage": True}
    )
    chunks = iter(stream)
    next(chunks)
    service.process.terminate()
    rest = list(chunks)
    assert rest[-1].usage is not None and rest[-1].usage.completion_tokens == 600
    assert [c.choices[0].finish_reason for c in rest if c.choices and c.choices[0].finish_reason] == [
        "length"
    ]
    assert service.process.wait(30) == 0
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{service.base_url}/health", timeout=2)
    service.stop()
