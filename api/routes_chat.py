"""POST /v1/chat/completions: OpenAI's chat API over the NPU worker, streamed (SSE) or whole.

The request is validated and its images decoded here, in the API process; only then is it sent to
the worker. The first frame back is awaited before answering, so errors found by the worker before
any token (unknown model, context overflow, busy queue) still get their proper status and body. A
client that goes away aborts its generation: the worker stops within one token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from api import openai_format as fmt
from api.body import read_json
from api.chat_request import ChatRequest, parse_chat_request
from api.errors import APIError
from api.image_loading import load_images
from api.routes_info import VERSION, resolve_model
from api.services import Services, services_of
from npu_worker.backend import ImagePart, Message, ModelInfo, TextPart
from npu_worker.protocol import Final, Generate, Token

API_TIMEOUT_MARGIN_S = 5.0  # the worker enforces the timeout; this guards against a stuck worker
Generated = Token | Final


def _final(item: Generated) -> Final:
    if not isinstance(item, Final):
        raise APIError(500, f"the worker answered a generation with {item!r}", "protocol_error")
    return item


def _messages(chat: ChatRequest, images: list[Any]) -> list[Message]:
    pending = iter(images)
    return [
        Message(
            turn.role,
            tuple(TextPart(p) if isinstance(p, str) else ImagePart(next(pending)) for p in turn.parts),
        )
        for turn in chat.turns
    ]


async def _wait_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


class _Completion:
    """One completion's identity and bookkeeping, shared by the streamed and the whole answer."""

    def __init__(self, services: Services, model: ModelInfo, chat: ChatRequest, arrived: float) -> None:
        self.services = services
        self.chat = chat
        self.model = model.id
        self.cid = fmt.completion_id()
        self.created = fmt.now()
        self.fingerprint = f"hv-{VERSION}-{model.backend}"
        self.arrived = arrived

    def observe(self, final: Final) -> None:
        metrics = self.services.metrics
        metrics.queue_wait.observe(final.queue_wait_s)
        metrics.ttft.observe(final.queue_wait_s + final.ttft_s)
        metrics.prompt_tokens.inc(final.prompt_tokens)
        metrics.completion_tokens.inc(final.completion_tokens)
        self.services.recent.generated(final.completion_tokens)

    def sse(self, body: dict[str, Any]) -> str:
        return f"data: {json.dumps(body, separators=(',', ':'))}\n\n"

    def chunk(
        self, delta: dict[str, Any] | None, finish: str | None = None, usage: dict[str, int] | None = None
    ) -> str:
        return self.sse(
            fmt.chunk(
                self.cid,
                self.created,
                self.model,
                self.fingerprint,
                delta,
                finish,
                usage,
                with_usage_field=self.chat.include_usage,
            )
        )

    async def stream(self, first: Generated, frames: AsyncGenerator[Generated, None]) -> AsyncIterator[str]:
        try:
            yield self.chunk({"role": "assistant", "content": ""})
            item = first
            while isinstance(item, Token):
                yield self.chunk({"content": item.text})
                item = await anext(frames)
            final = _final(item)
            self.observe(final)
            yield self.chunk({}, final.reason)
            if self.chat.include_usage:
                yield self.chunk(None, usage=fmt.usage(final.prompt_tokens, final.completion_tokens))
        except APIError as error:
            yield self.sse(error.body())
        finally:
            await frames.aclose()
            self.services.in_flight -= 1
        yield "data: [DONE]\n\n"

    async def whole(self, first: Generated, frames: AsyncGenerator[Generated, None]) -> dict[str, Any]:
        text: list[str] = []
        item = first
        while isinstance(item, Token):
            text.append(item.text)
            item = await anext(frames)
        final = _final(item)
        self.observe(final)
        text.append(final.text)  # the whole text, when the worker was asked not to stream
        return fmt.chat_completion(
            self.cid,
            self.created,
            self.model,
            self.fingerprint,
            "".join(text),
            final.reason,
            final.prompt_tokens,
            final.completion_tokens,
        )


async def chat_completions(request: Request) -> Response:
    arrived = time.monotonic()
    services = services_of(request)
    config = services.config
    body = await read_json(request, config.api.max_body_bytes)
    chat = parse_chat_request(body, config.inference, config.api.max_images_per_request)
    model = resolve_model(services, chat.model, "vlm")
    images = await load_images(chat.images, services, model.max_pixels)
    messages = tuple(_messages(chat, images))
    completion = _Completion(services, model, chat, arrived)
    timeout_s = config.inference.timeout_s
    frames = services.worker.generate(
        lambda rid: Generate(rid, model.id, messages, chat.params, timeout_s, chat.stream)
    )
    services.in_flight += 1
    try:
        first = await anext(frames)
    except BaseException:
        services.in_flight -= 1
        await frames.aclose()
        raise
    if chat.stream:
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(
            completion.stream(first, frames), media_type="text/event-stream", headers=headers
        )
    return await _answer_whole(request, services, completion, first, frames)


async def _answer_whole(
    request: Request,
    services: Services,
    completion: _Completion,
    first: Generated,
    frames: AsyncGenerator[Generated, None],
) -> Response:
    work = asyncio.create_task(completion.whole(first, frames))
    gone = asyncio.create_task(_wait_disconnect(request))
    timeout = services.config.inference.timeout_s + API_TIMEOUT_MARGIN_S
    try:
        done, _ = await asyncio.wait({work, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if work in done:
            return JSONResponse(work.result())
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError, APIError):
            await work
        if gone in done:
            return Response(status_code=499)  # nobody is listening any more
        raise APIError(504, f"the generation did not finish within {timeout:g} s", "timeout")
    finally:
        gone.cancel()
        await frames.aclose()
        services.in_flight -= 1
