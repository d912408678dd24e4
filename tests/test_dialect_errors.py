"""Every malformed request gets its dialect's error shape: Ollama's {"error": "..."} on /api/, OpenAI's
{"error": {message, type, param, code}} on the Responses API and hailo-vision's own vision routes."""

from __future__ import annotations

from typing import Any

import pytest
from service import Service, image_data_url

MODEL = "qwen2-vl-demo"
HI = [{"role": "user", "content": "hi"}]
IMAGE = image_data_url(seed=1)[0]


@pytest.mark.parametrize(
    ("path", "body", "status", "mentions"),
    [
        ("/api/chat", {"messages": HI}, 400, "model"),
        ("/api/chat", {"model": "", "messages": HI}, 400, "model"),
        ("/api/chat", {"model": "llava:13b", "messages": HI}, 404, "not found"),
        ("/api/chat", {"model": "clip-demo", "messages": HI}, 400, "does not support chat"),
        ("/api/chat", {"model": MODEL, "messages": "hi"}, 400, "messages"),
        ("/api/chat", {"model": MODEL, "messages": [{"role": "tool", "content": "x"}]}, 400, "role"),
        (
            "/api/chat",
            {"model": MODEL, "messages": [{"role": "system", "content": "x"}]},
            400,
            "user message",
        ),
        ("/api/chat", {"model": MODEL, "messages": HI, "think": True}, 400, "does not support thinking"),
        ("/api/chat", {"model": MODEL, "messages": HI, "keep_alive": "soon"}, 400, "duration"),
        ("/api/chat", {"model": MODEL, "messages": HI, "keep_alive": True}, 400, "keep_alive"),
        ("/api/chat", {"model": MODEL, "messages": HI, "format": "xml"}, 400, "format"),
        ("/api/chat", {"model": MODEL, "messages": HI, "format": {"type": 3}}, 400, "JSON Schema"),
        (
            "/api/chat",
            {"model": MODEL, "messages": HI, "options": {"temperature": "hot"}},
            400,
            "temperature",
        ),
        ("/api/chat", {"model": MODEL, "messages": HI, "options": {"num_predict": 0}}, 400, "num_predict"),
        ("/api/chat", {"model": MODEL, "messages": HI, "prompt": "hi"}, 400, "prompt"),
        (
            "/api/chat",
            {"model": MODEL, "messages": [{"role": "user", "content": "?", "images": ["@@"]}]},
            400,
            "base64",
        ),
        (
            "/api/chat",
            {"model": MODEL, "messages": [{"role": "assistant", "content": "x", "images": ["aGk="]}, *HI]},
            400,
            "user messages only",
        ),
        ("/api/generate", {"model": MODEL, "prompt": "hi", "suffix": "end"}, 400, "does not support insert"),
        ("/api/generate", {"model": MODEL, "prompt": "hi", "raw": True}, 400, "raw"),
        ("/api/generate", {"model": MODEL, "prompt": "hi", "context": [1, 2]}, 400, "stateless"),
        ("/api/generate", {"model": MODEL, "prompt": "hi", "template": "{{ .Prompt }}"}, 400, "template"),
        ("/api/generate", {"model": MODEL, "prompt": 5}, 400, "prompt"),
        ("/api/generate", {"model": MODEL, "prompt": "red circle " * 3000}, 400, "context window"),
        ("/api/embed", {"model": "clip-demo"}, 400, "input"),
        ("/api/embed", {"model": "clip-demo", "input": [[1, 2]]}, 400, "input"),
        ("/api/embed", {"model": MODEL, "input": "hi"}, 400, "does not support embeddings"),
        ("/api/embed", {"model": "clip-demo", "input": "hi", "dimensions": 8}, 400, "dimensions"),
        ("/api/show", {}, 400, "model is required"),
        ("/api/show", {"model": "llava"}, 404, "not found"),
        ("/api/pull", {"model": "llava:7b"}, 404, "downloads none"),
    ],
)
def test_malformed_ollama_requests_get_ollamas_error(
    service: Service, path: str, body: Any, status: int, mentions: str
) -> None:
    response = service.http.post(path, json=body)
    assert response.status_code == status, response.text
    error = response.json()
    assert list(error) == ["error"] and isinstance(error["error"], str)
    assert mentions in error["error"]


def test_ollama_body_that_is_not_json_and_unknown_routes(service: Service) -> None:
    response = service.http.post("/api/chat", content=b"{nope", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]
    assert service.http.get("/api/nothing").json() == {"error": "GET /api/nothing: Not Found"}
    assert (
        service.http.get("/api/chat").status_code == 405 and "error" in service.http.get("/api/chat").json()
    )


def _image_input(url: str) -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": [{"type": "input_image", "image_url": url}, {"type": "input_text", "text": "?"}],
        }
    ]


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/responses", {}, "input"),
        ("/v1/responses", {"input": []}, "input"),
        ("/v1/responses", {"input": 5}, "input"),
        (
            "/v1/responses",
            {"input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]},
            "input[0].type",
        ),
        ("/v1/responses", {"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        (
            "/v1/responses",
            {"input": [{"role": "user", "content": [{"type": "input_file"}]}]},
            "input[0].content[0].type",
        ),
        (
            "/v1/responses",
            {"input": [{"role": "user", "content": [{"type": "input_image"}]}]},
            "input[0].content[0].image_url",
        ),
        ("/v1/responses", {"input": [{"role": "developer", "content": "x"}]}, "input"),
        (
            "/v1/responses",
            {"input": _image_input("data:image/png;base64,@@")},
            "input[0].content[0].image_url",
        ),
        ("/v1/responses", {"input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
        ("/v1/responses", {"input": "hi", "temperature": 3}, "temperature"),
        ("/v1/responses", {"input": "hi", "stream": "yes"}, "stream"),
        ("/v1/responses", {"input": "hi", "previous_response_id": "resp_1"}, "previous_response_id"),
        ("/v1/responses", {"input": "hi", "background": True}, "background"),
        ("/v1/responses", {"input": "hi", "tool_choice": "required"}, "tool_choice"),
        ("/v1/responses", {"input": "hi", "tool_choice": {"type": "function", "name": "f"}}, "tool_choice"),
        (
            "/v1/responses",
            {"input": "hi", "text": {"format": {"type": "json_schema", "name": "x"}}},
            "text.format.schema",
        ),
        (
            "/v1/responses",
            {
                "input": "hi",
                "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "objekt"}}},
            },
            "text.format.schema",
        ),
        ("/v1/responses", {"input": "hi", "text": {"format": {"type": "xml"}}}, "text.format.type"),
        ("/v1/responses", {"input": "hi", "model": "gpt-4o"}, "model"),
        ("/v1/responses", {"input": "red circle " * 3000}, "input"),
        ("/v1/chat/completions", {"messages": HI, "tool_choice": "required"}, "tool_choice"),
        (
            "/v1/chat/completions",
            {"messages": HI, "response_format": {"type": "json_schema"}},
            "response_format.json_schema",
        ),
        (
            "/v1/chat/completions",
            {
                "messages": HI,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "objekt"}},
                },
            },
            "response_format.json_schema.schema",
        ),
        ("/chat/completions", {"messages": HI, "n": 2}, "n"),
        ("/v1/caption", {}, "image"),
        ("/v1/caption", {"image": IMAGE, "detail": "poetic"}, "detail"),
        ("/v1/caption", {"image": "data:image/png;base64,@@"}, "image"),
        ("/v1/vision/analyze", {"images": [IMAGE]}, "prompt"),
        ("/v1/vision/analyze", {"images": [IMAGE, 5], "prompt": "?"}, "images[1]"),
        ("/v1/vision/analyze", {"images": [IMAGE] * 9, "prompt": "?"}, "images"),
    ],
)
def test_malformed_openai_style_requests_get_openais_error(
    service: Service, path: str, body: Any, param: str
) -> None:
    response = service.http.post(path, json=body)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["param"] == param, error
