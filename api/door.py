"""The door to hailo-ollama: its text models reached through hailo-vision, in their turn on the NPU.

A request on /api/chat, /api/generate, /v1/chat/completions or /v1/responses that names one of
hailo-ollama's models (its /api/tags, read by the scheduler) waits for hailo-ollama's turn
(`Scheduler.ollama_turn`: hailo-vision neither holds nor is taking the device, so hailo-ollama's load
cannot fail on it), is sent to hailo-ollama's streamed /api/chat (its /v1/chat/completions cannot
stream), and comes back as the worker's Token/Final frames - so every dialect renders it exactly as
it renders the VLM's answers (NDJSON for Ollama's clients, SSE for OpenAI's).

hailo-ollama's quirks, handled here: one request at a time (the door sends it one at a time; the
rest wait for their turn in the scheduler, within scheduler.turn_timeout_s), `keep_alive` in integer
seconds only (Ollama's "5m" arrives here as seconds and is rounded), errors under HTTP 200 in 5.1.1
(read from the body), and text models that take no images (400 here, before anything is sent).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from api.conversation import ClipRef, Conversation, ImageRef
from api.errors import APIError
from api.services import Services
from api.worker_client import granted
from npu_worker.backend import OLLAMA_BACKEND, ModelInfo, SamplingParams
from npu_worker.protocol import Final, Token
from scheduler.ollama import OllamaClient, OllamaError

UNSUPPORTED = {
    "response_format": "cannot hold its answer to JSON (structured output is for hailo-vision's models)",
    "stop": "takes no stop sequences",
}


def door_models(services: Services) -> list[ModelInfo]:
    """hailo-ollama's models as the API lists and resolves them (none while it is unreachable)."""
    ollama = services.scheduler.ollama
    names = ollama.models if ollama is not None else ()
    return [ModelInfo(name, "llm", OLLAMA_BACKEND, capabilities=frozenset({"chat"})) for name in names]


def _options(params: SamplingParams) -> dict[str, Any]:
    options: dict[str, Any] = {"temperature": params.temperature, "top_p": params.top_p}
    options["num_predict"] = params.max_tokens
    if params.top_k:
        options["top_k"] = params.top_k
    if params.seed is not None:
        options["seed"] = params.seed
    return options


def request_body(model: ModelInfo, conversation: Conversation) -> dict[str, Any]:
    """hailo-ollama's /api/chat body for a conversation (text only; keep_alive in whole seconds)."""
    media: list[ImageRef | ClipRef] = [*conversation.images, *conversation.clips]
    if media:
        message = f"{model.id} is hailo-ollama's text model: it takes no images or clips (ask a vision model)"
        raise APIError(400, message, "invalid_request", media[0].param)
    unsupported = {"response_format": conversation.params.json_schema, "stop": conversation.params.stop}
    for field, asked in unsupported.items():
        if asked:  # hailo-ollama reads neither: its `format` is never used, its options have no stop
            message = f"{model.id} is served by hailo-ollama, which {UNSUPPORTED[field]}"
            raise APIError(400, message, "invalid_request", field)
    messages = [{"role": t.role, "content": "".join(str(p) for p in t.parts)} for t in conversation.turns]
    body: dict[str, Any] = {"model": model.id, "messages": messages, "stream": True}
    body["options"] = _options(conversation.params)
    if conversation.keep_alive is not None:
        body["keep_alive"] = _whole_seconds(conversation.keep_alive)
    return body


def _whole_seconds(keep_alive: float) -> int:
    """hailo-ollama's keep_alive: integer seconds, negative = forever (a fraction would be refused)."""
    return -1 if keep_alive < 0 else math.ceil(keep_alive)


def _api_error(error: OllamaError) -> APIError:
    if error.status == 404:
        return APIError(404, error.message, "model_not_found", "model")
    return APIError(error.status, error.message, "ollama_error")


@contextlib.asynccontextmanager
async def _turn(services: Services) -> AsyncIterator[OllamaClient]:
    """hailo-ollama's turn for one request (else 503 with Retry-After); its errors as APIError."""
    ollama = services.scheduler.ollama
    if ollama is None:
        message = "no hailo-ollama is configured (scheduler.ollama_url)"
        raise APIError(404, message, "model_not_found", "model")
    try:
        async with granted(services.scheduler.ollama_turn()):
            yield ollama
    except OllamaError as error:
        raise _api_error(error) from None


async def forward(
    services: Services, model: ModelInfo, conversation: Conversation
) -> AsyncGenerator[Token | Final, None]:
    """hailo-ollama's answer, in its turn, as Token frames and then one Final; errors as APIError."""
    body = request_body(model, conversation)
    arrived = time.monotonic()
    timeout_s = services.config.inference.timeout_s
    async with _turn(services) as ollama, ollama.stream("/api/chat", body, timeout_s) as lines:
        started = time.monotonic()
        first: float | None = None
        count = 0
        async for item in lines:
            if item.get("done"):
                now = time.monotonic()
                yield Final(
                    rid="",
                    text="",
                    reason="length" if item.get("done_reason") == "length" else "stop",
                    prompt_tokens=int(item.get("prompt_eval_count") or 0),
                    completion_tokens=int(item.get("eval_count") or count),
                    queue_wait_s=started - arrived,
                    ttft_s=(first or now) - started,
                    compute_s=now - started,
                )
                return
            first = first or time.monotonic()
            count += 1
            yield Token("", str((item.get("message") or {}).get("content") or ""), count)
        raise APIError(502, "hailo-ollama's answer ended without its last line", "ollama_error")


async def load_or_unload(services: Services, model: ModelInfo, keep_alive: float | None) -> str:
    """Ollama's empty request for one of hailo-ollama's models: unload it now (keep_alive 0, no turn
    needed), or load it in its turn; Ollama's done_reason ("unload", "load")."""
    ollama = services.scheduler.ollama
    if keep_alive == 0 and ollama is not None:
        result = await ollama.unload(model.id)
        if not result.ok:
            raise APIError(502, result.detail, "ollama_error")
        return "unload"
    body: dict[str, Any] = {"model": model.id}
    if keep_alive is not None:
        body["keep_alive"] = _whole_seconds(keep_alive)
    timeout_s = services.config.inference.timeout_s
    async with _turn(services) as ollama, ollama.stream("/api/generate", body, timeout_s) as lines:
        async for item in lines:
            return str(item.get("done_reason") or "load")
    raise APIError(502, "hailo-ollama did not answer the load", "ollama_error")
