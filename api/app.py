"""The Starlette application: routes, error rendering, API keys, CORS, request ids and access metrics."""

from __future__ import annotations

import logging
import time
import uuid

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import APIError
from api.keys import load_api_keys, valid_key
from api.routes_admin import admin_status, npu_load, npu_release
from api.routes_chat import chat_completions
from api.routes_clip import classify, embeddings, image_embeddings, match, text_embeddings
from api.routes_info import get_model, health, list_models, metrics, ready
from api.services import Services, services_of
from api.worker_client import WorkerClient
from npu_worker.config import Config
from npu_worker.logs import log_event
from scheduler.driver import Scheduler

log = logging.getLogger("api")
OPEN_PATHS = frozenset({"/health", "/health/ready", "/readyz"})
ADMIN_PREFIX = "/admin/"
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def error_response(error: APIError, request_id: str | None = None) -> JSONResponse:
    headers = error.headers()
    if request_id:
        headers["X-Request-ID"] = request_id
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    services_of(request).recent.failed(exc.code, exc.message)
    return error_response(exc, request.scope.get("request_id"))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return error_response(APIError(exc.status_code, message, code), request.scope.get("request_id"))


async def _crash(request: Request, exc: Exception) -> Response:
    log.exception("unhandled_error", extra={"fields": {"rid": request.scope.get("request_id")}})
    error = APIError(500, "internal error; see the service log", "internal_error")
    return error_response(error, request.scope.get("request_id"))


class AccessMiddleware:
    """Request ids, API keys, per-route metrics and one log line per request (pure ASGI: streams pass)."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get("x-request-id", "")[:64] or uuid.uuid4().hex
        scope["request_id"] = request_id
        path = scope["path"]
        started = time.monotonic()
        status_holder = {"status": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await error_response(refusal, request_id)(scope, receive, send_with_id)
            self._record(scope, path, refusal.status, started, request_id)
            return
        await self.app(scope, receive, send_with_id)
        self._record(scope, path, status_holder["status"], started, request_id)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> APIError | None:
        """401 without a valid key where keys are configured; admin routes only on loopback or with a key."""
        path, keys = scope["path"], self.services.api_keys
        if path in OPEN_PATHS or scope["method"] == "OPTIONS":
            return None
        key = headers.get("authorization", "")
        has_key = key.lower().startswith("bearer ") and bool(keys) and valid_key(key[7:].strip(), keys)
        if path.startswith(ADMIN_PREFIX):
            client = scope.get("client")
            if (client is not None and client[0] in LOOPBACK) or has_key:
                return None
            if not keys:
                return APIError(
                    403, "the admin endpoints answer on loopback only (no API keys set)", "forbidden"
                )
        if keys and not has_key:
            return APIError(
                401, "a valid API key is required: send 'Authorization: Bearer <key>'", "invalid_api_key"
            )
        return None

    def _record(self, scope: Scope, path: str, status: int, started: float, request_id: str) -> None:
        route = _route_label(scope, path)
        elapsed = time.monotonic() - started
        self.services.recent.finished(status, elapsed)
        self.services.metrics.requests.labels(route, str(status)).inc()
        self.services.metrics.latency.labels(route).observe(elapsed)
        if path not in OPEN_PATHS and path != "/metrics":
            log_event(
                log,
                "request",
                rid=request_id,
                method=scope["method"],
                path=route,
                status=status,
                ms=round(elapsed * 1000, 1),
            )


def _route_label(scope: Scope, path: str) -> str:
    """The route's template (bounded label values), or 'unmatched'."""
    route = scope.get("route")
    return getattr(route, "path", None) or ("unmatched" if path not in OPEN_PATHS else path)


def create_app(config: Config, worker: WorkerClient, scheduler: Scheduler) -> Starlette:
    keys = load_api_keys(config.api.api_keys, config.api.api_key_file)
    services = Services(config, worker, scheduler, api_keys=keys)
    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/classify", classify, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/embeddings/image", image_embeddings, methods=["POST"]),
        Route("/v1/embeddings/text", text_embeddings, methods=["POST"]),
        Route("/v1/match", match, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/health/ready", ready, methods=["GET"]),
        Route("/readyz", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/admin/status", admin_status, methods=["GET"]),
        Route("/admin/npu/release", npu_release, methods=["POST"]),
        Route("/admin/npu/load", npu_load, methods=["POST"]),
    ]
    middleware = [Middleware(AccessMiddleware, services=services)]
    if config.api.cors_enabled:
        origins = list(config.api.cors_origins) or ["*"]
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            )
        )
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={APIError: _api_error, HTTPException: _http_error, Exception: _crash},
    )
    app.state.services = services
    return app
