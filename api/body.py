"""Read a request body within the configured size limit and validate it against its declaration."""

from __future__ import annotations

from starlette.requests import Request

from api.errors import APIError
from api.schema import B, parse_body
from npu_worker.config import Config


async def read_bytes(request: Request, max_bytes: int) -> bytes:
    """The request body, refusing bodies over `max_bytes` (413) before reading them whole."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise APIError(
            413, f"the request body is larger than the limit of {max_bytes} bytes", "body_too_large"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise APIError(
                413, f"the request body is larger than the limit of {max_bytes} bytes", "body_too_large"
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def read_body(request: Request, model: type[B], config: Config) -> B:
    """The body as `model` (JSON, validated with `config`'s limits), or APIError 400/413."""
    return parse_body(model, await read_bytes(request, config.api.max_body_bytes), config)
