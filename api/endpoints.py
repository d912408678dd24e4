"""Every HTTP endpoint, declared once: path, method, handler, body declaration, what it answers.

The Starlette routes and the OpenAPI document are both built from `ENDPOINTS`, so the document lists
exactly what the server serves and validates each body with the declaration it publishes. A handler
with a body gets it already validated: `handler(request, body)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.body import read_body
from api.chat_request import ChatCompletionRequest
from api.clip_request import (
    ClassifyRequest,
    ImageEmbeddingsRequest,
    MatchRequest,
    OpenAIEmbeddingsRequest,
    TextEmbeddingsRequest,
)
from api.media_types import JSON, NDJSON, SSE, TEXT
from api.ollama_request import (
    OllamaChatRequest,
    OllamaEmbeddingsRequest,
    OllamaEmbedRequest,
    OllamaGenerateRequest,
    OllamaModelRequest,
)
from api.responses_request import ResponsesRequest
from api.routes_admin import admin_status, npu_load, npu_release
from api.routes_chat import chat_completions
from api.routes_clip import classify, embeddings, image_embeddings, match, text_embeddings
from api.routes_info import get_model, health, list_models, metrics, ready
from api.routes_ollama import chat, embed, generate, legacy_embeddings
from api.routes_ollama_models import ps, pull, root, show, tags, version
from api.routes_responses import responses
from api.routes_vision import analyze, caption
from api.schema import Body
from api.services import services_of
from api.vision_request import AnalyzeRequest, CaptionRequest


@dataclass(frozen=True)
class Endpoint:
    path: str
    method: str
    handler: Callable[..., Awaitable[Response]]
    summary: str
    tag: str
    body: type[Body] | None = None
    answers: tuple[str, ...] = (JSON,)  # media types of a success

    def route(self) -> Route:
        if self.body is None:
            return Route(self.path, self.handler, methods=[self.method])
        model, handler = self.body, self.handler

        async def endpoint(request: Request) -> Response:
            return await handler(request, await read_body(request, model, services_of(request).config))

        return Route(self.path, endpoint, methods=[self.method])


def _openai(path: str, method: str, handler: Any, summary: str, **kw: Any) -> list[Endpoint]:
    """An OpenAI endpoint under /v1 and, for clients given a base URL without /v1, without it."""
    return [Endpoint(p, method, handler, summary, "OpenAI", **kw) for p in (f"/v1{path}", path)]


ENDPOINTS: tuple[Endpoint, ...] = (
    *_openai("/chat/completions", "POST", chat_completions, "Chat about images", body=ChatCompletionRequest,
             answers=(JSON, SSE)),
    *_openai("/responses", "POST", responses, "Respond about images (Responses API, stateless)",
             body=ResponsesRequest, answers=(JSON, SSE)),
    *_openai("/embeddings", "POST", embeddings, "CLIP embeddings of texts and images",
             body=OpenAIEmbeddingsRequest),
    *_openai("/models", "GET", list_models, "The loaded models"),
    *_openai("/models/{model_id:path}", "GET", get_model, "One model"),
    Endpoint("/v1/caption", "POST", caption, "A caption of one image, by the VLM", "Vision", CaptionRequest),
    Endpoint("/v1/vision/analyze", "POST", analyze, "One prompt over images, one answer each", "Vision",
             AnalyzeRequest),
    Endpoint("/v1/classify", "POST", classify, "Zero-shot classification with CLIP", "CLIP", ClassifyRequest),
    Endpoint("/v1/embeddings/image", "POST", image_embeddings, "CLIP image embeddings", "CLIP",
             ImageEmbeddingsRequest),
    Endpoint("/v1/embeddings/text", "POST", text_embeddings, "CLIP text embeddings", "CLIP",
             TextEmbeddingsRequest),
    Endpoint("/v1/match", "POST", match, "Similarity of images to texts", "CLIP", MatchRequest),
    Endpoint("/api/chat", "POST", chat, "Chat about images (Ollama)", "Ollama", OllamaChatRequest,
             (NDJSON, JSON)),
    Endpoint("/api/generate", "POST", generate, "Complete a prompt about images (Ollama)", "Ollama",
             OllamaGenerateRequest, (NDJSON, JSON)),
    Endpoint("/api/embed", "POST", embed, "CLIP embeddings of texts and images (Ollama)", "Ollama",
             OllamaEmbedRequest),
    Endpoint("/api/embeddings", "POST", legacy_embeddings, "One CLIP embedding (Ollama's older form)",
             "Ollama", OllamaEmbeddingsRequest),
    Endpoint("/api/tags", "GET", tags, "The models here (Ollama)", "Ollama"),
    Endpoint("/api/show", "POST", show, "One model's details and capabilities (Ollama)", "Ollama",
             OllamaModelRequest),
    Endpoint("/api/ps", "GET", ps, "The loaded models (Ollama)", "Ollama"),
    Endpoint("/api/pull", "POST", pull, "Success for a model that is here; nothing is downloaded", "Ollama",
             OllamaModelRequest, (NDJSON, JSON)),
    Endpoint("/api/version", "GET", version, "The version, as x.y.z (Ollama)", "Ollama"),
    Endpoint("/", "GET", root, "Ollama's liveness probe: 'Ollama is running'", "Ollama", answers=(TEXT,)),
    Endpoint("/health", "GET", health, "Liveness", "Service"),
    Endpoint("/health/ready", "GET", ready, "Readiness", "Service"),
    Endpoint("/readyz", "GET", ready, "Readiness", "Service"),
    Endpoint("/metrics", "GET", metrics, "Prometheus metrics", "Service", answers=(TEXT,)),
    Endpoint("/admin/status", "GET", admin_status, "The service's machine-readable status", "Admin"),
    Endpoint("/admin/npu/release", "POST", npu_release, "Give the NPU back now", "Admin"),
    Endpoint("/admin/npu/load", "POST", npu_load, "Take the NPU and load the models now", "Admin"),
)  # fmt: skip
