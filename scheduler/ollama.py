"""The scheduler's view of hailo-ollama over its HTTP API: what is loaded, and unloading it.

hailo-ollama serves one request at a time behind one mutex, /api/ps included, and a streamed answer
holds it to the end. So /api/ps unanswered within a short timeout means "generating", and an unload
(`POST /api/generate {"model": M, "keep_alive": 0}`, no prompt) queues behind a running answer: it
never cuts one off. hailo-ollama 5.1.1 answers some errors with HTTP 200 and an {"error": ...} body.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx

from npu_worker.logs import log_event
from scheduler.policy import OllamaView

log = logging.getLogger("scheduler.ollama")


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
            body = response.json()
            models = tuple(str(m.get("name") or m["model"]) for m in body.get("models") or [])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self._note_reachable(False, f"/api/ps answered {response.status_code} with no model list ({exc})")
            return OllamaView(reachable=False)
        self._note_reachable(True, "")
        return OllamaView(reachable=True, models=models)

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
        """Log when hailo-ollama appears or goes away, once per change."""
        if reachable != self._reachable:
            self._reachable = reachable
            if reachable:
                log_event(log, "ollama_reachable", url=self.base_url)
            else:
                log_event(log, "ollama_unreachable", logging.WARNING, url=self.base_url, why=why)
