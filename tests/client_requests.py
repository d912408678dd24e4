"""Requests shaped exactly as real clients send them (read from their code; see /work/shared/clients.md):
Home Assistant (Ollama and OpenAI integrations), Frigate (OpenAI and Ollama providers), LLM Vision,
n8n and Open WebUI. Used by test_clients.py (each is answered) and test_openapi.py (each validates
against the published document)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from service import image_data_url

MODEL = "qwen2-vl-demo"
PROMPT = "What shape is this?"
NO_KEY = {"Authorization": "Bearer"}


@dataclass(frozen=True)
class ClientRequest:
    name: str
    method: str
    path: str
    body: dict[str, Any] | None = None
    reply: str = "json"  # openai, openai_sse, responses, responses_sse, ollama, ollama_ndjson, json
    headers: dict[str, str] = field(default_factory=dict)


class ReviewMetadata(BaseModel):
    """A schema made the way Frigate makes its review schema: pydantic, bounds, optional fields."""

    model_config = ConfigDict(extra="forbid")
    scene: str = Field(min_length=1, max_length=500, description="What happens")
    confidence: float = Field(ge=0, le=1)
    potential_threat_level: int = Field(ge=0, le=3)
    other_concerns: list[str] | None = None


def _ha_task_schema() -> dict[str, Any]:
    """Home Assistant's AI-task schema after its _adjust_schema: `strict` inside the schema."""
    return {
        "type": "object",
        "properties": {"shape": {"type": "string"}, "colour": {"type": ["string", "null"]}},
        "required": ["shape", "colour"],
        "strict": True,
        "additionalProperties": False,
    }


def _ha_tool() -> dict[str, Any]:
    parameters = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    return {"name": "HassTurnOn", "description": "Turns on a device", "parameters": parameters}


def client_requests() -> list[ClientRequest]:
    url, _ = image_data_url(seed=9000, fmt="JPEG")
    b64 = url.split(",", 1)[1]
    frames = [image_data_url(seed=9001 + i, fmt="JPEG")[0] for i in range(3)]
    frigate_schema = ReviewMetadata.model_json_schema()
    return [
        # Home Assistant, Ollama integration (ollama.AsyncClient): list, ps, pull, then chat
        ClientRequest("home_assistant_ollama_list", "GET", "/api/tags"),
        ClientRequest("home_assistant_ollama_ps", "GET", "/api/ps"),
        ClientRequest("home_assistant_ollama_pull", "POST", "/api/pull",
                      {"model": f"{MODEL}:latest", "insecure": False, "stream": False}),
        ClientRequest("home_assistant_ollama_chat", "POST", "/api/chat", {
            "model": f"{MODEL}:latest",
            "messages": [
                {"role": "system", "content": "You are a voice assistant for Home Assistant."},
                {"role": "user", "content": PROMPT, "images": [b64]},
            ],
            "tools": [{"type": "function", "function": _ha_tool()}],
            "stream": True,
            "keep_alive": -1,
            "options": {"num_ctx": 8192},
            "think": False,
        }, "ollama_ndjson"),
        ClientRequest("home_assistant_ollama_ai_task", "POST", "/api/chat", {
            "model": f"{MODEL}:latest",
            "messages": [{"role": "user", "content": PROMPT, "images": [b64]}],
            "stream": True,
            "keep_alive": "300s",
            "options": {"num_ctx": 8192},
            "format": {"type": "object", "properties": {"shape": {"type": "string"}}, "required": ["shape"]},
        }, "ollama_ndjson"),
        # Home Assistant, OpenAI integration: the Responses API, streamed
        ClientRequest("home_assistant_openai_conversation", "POST", "/v1/responses", {
            "model": MODEL,
            "input": [
                {"type": "message", "role": "developer", "content": "You are a voice assistant."},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": PROMPT},
                    {"type": "input_image", "image_url": url, "detail": "auto"},
                ]},
            ],
            "max_output_tokens": 150,
            "top_p": 1.0,
            "temperature": 1.0,
            "user": "01JQ2X7Z0A7X8N9QW3ABCDEF12",
            "store": False,
            "stream": True,
            "prompt_cache_retention": "24h",
            "tools": [{"type": "function", **_ha_tool(), "strict": False}],
        }, "responses_sse"),
        ClientRequest("home_assistant_openai_ai_task", "POST", "/v1/responses", {
            "model": MODEL,
            "input": [{"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": PROMPT},
                {"type": "input_image", "image_url": url, "detail": "auto"},
            ]}],
            "max_output_tokens": 150,
            "store": False,
            "stream": True,
            "text": {"format": {"type": "json_schema", "name": "ai_task_data", "schema": _ha_task_schema()}},
        }, "responses_sse"),
        # Frigate, OpenAI provider: its docs' base URL has no /v1
        ClientRequest("frigate_openai_models", "GET", "/models"),
        ClientRequest("frigate_openai_review", "POST", "/chat/completions", {
            "model": MODEL,
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "Describe the review item."},
                *({"type": "image_url", "image_url": {"url": f, "detail": "low"}} for f in frames),
            ]}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "review_metadata", "strict": True, "schema": frigate_schema},
            },
        }, "openai"),
        ClientRequest("frigate_openai_chat", "POST", "/chat/completions", {
            "model": MODEL,
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": PROMPT},
                {"type": "image_url", "image_url": {"url": url}},
            ]}],
            "stream": True,
            "stream_options": {"include_usage": True},
            "tools": [{"type": "function", "function": _ha_tool()}],
            "tool_choice": "auto",
        }, "openai_sse"),
        # Frigate, Ollama provider: show, then generate (0.17) or chat with [img] markers (0.18)
        ClientRequest("frigate_ollama_show", "POST", "/api/show", {"model": MODEL}),
        ClientRequest("frigate_ollama_generate", "POST", "/api/generate", {
            "model": MODEL,
            "prompt": PROMPT,
            "images": [f.split(",", 1)[1] for f in frames],
            "stream": False,
            "options": {"temperature": 0.5, "repeat_penalty": 1.05, "presence_penalty": 0.3},
            "format": frigate_schema,
            "think": False,
            "keep_alive": -1,
        }, "ollama"),
        ClientRequest("frigate_ollama_chat", "POST", "/api/chat", {
            "model": MODEL,
            "messages": [{
                "role": "user",
                "content": "[img]\nFrame 1 of the front door\n[img]\nFrame 2\n" + PROMPT,
                "images": [f.split(",", 1)[1] for f in frames[:2]],
            }],
            "stream": False,
            "options": {"temperature": 0.5, "repeat_penalty": 1.05, "presence_penalty": 0.3, "num_ctx": 8192},
            "format": {"type": "object", "properties": {"scene": {"type": "string"}}, "required": ["scene"]},
        }, "ollama"),
        ClientRequest("frigate_ollama_embed", "POST", "/api/embed",
                      {"model": "clip-demo", "input": ["a red circle", {"image": b64}]}),
        # LLM Vision: Custom OpenAI (a Bearer key always) and Ollama (odd extras); validation via tags
        ClientRequest("llm_vision_openai", "POST", "/v1/chat/completions", {
            "model": MODEL,
            "messages": [
                {"role": "system", "content": "You are an assistant that describes camera images."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Image 1:"},
                    {"type": "image_url", "image_url": {"url": url}},
                    {"type": "text", "text": PROMPT},
                ]},
            ],
            "max_completion_tokens": 3000,
            "temperature": 0.5,
            "top_p": 0.9,
        }, "openai", {"Authorization": "Bearer not-needed"}),
        ClientRequest("llm_vision_ollama_validation", "GET", "/api/tags"),
        ClientRequest("llm_vision_ollama", "POST", "/api/chat", {
            "model": MODEL,
            "system": "You are an assistant that describes camera images.",
            "messages": [{"role": "user", "content": PROMPT, "images": [b64]}],
            "prompt": [],
            "images": [b64],
            "stream": False,
            "keep_alive": "5m",
            "think": False,
            "options": {"num_predict": 3000, "temperature": 0.5, "top_p": 0.9, "num_ctx": 2048},
            "format": {"type": "object", "properties": {"title": {"type": "string"}}},
        }, "ollama"),
        # n8n, Ollama "Analyze image": system, format and keep_alive among the options; with no API key
        # its header is "Bearer " (HTTP trims the trailing space)
        ClientRequest("n8n_ollama_credential_test", "GET", "/api/tags", headers=NO_KEY),
        ClientRequest("n8n_ollama_analyze_image", "POST", "/api/chat", {
            "model": MODEL,
            "messages": [{"role": "user", "content": "What's in this image?", "images": [b64]}],
            "stream": False,
            "options": {
                "system": "You are a helpful assistant.",
                "temperature": 0.8,
                "top_p": 0.7,
                "top_k": 40,
                "num_predict": 1024,
                "repeat_penalty": 1.1,
                "num_ctx": 4096,
                "keep_alive": "5m",
                "format": "json",
                "low_vram": False,
                "stop": ["\n\n\n"],
            },
        }, "ollama", NO_KEY),
        # Open WebUI: Ollama connection (tags, ps, version, chat, unload) and OpenAI connection
        ClientRequest("open_webui_ollama_version", "GET", "/api/version"),
        ClientRequest("open_webui_ollama_ps", "GET", "/api/ps"),
        ClientRequest("open_webui_ollama_chat", "POST", "/api/chat", {
            "model": f"{MODEL}:latest",
            "messages": [{"role": "user", "content": PROMPT, "images": [b64]}],
            "stream": True,
            "num_predict": 64,
            "options": {"temperature": 0.8},
            "keep_alive": "5m",
        }, "ollama_ndjson"),
        ClientRequest("open_webui_ollama_unload", "POST", "/api/generate",
                      {"model": f"{MODEL}:latest", "keep_alive": 0, "prompt": ""}),
        ClientRequest("open_webui_openai_models", "GET", "/v1/models"),
        ClientRequest("open_webui_openai_chat", "POST", "/v1/chat/completions", {
            "model": MODEL,
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": PROMPT},
                {"type": "image_url", "image_url": {"url": url}},
            ]}],
            "stream": True,
            "max_tokens": 64,
        }, "openai_sse"),
        ClientRequest("open_webui_openai_title", "POST", "/v1/chat/completions", {
            "model": MODEL,
            "messages": [{"role": "user", "content": "Generate a concise title for this chat."}],
            "stream": False,
            "max_tokens": 16,
        }, "openai"),
        ClientRequest("open_webui_responses", "POST", "/v1/responses", {
            "model": MODEL,
            "input": [{"role": "user", "content": [
                {"type": "input_text", "text": PROMPT},
                {"type": "input_image", "image_url": url},
            ]}],
            "stream": True,
        }, "responses_sse"),
    ]  # fmt: skip
