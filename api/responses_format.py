"""Response bodies of OpenAI's Responses API: the response object, and its stream of events.

A finish by length is `incomplete` (incomplete_details.reason max_output_tokens), as OpenAI answers;
an error during a stream is an `error` event followed by `response.failed`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from api.errors import APIError
from api.openai_format import now
from api.responses_request import ResponsesRequest
from npu_worker.protocol import Final


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


class ResponseBodies:
    """The bodies of one response: its id, its message item and the request's echoed settings."""

    def __init__(self, request: ResponsesRequest, model: str, defaults: tuple[float, float]) -> None:
        self.request = request
        self.model = model
        self.id = f"resp_{uuid.uuid4().hex}"
        self.item_id = f"msg_{uuid.uuid4().hex}"
        self.created_at = now()
        self.temperature, self.top_p = defaults
        self.sequence = 0

    def message(self, status: str, text: str | None) -> dict[str, Any]:
        content = [] if text is None else [_text_part(text)]
        return {
            "id": self.item_id,
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": content,
        }

    def response(
        self, status: str, final: Final | None = None, text: str = "", error: APIError | None = None
    ) -> dict[str, Any]:
        r = self.request
        text_format = r.text.format if r.text is not None and r.text.format is not None else None
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": None if error is None else {"code": error.code, "message": error.message},
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "instructions": r.instructions,
            "max_output_tokens": r.max_output_tokens,
            "model": self.model,
            "output": [] if final is None else [self.message(status, text)],
            "parallel_tool_calls": r.parallel_tool_calls is not False,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": False,
            "temperature": self.temperature if r.temperature is None else r.temperature,
            "text": {
                "format": {"type": "text"}
                if text_format is None
                else text_format.model_dump(by_alias=True, exclude_none=True)
            },
            "tool_choice": r.tool_choice or "auto",
            "tools": r.tools or [],
            "top_p": self.top_p if r.top_p is None else r.top_p,
            "truncation": r.truncation or "disabled",
            "usage": None,
            "user": r.user,
            "metadata": r.metadata or {},
        }
        if final is not None:
            body["completed_at"] = now()
            body["usage"] = {
                "input_tokens": final.prompt_tokens,
                "input_tokens_details": {"cached_tokens": final.cached_tokens},
                "output_tokens": final.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": final.prompt_tokens + final.completion_tokens,
            }
        return body

    def finished(self, final: Final, text: str) -> dict[str, Any]:
        """The whole response once the generation ended."""
        return self.response("incomplete" if final.reason == "length" else "completed", final, text)

    def event(self, kind: str, **fields: Any) -> str:
        """One server-sent event: `event:` names it, `data:` holds it with its sequence number."""
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"

    def opening(self) -> list[str]:
        at = {"item_id": self.item_id, "output_index": 0, "content_index": 0}
        in_progress = self.response("in_progress")
        return [
            self.event("response.created", response=in_progress),
            self.event("response.in_progress", response=in_progress),
            self.event("response.output_item.added", output_index=0, item=self.message("in_progress", None)),
            self.event("response.content_part.added", **at, part=_text_part("")),
        ]

    def delta(self, piece: str) -> str:
        return self.event(
            "response.output_text.delta", item_id=self.item_id, output_index=0, content_index=0, delta=piece,
            logprobs=[],
        )  # fmt: skip

    def closing(self, final: Final, text: str) -> list[str]:
        at = {"item_id": self.item_id, "output_index": 0, "content_index": 0}
        response = self.finished(final, text)
        return [
            self.event("response.output_text.done", **at, text=text, logprobs=[]),
            self.event("response.content_part.done", **at, part=_text_part(text)),
            self.event("response.output_item.done", output_index=0, item=response["output"][0]),
            self.event(f"response.{response['status']}", response=response),
        ]

    def failure(self, error: APIError) -> list[str]:
        return [
            self.event("error", code=error.code, message=error.message, param=error.param),
            self.event("response.failed", response=self.response("failed", error=error)),
        ]
