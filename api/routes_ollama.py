"""Ollama's generating routes: POST /api/chat, /api/generate (the VLM), /api/embed and /api/embeddings (CLIP).

Bodies are validated from their declarations (api.ollama_request); generations run through the
shared path (api.generation) and are answered as NDJSON chunks (the default) or one object with
`stream: false`, each final answer with Ollama's measured durations in nanoseconds. An empty request
(no messages, no prompt) loads the model, or unloads it with keep_alive 0, as in Ollama; keep_alive
goes to the one function that will pass it to the NPU scheduler (api.keep_alive).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api import ollama_format as fmt
from api.clip_request import EmbeddingsRequest
from api.conversation import Conversation
from api.door import load_or_unload
from api.errors import APIError
from api.generation import Generation, stream_response
from api.keep_alive import apply_keep_alive
from api.media_types import NDJSON
from api.ollama_request import (
    OllamaChatRequest,
    OllamaEmbeddingsRequest,
    OllamaEmbedRequest,
    OllamaGenerateRequest,
)
from api.routes_clip import embed_request, in_input_order
from api.routes_info import find_model, fits, resolve_model
from api.services import Services, services_of
from npu_worker.backend import OLLAMA_BACKEND, ModelInfo, ModelKind

PARAMS = {"response_format": "format", "stop": "options.stop"}  # request fields as Ollama names them


def ollama_model(services: Services, name: str, kind: ModelKind, ability: str) -> ModelInfo:
    """The model `name` names; a model of the other kind is Ollama's 400 "does not support", none 404."""
    info = find_model(services, name)
    if info is not None and not fits(info, kind):
        raise APIError(400, f'"{name}" does not support {ability}', "invalid_request", "model")
    return resolve_model(services, name, kind)


def _line(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":")) + "\n"


async def _ndjson(generation: Generation, name: str, chat: bool) -> AsyncIterator[str]:
    try:
        async for piece in generation.pieces():
            if piece:
                yield _line(fmt.chunk(name, chat, piece))
        final = fmt.chunk(name, chat, "", done=True, reason=generation.result.reason)
        yield _line({**final, **fmt.durations(generation)})
    except APIError as error:
        yield _line(error.ollama_body())


async def _lifecycle(
    services: Services, model: ModelInfo, name: str, chat: bool, keep_alive: float | None
) -> dict[str, Any]:
    """The answer to an empty request: "unload" with keep_alive 0 (the scheduler gives the VLM back
    after its running work), else "load" once the VLM is on the device (it takes its turn). For
    hailo-ollama's models the door asks hailo-ollama, which answers the same way."""
    if model.served_by == OLLAMA_BACKEND:
        reason = await load_or_unload(services, model, keep_alive)
    elif keep_alive == 0:
        reason = "unload"
    else:
        await services.worker.take_turn()
        reason = "load"
    return fmt.chunk(name, chat, "", done=True, reason=reason)


async def _generate(
    request: Request, body: OllamaChatRequest | OllamaGenerateRequest, chat: bool
) -> Response:
    arrived = time.monotonic()
    services = services_of(request)
    model = ollama_model(services, body.model, "vlm", "chat" if chat else "generate")
    keep_alive = body.keep_alive_seconds
    apply_keep_alive(services, model, keep_alive)
    if not body.has_input:
        return JSONResponse(await _lifecycle(services, model, body.model, chat, keep_alive))
    params = body.sampling(services.config.inference, model.context_length)
    conversation = Conversation(body.model, body.turns, params, keep_alive)
    generation = await Generation.start(services, model, conversation, body.streamed, arrived, PARAMS)
    if body.streamed:
        return stream_response(generation, _ndjson(generation, body.model, chat), NDJSON)
    text = await generation.whole(request)
    answer = fmt.chunk(body.model, chat, text, done=True, reason=generation.result.reason)
    return JSONResponse({**answer, **fmt.durations(generation)})


async def chat(request: Request, body: OllamaChatRequest) -> Response:
    return await _generate(request, body, chat=True)


async def generate(request: Request, body: OllamaGenerateRequest) -> Response:
    return await _generate(request, body, chat=False)


async def embed(request: Request, body: OllamaEmbedRequest) -> Response:
    arrived = time.monotonic()
    services = services_of(request)
    model = ollama_model(services, body.model, "clip", "embeddings")  # (keep_alive: CLIP stays loaded)
    req = EmbeddingsRequest(model.id, body.inputs, "float", ensemble=False)
    embedded = await embed_request(services, model, req)
    return JSONResponse(
        {
            "model": body.model,
            "embeddings": [vector.tolist() for vector in in_input_order(req, embedded)],
            "total_duration": fmt.ns(time.monotonic() - arrived),
            "load_duration": fmt.ns(embedded.queue_wait_s),
            "prompt_eval_count": embedded.text_tokens,
        }
    )


async def legacy_embeddings(request: Request, body: OllamaEmbeddingsRequest) -> Response:
    services = services_of(request)
    model = ollama_model(services, body.model, "clip", "embeddings")
    if not body.inputs:
        return JSONResponse({"embedding": []})
    req = EmbeddingsRequest(model.id, body.inputs, "float", ensemble=False)
    (vector,) = in_input_order(req, await embed_request(services, model, req))
    return JSONResponse({"embedding": vector.tolist()})
