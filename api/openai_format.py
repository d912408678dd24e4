"""Response bodies in OpenAI's exact shapes: chat completions, stream chunks, usage, model objects."""

from __future__ import annotations

import time
import uuid
from typing import Any

from npu_worker.backend import ModelInfo


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> dict[str, Any]:
    """OpenAI's usage; `cached_tokens`: prompt tokens a follow-up turn took from the kept context."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
    }


def chat_completion(
    cid: str,
    created: int,
    model: str,
    fingerprint: str,
    content: str,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int = 0,
) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": fingerprint,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage(prompt_tokens, completion_tokens, cached_tokens),
    }


def chunk(
    cid: str,
    created: int,
    model: str,
    fingerprint: str,
    delta: dict[str, Any] | None,
    finish_reason: str | None = None,
    usage_body: dict[str, Any] | None = None,
    with_usage_field: bool = False,
) -> dict[str, Any]:
    """One `chat.completion.chunk`; the final usage chunk has `delta=None` and empty choices."""
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": fingerprint,
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if with_usage_field:
        body["usage"] = usage_body
    return body


def model_object(info: ModelInfo, created: int) -> dict[str, Any]:
    body: dict[str, Any] = {"id": info.id, "object": "model", "created": created, "owned_by": info.served_by}
    body["served_by"] = info.served_by
    body["kind"] = info.kind
    body["backend"] = info.backend
    body["capabilities"] = sorted(info.capabilities)
    if info.context_length:
        body["context_length"] = info.context_length
    if info.embedding_dim:
        body["embedding_dim"] = info.embedding_dim
    return body


def now() -> int:
    return int(time.time())
