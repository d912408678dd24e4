"""POST /v1/chat/completions: OpenAI's chat API over the NPU worker, streamed (SSE) or whole.

The body is validated from its declaration (api.chat_request) and run through the shared generation
path (api.generation); this module only renders OpenAI's chunks and completion objects.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api import openai_format as fmt
from api.chat_request import ChatCompletionRequest
from api.errors import APIError
from api.generation import Generation, stream_response
from api.media_types import SSE
from api.routes_info import VERSION, resolve_model
from api.services import services_of


def sse(body: dict[str, Any]) -> str:
    return f"data: {json.dumps(body, separators=(',', ':'))}\n\n"


class _Completion:
    """One completion's identity, shared by its chunks and its whole answer."""

    def __init__(self, generation: Generation, include_usage: bool) -> None:
        self.generation = generation
        self.include_usage = include_usage
        self.model = generation.model.id
        self.cid = fmt.completion_id()
        self.created = fmt.now()
        self.fingerprint = f"hv-{VERSION}-{generation.model.backend}"

    def chunk(
        self, delta: dict[str, Any] | None, finish: str | None = None, usage: dict[str, Any] | None = None
    ) -> str:
        body = fmt.chunk(
            self.cid,
            self.created,
            self.model,
            self.fingerprint,
            delta,
            finish,
            usage,
            with_usage_field=self.include_usage,
        )
        return sse(body)

    async def stream(self) -> AsyncIterator[str]:
        try:
            yield self.chunk({"role": "assistant", "content": ""})
            async for piece in self.generation.pieces():
                yield self.chunk({"content": piece})
            final = self.generation.result
            yield self.chunk({}, final.reason)
            if self.include_usage:
                usage = fmt.usage(final.prompt_tokens, final.completion_tokens, final.cached_tokens)
                yield self.chunk(None, usage=usage)
        except APIError as error:
            yield sse(error.body())
        yield "data: [DONE]\n\n"

    async def whole(self, request: Request) -> dict[str, Any]:
        text = await self.generation.whole(request)
        final = self.generation.result
        return fmt.chat_completion(
            self.cid,
            self.created,
            self.model,
            self.fingerprint,
            text,
            final.reason,
            final.prompt_tokens,
            final.completion_tokens,
            final.cached_tokens,
        )


async def chat_completions(request: Request, body: ChatCompletionRequest) -> Response:
    arrived = time.monotonic()
    services = services_of(request)
    chat = body.to_conversation(services.config.inference)
    model = resolve_model(services, chat.model, "vlm")
    stream = bool(body.stream)
    generation = await Generation.start(services, model, chat, stream, arrived)
    completion = _Completion(generation, body.include_usage)
    if stream:
        return stream_response(generation, completion.stream(), SSE)
    return JSONResponse(await completion.whole(request))
