"""Read-only routes: /v1/models, /health, /health/ready (/readyz) and /metrics."""

from __future__ import annotations

import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.door import door_models
from api.errors import APIError
from api.openai_format import model_object
from api.services import Services, services_of
from api.status import memory_section, npu_section, scheduler_section, service_state, thermal_section
from npu_worker.backend import ModelInfo, ModelKind
from npu_worker.states import WorkerState
from scheduler.snapshot import Snapshot

try:
    VERSION = version("hailo-vision")
except PackageNotFoundError:  # running from a source tree without installing
    VERSION = "0+unknown"


def own_models(services: Services) -> Sequence[ModelInfo]:
    """hailo-vision's models: the worker's loaded ones; before the worker reports, the configured ones."""
    if services.worker.view.models:
        return services.worker.view.models
    config = services.config
    configured = [ModelInfo(config.model.name, "vlm", config.backend)]
    if config.clip.enabled:
        configured.append(ModelInfo(config.clip.name, "clip", config.backend))
    return configured


def known_models(services: Services) -> Sequence[ModelInfo]:
    """hailo-vision's models, then hailo-ollama's that the door reaches (a name both serve is ours)."""
    return [*own_models(services), *door_models(services)]


def fits(info: ModelInfo, kind: ModelKind) -> bool:
    """Can `info` serve a request for a model of `kind`? hailo-ollama's text models answer generation
    requests (the VLM's kind) through the door."""
    return info.kind == kind or (kind == "vlm" and info.kind == "llm")


def ollama_name(model_id: str) -> str:
    """A name as Ollama writes it: `name:tag`, with `:latest` when it has no tag."""
    return model_id if ":" in model_id.rsplit("/", 1)[-1] else f"{model_id}:latest"


def canonical(name: str) -> str:
    """A model name as compared: case-insensitive, with Ollama's `:latest` implied when it has no tag."""
    return ollama_name(name.strip().lower())


def find_model(services: Services, name: str) -> ModelInfo | None:
    """The known model `name` names (`qwen2-vl-demo`, `qwen2-vl-demo:latest`), of any kind."""
    wanted = canonical(name)
    return next((m for m in known_models(services) if canonical(m.id) == wanted), None)


def resolve_model(services: Services, requested: str | None, kind: ModelKind) -> ModelInfo:
    """The model a request names (or the configured default), which must be of `kind`; else 404."""
    default = services.config.model.name if kind == "vlm" else services.config.clip.name
    name = requested or default
    info = find_model(services, name)
    if info is not None and fits(info, kind):
        return info
    available = ", ".join(m.id for m in known_models(services) if fits(m, kind)) or "none"
    message = f"model {name!r} not found; available: {available}"
    ollama = services.scheduler.ollama
    if kind == "vlm" and ollama is not None and not ollama.reachable:
        message += f" (hailo-ollama at {ollama.base_url}, whose models come here too, is not reachable)"
    raise APIError(404, message, "model_not_found", "model")


def _health_body(services: Services, snapshot: Snapshot) -> dict[str, Any]:
    view = services.worker.view
    return {
        "status": "ok",
        "state": service_state(services, snapshot),
        "model": services.config.model.name,
        "model_loaded": view.state == WorkerState.READY,
        "backend": view.backend or services.config.backend,
        "backend_details": view.details,
        "detail": view.detail,
        "uptime_seconds": round(time.monotonic() - services.started, 3),
        "version": VERSION,
        "in_flight": services.in_flight,
        "queued": view.queued + snapshot.waiting,
        "worker_restarts": services.worker.restarts,
        "npu": npu_section(snapshot),
        "scheduler": scheduler_section(services, snapshot),
        "thermal": thermal_section(snapshot),
        "memory": memory_section(services, snapshot),
    }


async def health(request: Request) -> Response:
    services = services_of(request)
    return JSONResponse(_health_body(services, services.scheduler.snapshot()))


async def ready(request: Request) -> Response:
    """200 while the service can serve, the models on the device or taking their turn."""
    services = services_of(request)
    snapshot = services.scheduler.snapshot()
    body = _health_body(services, snapshot)
    ladder = snapshot.ladder
    body["ready"] = services.worker.ready and ladder.allowance.inference
    if body["ready"]:
        return JSONResponse(body)
    paused = services.worker.ready  # ready but for the ladder: inference paused
    body["reason"] = "; ".join(ladder.reasons) if paused else services.worker.view.detail
    return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})


async def list_models(request: Request) -> Response:
    services = services_of(request)
    created = int(time.time() - (time.monotonic() - services.started))
    data = [model_object(m, created) for m in known_models(services)]
    return JSONResponse({"object": "list", "data": data})


async def get_model(request: Request) -> Response:
    services = services_of(request)
    model_id = request.path_params["model_id"]
    created = int(time.time() - (time.monotonic() - services.started))
    info = find_model(services, model_id)
    if info is None:
        raise APIError(404, f"model {model_id!r} not found", "model_not_found", "model")
    return JSONResponse(model_object(info, created))


async def metrics(request: Request) -> Response:
    services = services_of(request)
    stats = await services.worker.stats() if services.worker.view.epoch else None
    services.metrics.in_flight.set(services.in_flight)
    services.metrics.observe_scheduler(services.scheduler.snapshot())
    body = services.metrics.render(services.worker.ready, services.worker.restarts, stats)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
