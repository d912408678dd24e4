"""hailo-ollama over its HTTP API: what is loaded and what it serves, unloading it, and the door's
streamed chats.

hailo-ollama serves one request at a time behind one mutex, /api/ps included, and a streamed answer
holds it to the end. So /api/ps unanswered within a short timeout means "generating", and an unload
(`POST /api/generate {"model": M, "keep_alive": 0}`, no prompt) queues behind a running answer: it
never cuts one off. hailo-ollama 5.1.1 answers some errors with HTTP 200 and an {"error": ...} body.

The last /api/tags and /api/ps entries read are kept (`catalog`, `running`) for the API's model lists,
which must answer at once even while hailo-ollama is generating.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from npu_worker.logs import log_event
from scheduler.turn_types import OllamaView

log = logging.getLogger("scheduler.ollama")


class OllamaError(Exception):
    """hailo-ollama could not answer a forwarded request; `status` is what the client should get."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _status_of(error: str) -> int:
    """The HTTP status an error hailo-ollama sent under HTTP 200 (5.1.1) deserves."""
    return 404 if "not found" in error.lower() else 500


CATALOG_EVERY_S = 30.0  # hailo-ollama's model list is read again this often (it changes with its pulls)


@dataclass(frozen=True)
class UnloadResult:
    ok: bool
    detail: str


class OllamaClient:
    def __init__(self, base_url: str, ps_timeout_s: float, unload_timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.ps_timeout_s = ps_timeout_s
        self.unload_timeout_s = unload_timeout_s
        self._http = httpx.AsyncClient(base_url=self.base_url, trust_env=False)
        self._reachable: bool | None = None
        self.catalog: tuple[dict[str, Any], ...] = ()  # its /api/tags entries, as last read
        self.running: tuple[dict[str, Any], ...] = ()  # its /api/ps entries, as last read
        self._catalog_read_at: float | None = None  # None: not read since hailo-ollama was last seen

    @property
    def reachable(self) -> bool:
        """Did hailo-ollama answer the last time it was asked?"""
        return bool(self._reachable)

    @property
    def models(self) -> tuple[str, ...]:
        """The names of the models hailo-ollama serves (none while it is unreachable)."""
        return tuple(str(entry["name"]) for entry in self.catalog)

    async def close(self) -> None:
        await self._http.aclose()

    async def ps(self) -> OllamaView:
        """What hailo-ollama has loaded; busy when it does not answer in time (it is generating)."""
        try:
            response = await self._http.get("/api/ps", timeout=self.ps_timeout_s)
        except httpx.TimeoutException:
            self._note_reachable(True, "")
            return OllamaView(reachable=True, busy=True)
        except httpx.HTTPError as exc:
            self._note_reachable(False, f"{type(exc).__name__}: {exc}")
            return OllamaView(reachable=False)
        try:
            self.running = _entries(response.json())
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self._note_reachable(False, f"/api/ps answered {response.status_code} with no model list ({exc})")
            return OllamaView(reachable=False)
        self._note_reachable(True, "")
        return OllamaView(reachable=True, models=tuple(str(entry["name"]) for entry in self.running))

    def catalog_due(self, now: float) -> bool:
        """Time to read /api/tags: not read since hailo-ollama (re)appeared, or CATALOG_EVERY_S ago."""
        return self._catalog_read_at is None or now - self._catalog_read_at >= CATALOG_EVERY_S

    async def read_catalog(self, now: float) -> bool:
        """Read the models hailo-ollama serves (/api/tags) into `catalog`; False when it did not say."""
        try:
            response = await self._http.get("/api/tags", timeout=self.ps_timeout_s)
            self.catalog = _entries(response.json())
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
            return False
        self._catalog_read_at = now
        return True

    @contextlib.asynccontextmanager
    async def stream(
        self, path: str, body: dict[str, Any], timeout_s: float
    ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """POST `path` (/api/chat, /api/generate), streamed: its NDJSON lines as they come, each within
        `timeout_s`. Answers that are not JSON lines - 5.1.1's errors under HTTP 200, 4xx/5xx, garbage
        - raise OllamaError, as do a silence past `timeout_s` (504) and no connection (502)."""
        try:
            async with self._http.stream("POST", path, json=body, timeout=timeout_s) as response:
                yield self._lines(response)
        except httpx.TimeoutException as exc:
            raise OllamaError(504, f"hailo-ollama did not answer within {timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise OllamaError(502, f"hailo-ollama at {self.base_url} is not reachable: {exc}") from exc

    async def _lines(self, response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
        async for line in response.aiter_lines():
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as exc:
                raise OllamaError(
                    502, f"hailo-ollama answered something that is not JSON: {line[:80]!r}"
                ) from exc
            if not isinstance(item, dict):
                raise OllamaError(502, f"hailo-ollama answered {line[:80]!r}")
            if "error" in item:  # 5.1.1 answers some errors with HTTP 200
                status = (
                    response.status_code if response.status_code >= 400 else _status_of(str(item["error"]))
                )
                raise OllamaError(status, f"hailo-ollama: {item['error']}")
            if response.status_code >= 400:
                raise OllamaError(502, f"hailo-ollama answered HTTP {response.status_code}")
            yield item

    async def unload(self, model: str) -> UnloadResult:
        """Ask hailo-ollama to unload `model` now; waits for its running answer (bounded)."""
        try:
            response = await self._http.post(
                "/api/generate", json={"model": model, "keep_alive": 0}, timeout=self.unload_timeout_s
            )
            body = response.json()
        except httpx.TimeoutException:
            return UnloadResult(
                False, f"hailo-ollama did not unload {model} within {self.unload_timeout_s:g} s"
            )
        except (httpx.HTTPError, ValueError) as exc:
            return UnloadResult(False, f"hailo-ollama unload of {model} failed: {exc}")
        error = body.get("error") if isinstance(body, dict) else None
        if response.status_code != 200 or error:  # 5.1.1 reports some errors with HTTP 200
            return UnloadResult(
                False, f"hailo-ollama refused to unload {model}: {error or response.status_code}"
            )
        return UnloadResult(True, f"{model} ({body.get('done_reason', 'done')})")

    def _note_reachable(self, reachable: bool, why: str) -> None:
        """Log when hailo-ollama appears or goes away, once per change (gone, it serves nothing)."""
        if not reachable:
            self.catalog = self.running = ()
            self._catalog_read_at = None  # read again as soon as it is back
        if reachable != self._reachable:
            self._reachable = reachable
            if reachable:
                log_event(log, "ollama_reachable", url=self.base_url)
            else:
                log_event(log, "ollama_unreachable", logging.WARNING, url=self.base_url, why=why)


def _entries(body: Any) -> tuple[dict[str, Any], ...]:
    """The model entries of an /api/tags or /api/ps body, each with its `name` (Ollama's older
    entries may carry only `model`)."""
    return tuple({**m, "name": str(m.get("name") or m["model"])} for m in body.get("models") or [])
