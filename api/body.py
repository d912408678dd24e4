"""Read a request body within the configured size limit and validate it against its declaration."""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from api.errors import APIError
from api.schema import B, parse_body
from npu_worker.config import Config


async def read_bytes(request: Request, max_bytes: int, timeout_s: float) -> bytes:
    """The request body, refusing bodies over `max_bytes` (413) before reading them whole, and bodies
    that do not arrive whole within `timeout_s` (408: a trickled body holds no handler for long)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(max_bytes)
                chunks.append(chunk)
    except TimeoutError:
        message = f"the request body did not arrive within {timeout_s:g} s"
        raise APIError(408, message, "request_timeout") from None
    return b"".join(chunks)


def _too_large(max_bytes: int) -> APIError:
    return APIError(413, f"the request body is larger than the limit of {max_bytes} bytes", "body_too_large")


async def read_body(request: Request, model: type[B], config: Config) -> B:
    """The body as `model` (JSON, validated with `config`'s limits), or APIError 400/413."""
    body = await read_bytes(request, config.api.max_body_bytes, config.api.body_timeout_s)
    return parse_body(model, body, config)
