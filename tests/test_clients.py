"""Each real client's requests, exactly as it sends them, answered in the shape it reads back."""

from __future__ import annotations

import datetime
import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from client_requests import ClientRequest, client_requests
from service import Service, wait_until

CASES = client_requests()


def _sse(text: str) -> list[tuple[str | None, str]]:
    """(event, data) of each server-sent event."""
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines.get("event"), lines["data"]))
    return events


def _answer_text(case: ClientRequest, response: httpx.Response) -> str:
    """The text the client reads from the reply, read the way the client reads it."""
    kind = case.reply
    if kind == "openai":
        return str(response.json()["choices"][0]["message"]["content"])
    if kind == "openai_sse":
        assert response.headers["content-type"].startswith("text/event-stream")  # Open WebUI checks it
        data = [d for _, d in _sse(response.text)]
        assert data[-1] == "[DONE]"
        chunks = [json.loads(d) for d in data[:-1]]
        return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    if kind == "responses_sse":
        events = _sse(response.text)
        assert all(e == json.loads(d)["type"] for e, d in events)
        assert events[-1][0] in ("response.completed", "response.incomplete")
        return "".join(json.loads(d)["delta"] for e, d in events if e == "response.output_text.delta")
    if kind == "ollama":
        body = response.json()
        assert body["done"] is True and body["eval_count"] >= 1 and body["total_duration"] > 0
        return str(body["message"]["content"] if "message" in body else body["response"])
    assert kind == "ollama_ndjson"
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert all(not line["done"] for line in lines[:-1]) and lines[-1]["done"] is True
    return "".join(line["message"]["content"] for line in lines)


# What a client reads from the answers that are not text
CHECKS: dict[str, Any] = {
    "home_assistant_ollama_list": lambda b: "qwen2-vl-demo:latest" in {m["model"] for m in b["models"]},
    "home_assistant_ollama_pull": lambda b: b == {"status": "success"},
    "frigate_openai_models": lambda b: "qwen2-vl-demo" in {m["id"] for m in b["data"]},
    "frigate_ollama_show": lambda b: "vision" in b["capabilities"] and "completion" in b["capabilities"],
    "frigate_ollama_embed": lambda b: len(b["embeddings"]) == 2,
    "open_webui_ollama_version": lambda b: re.fullmatch(r"\d+\.\d+\.\d+", b["version"]) is not None,
    "open_webui_ollama_ps": lambda b: (
        all(datetime.datetime.fromisoformat(m["expires_at"]).tzinfo is not None for m in b["models"])
        and b["models"]
    ),
    "open_webui_ollama_unload": lambda b: b["done"] is True and b["done_reason"] == "unload",
    "open_webui_openai_models": lambda b: "qwen2-vl-demo" in {m["id"] for m in b["data"]},
}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_client_request_is_answered(service: Service, case: ClientRequest) -> None:
    response = service.http.request(case.method, case.path, json=case.body, headers=case.headers)
    assert response.status_code == 200, response.text
    if case.reply == "json":
        check = CHECKS.get(case.name)
        body = response.json()
        assert check is None or check(body), body
    else:
        assert _answer_text(case, response).strip()


def test_model_routes_never_wait_behind_inference(service: Service) -> None:
    """Home Assistant polls /api/tags and /api/ps with a 5 s timeout and pulls a model it does not see:
    all of them answer while long generations run (and before these end)."""
    long = {
        "messages": [{"role": "user", "content": "What color is the shape?"}],
        "max_tokens": 1500,
        "min_tokens": 1500,
        "temperature": 0,
    }

    def generate() -> int:
        return httpx.post(f"{service.base_url}/v1/chat/completions", json=long, timeout=120).status_code

    with ThreadPoolExecutor(3) as pool:
        running = [pool.submit(generate) for _ in range(3)]
        wait_until(lambda: service.http.get("/health").json()["in_flight"] >= 1)
        for method, path, body in [
            ("GET", "/api/tags", None),
            ("GET", "/api/ps", None),
            ("POST", "/api/pull", {"model": "qwen2-vl-demo", "stream": False}),
            ("GET", "/api/version", None),
        ]:
            assert service.http.request(method, path, json=body).status_code == 200
        answered_during = not all(f.done() for f in running)
        assert [f.result() for f in running] == [200, 200, 200]
    assert answered_during
