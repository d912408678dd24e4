"""Run one generation on the NPU worker and relay it: the one code path every dialect's route shares.

`Generation.start` decodes the conversation's images and clips, sends the request through
`services.worker.generate` (admission, and whatever gating the worker client applies) - or, for one
of hailo-ollama's models, through the door (api.door), which yields the same frames - and awaits the
first frame, so errors found before any token (unknown model, context overflow, full queue) still get
their own status. The route then either streams `pieces()` through `stream_response`, or awaits
`whole(request)`, which stops the generation when the client goes away. Every wait for the worker
is bounded by the worker client (inference.timeout_s and a margin: 504 beyond). Either
way `final` then holds the worker's figures, and metrics are recorded once, here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse

from api.clip_loading import load_clips
from api.conversation import ClipRef, Conversation, Part
from api.door import forward
from api.errors import APIError
from api.image_loading import load_images
from api.services import Services
from npu_worker.backend import OLLAMA_BACKEND, ImagePart, Message, ModelInfo, TextPart, VideoPart
from npu_worker.protocol import Final, Generate, Token

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
Frame = Token | Final


class ClientGone(Exception):
    """The client closed its connection before the whole answer was ready (answered 499, to no one)."""


def _messages(conversation: Conversation, images: list[Any], clips: list[Any]) -> tuple[Message, ...]:
    pending_images, pending_clips = iter(images), iter(clips)

    def part(p: Part) -> TextPart | ImagePart | VideoPart:
        if isinstance(p, str):
            return TextPart(p)
        if isinstance(p, ClipRef):
            return VideoPart(next(pending_clips))
        return ImagePart(next(pending_images))

    return tuple(Message(turn.role, tuple(part(p) for p in turn.parts)) for turn in conversation.turns)


async def _wait_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


@dataclass
class Generation:
    """One generation in flight; `params` renames the worker's error params into the dialect's."""

    services: Services
    model: ModelInfo
    arrived: float
    frames: AsyncGenerator[Frame, None]
    first: Frame | None
    params: Mapping[str, str] = field(default_factory=dict)
    final: Final | None = None
    _open: bool = True

    @classmethod
    async def start(
        cls,
        services: Services,
        model: ModelInfo,
        conversation: Conversation,
        stream: bool,
        arrived: float,
        params: Mapping[str, str] | None = None,
    ) -> Generation:
        if model.served_by == OLLAMA_BACKEND:
            frames = forward(services, model, conversation)
        else:
            services.worker.admit()
            images = await load_images(conversation.images, services, model.max_pixels)
            clips = await load_clips(conversation.clips, services)
            messages = _messages(conversation, images, clips)
            timeout_s = services.config.inference.timeout_s
            frames = services.worker.generate(
                lambda rid: Generate(rid, model.id, messages, conversation.params, timeout_s, stream),
                timeout_s,
            )
        services.in_flight += 1
        generation = cls(services, model, arrived, frames, None, params or {})
        try:
            generation.first = await generation._next()
        except BaseException:
            await generation.close()
            raise
        return generation

    async def _next(self) -> Frame:
        try:
            return await anext(self.frames)
        except APIError as error:
            if error.param is not None and error.param in self.params:
                error.param = self.params[error.param]
            raise

    async def pieces(self) -> AsyncIterator[str]:
        """The text as the worker sends it; then `final` is set (its `text` holds an unstreamed answer)."""
        item, self.first = self.first, None
        while isinstance(item, Token):
            yield item.text
            item = await self._next()
        if not isinstance(item, Final):
            raise APIError(500, f"the worker answered a generation with {item!r}", "protocol_error")
        self.final = item
        if self.model.served_by != OLLAMA_BACKEND:  # hailo-vision's figures are its own models'
            self._record(item)
        if item.text:
            yield item.text

    def _record(self, final: Final) -> None:
        metrics = self.services.metrics
        metrics.queue_wait.observe(final.queue_wait_s)
        metrics.ttft.observe(final.queue_wait_s + final.ttft_s)
        metrics.prompt_tokens.inc(final.prompt_tokens)
        metrics.completion_tokens.inc(final.completion_tokens)
        self.services.recent.generated(final.completion_tokens)

    async def _text(self) -> str:
        return "".join([piece async for piece in self.pieces()])

    async def whole(self, request: Request) -> str:
        """The whole text (504 when the worker does not finish in time: the worker client bounds every
        wait); a client that goes away stops the generation."""
        if isinstance(self.first, Final):  # not streamed: the whole answer came in its one frame
            try:
                return await self._text()
            finally:
                await self.close()
        work = asyncio.ensure_future(self._text())
        gone = asyncio.ensure_future(_wait_disconnect(request))
        try:
            await asyncio.wait((work, gone), return_when=asyncio.FIRST_COMPLETED)
            if work.done():
                return work.result()
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, APIError):
                await work
            raise ClientGone
        finally:
            gone.cancel()
            await self.close()

    async def close(self) -> None:
        if self._open:
            self._open = False
            await self.frames.aclose()
            self.services.in_flight -= 1

    @property
    def result(self) -> Final:
        """The worker's Final, once `pieces()` or `whole()` has run to the end."""
        if self.final is None:
            raise APIError(500, "the generation has not finished", "internal_error")
        return self.final

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.arrived


def stream_response(generation: Generation, chunks: AsyncIterator[str], media_type: str) -> StreamingResponse:
    """Send `chunks` (rendered from the generation) as they come; the generation ends with the stream,
    also when the client goes away (Starlette then cancels the body)."""

    async def body() -> AsyncIterator[str]:
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            await generation.close()

    return StreamingResponse(body(), media_type=media_type, headers=STREAM_HEADERS)
