"""POST /v1/responses: OpenAI's Responses API, stateless, over the shared generation path.

Streamed as server-sent events with named events (`response.created`, `response.output_item.added`,
`response.output_text.delta`, ..., `response.completed`), or answered as one response object.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.errors import APIError
from api.generation import Generation, stream_response
from api.media_types import SSE
from api.responses_format import ResponseBodies
from api.responses_request import ResponsesRequest
from api.routes_info import resolve_model
from api.services import services_of

# The worker names OpenAI chat fields in its errors; these are their Responses names.
PARAMS = {"messages": "input", "max_tokens": "max_output_tokens", "response_format": "text.format"}


async def _events(generation: Generation, bodies: ResponseBodies) -> AsyncIterator[str]:
    for event in bodies.opening():
        yield event
    text: list[str] = []
    try:
        async for piece in generation.pieces():
            text.append(piece)
            yield bodies.delta(piece)
    except APIError as error:
        for event in bodies.failure(error):
            yield event
        return
    for event in bodies.closing(generation.result, "".join(text)):
        yield event


async def responses(request: Request, body: ResponsesRequest) -> Response:
    arrived = time.monotonic()
    services = services_of(request)
    defaults = services.config.inference
    conversation = body.to_conversation(defaults)
    model = resolve_model(services, conversation.model, "vlm")
    stream = bool(body.stream)
    generation = await Generation.start(services, model, conversation, stream, arrived, PARAMS)
    bodies = ResponseBodies(body, model.id, (defaults.temperature, defaults.top_p))
    if stream:
        return stream_response(generation, _events(generation, bodies), SSE)
    text = await generation.whole(request)
    return JSONResponse(bodies.finished(generation.result, text))
