"""The API's one error type and its two bodies: OpenAI's, and Ollama's on the /api/ routes.

Every failure a client can cause or meet is raised as `APIError` and rendered once, in the shape the
route's clients parse: OpenAI's `{"error": {"message", "type", "param", "code"}}`, or Ollama's
`{"error": "message"}`, with the HTTP status that the error's meaning calls for (and `Retry-After`
where waiting helps).
"""

from __future__ import annotations

from typing import Any

# OpenAI's error `type` per HTTP status; the `code` field carries the specific reason.
_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "service_unavailable_error",
    504: "timeout_error",
}


class APIError(Exception):
    """An error answered to the client; `status` is the HTTP status, `code` a stable machine name."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        param: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.retry_after_s = retry_after_s

    @property
    def type(self) -> str:
        return _TYPES.get(self.status, "server_error" if self.status >= 500 else "invalid_request_error")

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def ollama_body(self) -> dict[str, str]:
        return {"error": self.message}

    def body_for(self, path: str) -> dict[str, Any]:
        """The body the route at `path` answers errors with: Ollama's under /api/, else OpenAI's."""
        return self.ollama_body() if is_ollama_path(path) else self.body()

    def headers(self) -> dict[str, str]:
        if self.retry_after_s is None:
            return {}
        return {"Retry-After": str(max(1, int(self.retry_after_s + 0.999)))}


def is_ollama_path(path: str) -> bool:
    return path.startswith("/api/")
