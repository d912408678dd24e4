"""Ollama's model routes: GET /api/tags, POST /api/show, GET /api/ps, POST /api/pull, GET /api/version,
and HEAD/GET / (Ollama's liveness probe).

None of them talks to the worker: they answer from what the API already knows (its view of the
worker, the configuration, the model files' metadata), so clients that poll them with short timeouts
(Home Assistant: 5 s) never wait behind inference. /api/pull answers truthfully: success for a model
that is here, 404 for any other; nothing is ever downloaded.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import os
import re
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from api import ollama_format as fmt
from api.errors import APIError
from api.keep_alive import expires_at
from api.media_types import NDJSON
from api.ollama_request import OllamaModelRequest
from api.routes_info import VERSION, find_model, known_models, ollama_name, own_models
from api.services import Services, services_of
from npu_worker.backend import OLLAMA_BACKEND, ModelInfo, Placement
from npu_worker.states import WorkerState
from scheduler.ollama import OllamaClient

OLLAMA_RUNNING = "Ollama is running"  # the exact text Ollama's clients probe / for


def numeric_version(version: str) -> str:
    """x.y.z of a version ("0.1.0", "1.2.3.dev4"), or 0.0.0 when it has none (a source tree)."""
    match = re.match(r"\d+\.\d+\.\d+", version)
    return match.group() if match else "0.0.0"


@functools.cache
def _files(path: str) -> fmt.ModelFiles:
    """Size and last change of a model's files (read once: they do not change under a running service)."""
    size, latest = 0, 0.0
    for folder, _, names in os.walk(path):
        for name in names:
            stat = (Path(folder) / name).stat()
            size, latest = size + stat.st_size, max(latest, stat.st_mtime)
    modified = datetime.datetime.fromtimestamp(latest, datetime.UTC)
    digest = hashlib.sha256(json.dumps([path, size, latest]).encode()).hexdigest()
    return fmt.ModelFiles(size, modified, digest)


def model_files(services: Services, info: ModelInfo) -> fmt.ModelFiles:
    config = services.config
    return _files(config.model.path if info.kind == "vlm" else config.clip.path)


def _model(services: Services, body: OllamaModelRequest) -> ModelInfo:
    info = find_model(services, body.requested)
    if info is None:
        names = ", ".join(ollama_name(m.id) for m in known_models(services))
        raise APIError(
            404,
            f"model '{body.requested}' not found: this server serves only its own models and downloads "
            f"none (available: {names})",
            "model_not_found",
            "model",
        )
    return info


def _door(services: Services) -> OllamaClient | None:
    return services.scheduler.ollama


async def tags(request: Request) -> Response:
    """hailo-vision's models, then hailo-ollama's (as it last listed them), each with `served_by`."""
    services = services_of(request)
    models = [fmt.model_entry(m, model_files(services, m)) for m in own_models(services)]
    ollama = _door(services)
    models += [fmt.door_entry(entry) for entry in (ollama.catalog if ollama else ())]
    return JSONResponse({"models": models})


async def show(request: Request, body: OllamaModelRequest) -> Response:
    services = services_of(request)
    info = _model(services, body)
    ollama = _door(services)
    if info.served_by == OLLAMA_BACKEND and ollama is not None:
        entry = next(e for e in ollama.catalog if e["name"] == info.id)
        return JSONResponse(fmt.door_show(entry))
    return JSONResponse(fmt.show_body(info, model_files(services, info)))


def _placement(services: Services, info: ModelInfo) -> Placement:
    """Where a model runs now: the VLM while the worker has it loaded; CLIP on the NPU or the CPU."""
    view = services.worker.view
    if info.kind == "clip":
        return view.clip_placement
    if view.state != WorkerState.READY:
        return Placement.NONE
    return Placement.NPU if info.backend == "hailort" else Placement.CPU


async def ps(request: Request) -> Response:
    """The loaded models, with when each would be unloaded if no work came: hailo-vision's, then
    hailo-ollama's as the scheduler last saw them (its /api/ps waits behind a running answer)."""
    services = services_of(request)
    models = []
    for info in services.worker.view.models:
        placement = _placement(services, info)
        if placement != Placement.NONE:
            files, expires = model_files(services, info), expires_at(services, info)
            models.append(fmt.running_entry(info, files, expires, placement == Placement.NPU))
    ollama = _door(services)
    models += [fmt.door_entry(entry, running=True) for entry in (ollama.running if ollama else ())]
    return JSONResponse({"models": models})


async def pull(request: Request, body: OllamaModelRequest) -> Response:
    """Success for a model that is here (streamed as one NDJSON line unless stream is false)."""
    _model(services_of(request), body)
    done = {"status": "success"}
    if body.stream is False:
        return JSONResponse(done)
    return Response(json.dumps(done) + "\n", media_type=NDJSON)


async def version(request: Request) -> Response:
    """hailo-vision's version, always numeric x.y.z (Open WebUI parses it as such)."""
    return JSONResponse({"version": numeric_version(VERSION)})


async def root(request: Request) -> Response:
    return PlainTextResponse(OLLAMA_RUNNING)
