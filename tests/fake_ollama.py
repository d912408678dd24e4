"""A fake hailo-ollama for the scheduler's tests: a real HTTP server that behaves as its sources say.

Facts it follows (../shared/hailo-facts.md, hailo_model_zoo_genai 5.1.1 and a 5.4 revision):
- one request at a time: every model endpoint, /api/ps included, takes one lock, and a streamed
  answer holds it until the stream ends (so /api/ps does not answer while it generates);
- `keep_alive` is an integer number of seconds (default 300, negative = forever), its expiry counted
  from the START of the last request; `POST /api/generate {"model", "keep_alive": 0}` with no prompt
  unloads at once (done_reason "unload"), with another value loads ("load");
- while a model is loaded the device is held in the HailoRT test double: a VDevice in the group named
  by HAILO_OLLAMA_VDEVICE_GROUP_ID (default UNIQUE, as 5.1.1) and the model's KV cache; a model load
  that finds the device held fails, and the request gets an error;
- /v1/chat/completions does not stream; an unknown model is HTTP 200 with {"error"} on 5.1.1
  (`--release 5.1.1`, the default) and 404 on newer releases.
Every request and generation is appended to `--events` as JSON lines with time.monotonic() stamps, so
tests can check the order of things across processes without sleeping.

Run: PYTHONPATH=tests/hailo_double python tests/fake_ollama.py --port P --model NAME=HEF --events F
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

DEFAULT_KEEP_ALIVE_S = 300


class FakeOllama:
    def __init__(self, models: dict[str, str], release: str, events: Path) -> None:
        self.models = models  # name -> double HEF
        self.release = release
        self.events = events
        self.lock = asyncio.Lock()
        self.loaded: str | None = None
        self.vdevice: Any = None
        self.llm: Any = None
        self.expires_at = 0.0  # monotonic
        self.group = os.environ.get("HAILO_OLLAMA_VDEVICE_GROUP_ID", "UNIQUE")

    def note(self, event: str, **fields: Any) -> None:
        with self.events.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"event": event, "at": time.monotonic(), **fields}) + "\n")

    # --- the device ---------------------------------------------------------------------------------

    def _load(self, model: str) -> None:
        from hailo_platform import VDevice
        from hailo_platform.genai import LLM

        if self.loaded == model:
            return
        self._unload()
        params = VDevice.create_params()
        params.group_id = self.group
        self.vdevice = VDevice(params)
        try:
            self.llm = LLM(self.vdevice, self.models[model])
        except BaseException:
            self.vdevice.release()
            self.vdevice = None
            raise
        self.loaded = model
        self.note("loaded", model=model, group=self.group)

    def _unload(self) -> None:
        if self.llm is not None:
            self.llm.release()
        if self.vdevice is not None:
            self.vdevice.release()
        if self.loaded is not None:
            self.note("unloaded", model=self.loaded)
        self.llm = self.vdevice = self.loaded = None

    async def expire(self) -> None:
        """Unload when keep_alive runs out (taking the lock, like any request)."""
        while True:
            await asyncio.sleep(0.05)
            if self.loaded is not None and self.expires_at <= time.monotonic():
                async with self.lock:
                    if self.loaded is not None and self.expires_at <= time.monotonic():
                        self._unload()

    def _keep(self, started: float, keep_alive: Any) -> None:
        seconds = DEFAULT_KEEP_ALIVE_S if keep_alive is None else int(keep_alive)
        self.expires_at = float("inf") if seconds < 0 else started + seconds

    # --- requests -----------------------------------------------------------------------------------

    def unknown(self, model: str) -> Response:
        message = f"model '{model}' not found"
        return JSONResponse({"error": message}, status_code=200 if self.release == "5.1.1" else 404)

    async def generate(self, request: Request) -> Response:
        body = await request.json()
        return await self._answer(request, body, body.get("prompt"), chat=False)

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        return await self._answer(request, body, body.get("messages") or [], chat=True)

    async def completions(self, request: Request) -> Response:
        body = await request.json()
        body = {**body, "stream": False, "keep_alive": None}  # never streams, default keep_alive
        return await self._answer(request, body, body.get("messages") or [], chat=True)

    async def _answer(self, request: Request, body: dict[str, Any], prompt: Any, chat: bool) -> Response:
        model = str(body.get("model", ""))
        if model not in self.models:
            return self.unknown(model)
        await self.lock.acquire()
        started = time.monotonic()
        self.note("request", path=request.url.path, model=model, keep_alive=body.get("keep_alive"))
        handed_over = False  # to the answer's stream, which releases the lock at its end
        try:
            if not prompt and body.get("keep_alive") == 0:
                self._unload()
                return JSONResponse(self._done(model, "unload", chat))
            try:
                await asyncio.to_thread(self._load, model)
            except Exception as exc:
                self.note("load_failed", model=model, error=repr(exc))
                return JSONResponse({"error": f"failed to load {model}: {exc}"}, status_code=500)
            self._keep(started, body.get("keep_alive"))
            if not prompt:
                return JSONResponse(self._done(model, "load", chat))
            num_predict = int((body.get("options") or {}).get("num_predict", 16))
            stream = self._stream(model, prompt, chat, num_predict)
            handed_over = True
        finally:
            if not handed_over:
                self.lock.release()
        if body.get("stream", True):
            return StreamingResponse(stream, media_type="application/x-ndjson")
        lines = [json.loads(line) async for line in stream]
        return JSONResponse(self._whole(lines, chat))

    async def _stream(self, model: str, prompt: Any, chat: bool, num_predict: int) -> AsyncIterator[str]:
        """The answer's NDJSON lines; the lock is held until the last one (or the client leaving)."""
        try:
            self.note("generation_started", model=model)
            tokens: asyncio.Queue[str | None] = asyncio.Queue()
            loop = asyncio.get_running_loop()

            def run() -> None:
                self.llm.clear_context()
                with self.llm.generate(prompt, max_generated_tokens=num_predict) as completion:
                    for token in completion:
                        loop.call_soon_threadsafe(tokens.put_nowait, token)
                loop.call_soon_threadsafe(tokens.put_nowait, None)

            worker = loop.run_in_executor(None, run)
            count = 0
            while (token := await tokens.get()) is not None:
                count += 1
                piece = {"message": {"role": "assistant", "content": token}} if chat else {"response": token}
                yield json.dumps({"model": model, "created_at": _now(), **piece, "done": False}) + "\n"
            await worker
            reason = "length" if count >= num_predict else "stop"  # (its LLM ended it, or the limit)
            self.note("generation_ended", model=model, tokens=count)
            yield json.dumps({**self._done(model, reason, chat), "eval_count": count}) + "\n"
        finally:
            self.lock.release()

    @staticmethod
    def _done(model: str, reason: str, chat: bool) -> dict[str, Any]:
        empty = {"message": {"role": "assistant", "content": ""}} if chat else {"response": ""}
        return {"model": model, "created_at": _now(), **empty, "done": True, "done_reason": reason}

    @staticmethod
    def _whole(lines: list[dict[str, Any]], chat: bool) -> dict[str, Any]:
        final = lines[-1]
        if chat:
            text = "".join(line["message"]["content"] for line in lines[:-1])
            final["message"] = {"role": "assistant", "content": text}
        else:
            final["response"] = "".join(line["response"] for line in lines[:-1])
        return final

    async def ps(self, request: Request) -> Response:
        async with self.lock:
            self.note("ps")
            if self.loaded is None:
                return JSONResponse({"models": []})
            left = self.expires_at - time.monotonic()
            expires = datetime.now(UTC) + timedelta(seconds=min(left, 10**8))
            return JSONResponse({"models": [{**self._entry(self.loaded), "expires_at": expires.isoformat()}]})

    async def tags(self, request: Request) -> Response:
        """Every model as hailo-ollama's ModelInfoShort: no digest, the HEF's size and time."""
        return JSONResponse({"models": [self._entry(m) for m in self.models]})

    def _entry(self, model: str) -> dict[str, Any]:
        stat = Path(self.models[model]).stat()
        modified = datetime.fromtimestamp(stat.st_mtime, UTC).isoformat().replace("+00:00", "Z")
        details = {"format": "hef", "family": "qwen2", "families": ["qwen2"], "parameter_size": "1.5B"}
        entry = {"name": model, "model": model, "modified_at": modified, "size": stat.st_size}
        return {**entry, "details": details}

    async def version(self, request: Request) -> Response:
        return JSONResponse({"version": self.release})


def _now() -> str:
    return datetime.now(UTC).isoformat()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", action="append", default=[], help="NAME=HEF")
    parser.add_argument("--release", default="5.1.1")
    parser.add_argument("--events", required=True)
    args = parser.parse_args()
    fake = FakeOllama(dict(m.split("=", 1) for m in args.model), args.release, Path(args.events))
    app = Starlette(
        routes=[
            Route("/", lambda r: Response("Ollama is running"), methods=["GET"]),
            Route("/api/version", fake.version, methods=["GET"]),
            Route("/api/tags", fake.tags, methods=["GET"]),
            Route("/api/ps", fake.ps, methods=["GET"]),
            Route("/api/generate", fake.generate, methods=["POST"]),
            Route("/api/chat", fake.chat, methods=["POST"]),
            Route("/v1/chat/completions", fake.completions, methods=["POST"]),
        ]
    )

    async def serve() -> None:
        expiry = asyncio.create_task(fake.expire())
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning"))
        try:
            await server.serve()
        finally:
            expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await expiry
            fake._unload()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
