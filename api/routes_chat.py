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
from npu_worker.protocol import Envelope, Kind, messages_to_wire, params_to_wire

API_TIMEOUT_MARGIN_S = 5.0  # the worker enforces the timeout; this guards against a stuck worker


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

    def observe(self, final: Envelope) -> None:
        metrics = self.services.metrics
        f = final.fields
        metrics.queue_wait.observe(float(f.get("queue_wait_s", 0.0)))
        metrics.ttft.observe(float(f.get("queue_wait_s", 0.0)) + float(f.get("ttft_s", 0.0)))
        metrics.prompt_tokens.inc(int(f.get("prompt_tokens", 0)))
        metrics.completion_tokens.inc(int(f.get("completion_tokens", 0)))

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

    async def stream(self, first: Envelope, frames: AsyncGenerator[Envelope, None]) -> AsyncIterator[str]:
        try:
            yield self.chunk({"role": "assistant", "content": ""})
            item = first
            while item.kind == Kind.TOKEN:
                yield self.chunk({"content": item.fields["text"]})
                item = await anext(frames)
            self.observe(item)
            yield self.chunk({}, str(item.fields["reason"]))
            if self.chat.include_usage:
                yield self.chunk(
                    None,
                    usage=fmt.usage(int(item.fields["prompt_tokens"]), int(item.fields["completion_tokens"])),
                )
        except APIError as error:
            yield self.sse(error.body())
        finally:
            await frames.aclose()
            self.services.in_flight -= 1
        yield "data: [DONE]\n\n"

    async def whole(self, first: Envelope, frames: AsyncGenerator[Envelope, None]) -> dict[str, Any]:
        text: list[str] = []
        item = first
        while item.kind == Kind.TOKEN:
            text.append(item.fields["text"])
            item = await anext(frames)
        self.observe(item)
        f = item.fields
        text.append(str(f.get("text", "")))  # the whole text, when the worker was asked not to stream
        return fmt.chat_completion(
            self.cid,
            self.created,
            self.model,
            self.fingerprint,
            "".join(text),
            str(f["reason"]),
            int(f["prompt_tokens"]),
            int(f["completion_tokens"]),
        )


async def chat_completions(request: Request) -> Response:
    arrived = time.monotonic()
    services = services_of(request)
    config = services.config
    body = await read_json(request, config.api.max_body_bytes)
    chat = parse_chat_request(body, config.inference, config.api.max_images_per_request)
    model = resolve_model(services, chat.model, "vlm")
    images = await load_images(chat.images, services, model.max_pixels)
    wire, arrays = messages_to_wire(_messages(chat, images))
    fields = {
        "model": model.id,
        "messages": wire,
        "params": params_to_wire(chat.params),
        "timeout_s": config.inference.timeout_s,
        "stream": chat.stream,
    }
    completion = _Completion(services, model, chat, arrived)
    frames = services.worker.request(Kind.GENERATE, fields, arrays)
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
    first: Envelope,
    frames: AsyncGenerator[Envelope, None],
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
