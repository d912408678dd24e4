"""How `hailo-visionctl` reaches the service: the admin endpoints, on loopback or with the API key.

The base URL comes from the configuration (a wildcard listen address is asked on loopback, where
the admin endpoints need no key) unless --url names another; the key is --api-key or the first of
`api.api_keys`. Anything short of an HTTP answer is `Unreachable`; an OpenAI-style error body is
`AdminError` with its message.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from npu_worker.config import Config

TIMEOUT_S = 5.0
_WILDCARDS = ("0.0.0.0", "::", "")


class Unreachable(Exception):
    """No HTTP answer from the service (refused, timed out, not JSON)."""


class AdminError(Exception):
    """The service answered with an error status; the message is its error body's."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(f"{message} (HTTP {status}, {code})")
        self.status = status
        self.code = code


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    api_key: str | None

    @classmethod
    def of(cls, config: Config, url: str | None, api_key: str | None) -> Endpoint:
        host = config.api.host
        host = "127.0.0.1" if host in _WILDCARDS else f"[{host}]" if ":" in host else host
        base = url or f"http://{host}:{config.api.port}"
        return cls(base.rstrip("/"), api_key or (config.api.api_keys[0] if config.api.api_keys else None))

    def status(self) -> dict[str, Any]:
        """GET /admin/status: the schema-1 status document."""
        return self._call("GET", "/admin/status")

    def npu(self, action: str) -> dict[str, Any]:
        """POST /admin/npu/<action> (release or load): {"owner", "detail"}."""
        return self._call("POST", f"/admin/npu/{action}")

    def _call(self, method: str, path: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        request = urllib.request.Request(self.base_url + path, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                return _json(response.read())
        except urllib.error.HTTPError as error:
            body = _json(error.read(), allow_other=True)
            found = body.get("error")
            detail: dict[str, Any] = found if isinstance(found, dict) else {}
            message = str(detail.get("message") or error.reason)
            raise AdminError(error.code, message, str(detail.get("code") or "http_error")) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise Unreachable(str(reason)) from None


def _json(raw: bytes, allow_other: bool = False) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        if allow_other:
            return {}
        raise Unreachable(f"the answer is not JSON: {raw[:80]!r}") from None
    return value if isinstance(value, dict) else {}
