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

from api.endpoints import ENDPOINTS
from api.errors import APIError
from api.generation import ClientGone
from api.http_guard import OVERLOADED
from api.keys import load_api_keys, valid_key
from api.openapi import openapi_json
from api.services import Services, services_of
from api.worker_client import WorkerClient
from npu_worker.config import Config
from npu_worker.logs import log_event
from scheduler.driver import Scheduler

log = logging.getLogger("api")
# Probes ("/" is Ollama's liveness probe): open with API keys set while api.open_probes is true.
PROBES = frozenset({"/health", "/health/ready", "/readyz", "/"})
# Not logged per request (polled): the probes, the metrics and the document.
QUIET_PATHS = PROBES | {"/metrics", "/openapi.json"}
ADMIN_PREFIX = "/admin/"
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def error_response(error: APIError, path: str) -> JSONResponse:
    """The error in its route's dialect (the access middleware adds X-Request-ID to every answer)."""
    return JSONResponse(error.body_for(path), status_code=error.status, headers=error.headers())


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    services_of(request).recent.failed(exc.code, exc.message)
    return error_response(exc, request.url.path)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = f"{request.method} {request.url.path}: {exc.detail}"
    error = APIError(exc.status_code, message, code)
    return error_response(error, request.url.path)


async def _client_gone(request: Request, exc: Exception) -> Response:
    return Response(status_code=499)  # nobody is listening any more


async def _crash(request: Request, exc: Exception) -> Response:
    log.exception("unhandled_error", extra={"fields": {"rid": request.scope.get("request_id")}})
    error = APIError(500, "internal error; see the service log", "internal_error")
    return error_response(error, request.url.path)


class AccessMiddleware:
    """Request ids, API keys, per-route metrics and one log line per request (pure ASGI: streams pass)."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services
        api = services.config.api
        self.open_paths = (PROBES if api.open_probes else frozenset()) | (
            {"/metrics"} if api.open_metrics else frozenset()
        )

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
            await error_response(refusal, path)(scope, receive, send_with_id)
            self._record(scope, path, refusal.status, started, request_id)
            return
        await self.app(scope, receive, send_with_id)
        self._record(scope, path, status_holder["status"], started, request_id)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> APIError | None:
        """503 past api.max_connections; 401 without a valid key where keys are configured; admin routes
        only on loopback or with a key."""
        path, keys = scope["path"], self.services.api_keys
        if scope.get(OVERLOADED):
            limit = self.services.config.api.max_connections
            message = f"more than {limit} connections at once (api.max_connections); retry shortly"
            return APIError(503, message, "overloaded", None, 1.0)
        if path in self.open_paths or scope["method"] == "OPTIONS":
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
        if path not in QUIET_PATHS:
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
    return getattr(route, "path", None) or ("unmatched" if path not in QUIET_PATHS else path)


def create_app(config: Config, worker: WorkerClient, scheduler: Scheduler) -> Starlette:
    keys = load_api_keys(config.api.api_keys, config.api.api_key_file)
    services = Services(config, worker, scheduler, api_keys=keys)
    routes = [e.route() for e in ENDPOINTS]
    routes.append(Route("/openapi.json", openapi_json, methods=["GET"]))
    middleware = [Middleware(AccessMiddleware, services=services)]
    if config.api.cors_enabled:
        origins = list(config.api.cors_origins) or ["*"]
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            )
        )
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            APIError: _api_error,
            HTTPException: _http_error,
            ClientGone: _client_gone,
            Exception: _crash,
        },
    )
    app.state.services = services
    return app
