"""Read a request body as JSON within the configured size limit."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from api.errors import APIError


async def read_json(request: Request, max_bytes: int) -> Any:
    """The request body as JSON, refusing bodies over `max_bytes` (413) and invalid JSON (400)."""
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
    try:
        return json.loads(b"".join(chunks))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON: {exc}", "invalid_json", "body") from None
