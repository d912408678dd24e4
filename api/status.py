"""What the service says about itself: /health, /health/ready and the machine-readable /admin/status.

One place builds it, from the worker's view, the scheduler's snapshot and the last minute of
requests, so `hailo-visionctl status`, /health and systemd's STATUS= never disagree.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from api.services import Services
from npu_worker.states import ApiState, ServiceState, WorkerState
from scheduler.ladder import MemoryLevel, ThermalLevel
from scheduler.snapshot import Snapshot

STATUS_SCHEMA = 1


def service_state(services: Services, snapshot: Snapshot) -> ServiceState:
    if services.state == ApiState.DRAINING:
        return ServiceState.DRAINING
    worker = services.worker.view.state
    if worker is None or worker == WorkerState.FAILED:
        return ServiceState.UNAVAILABLE
    if services.worker.ready:
        return ServiceState.DEGRADED if snapshot.ladder.rung.degraded else ServiceState.READY
    return (
        ServiceState.LOADING
        if worker in (WorkerState.STARTING, WorkerState.LOADING)
        else ServiceState.UNAVAILABLE
    )


def reasons(services: Services, snapshot: Snapshot) -> list[str]:
    """Why the service is not simply ready and idle, most pressing first."""
    view = services.worker.view
    found = []
    if view.state is None or view.state == WorkerState.FAILED:
        found.append(view.detail)
    elif view.state != WorkerState.READY:
        found.append(f"worker {view.state}: {view.detail}")
    if snapshot.waiting:
        found.append(f"{snapshot.waiting} request(s) waiting for the NPU: {snapshot.reason}")
    found.extend(snapshot.ladder.reasons)
    return found


def _since(seconds_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat(timespec="seconds")


def npu_section(snapshot: Snapshot) -> dict[str, Any]:
    ollama = snapshot.ollama
    return {
        "owner": snapshot.owner,
        "since": _since(snapshot.owner_since_s),
        "since_s": round(snapshot.owner_since_s, 1),
        "reason": snapshot.owner_reason,
        "ollama": None
        if ollama is None
        else {
            "url": snapshot.ollama_url,
            "reachable": ollama.reachable,
            "busy": ollama.busy,
            "models": list(ollama.models),
        },
    }


def scheduler_section(services: Services, snapshot: Snapshot) -> dict[str, Any]:
    figures = snapshot.figures
    return {
        "policy": snapshot.policy,
        "phase": snapshot.phase,
        "rung": snapshot.ladder.rung,
        "reasons": list(snapshot.ladder.reasons),
        "queued": snapshot.waiting + services.worker.view.queued,
        "in_flight": services.in_flight,
        "max_queue": services.config.resources.max_queue,
        "switches": figures.switches,
        "switch_seconds": round(figures.switch_seconds, 3),
        "release_in_s": None if snapshot.release_in_s is None else round(snapshot.release_in_s, 1),
        "door": {"queued": snapshot.door_waiting, "in_flight": snapshot.door_in_flight},
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def thermal_section(snapshot: Snapshot) -> dict[str, Any]:
    seen = snapshot.seen
    return {
        "level": seen.thermal if seen else ThermalLevel.UNKNOWN,
        "soc_c": _rounded(seen.soc_c) if seen else None,
        "hailo_c": _rounded(seen.hailo_c) if seen else None,
        "throttled": list(seen.throttled) if seen and seen.throttled is not None else None,
    }


def memory_section(services: Services, snapshot: Snapshot) -> dict[str, Any]:
    seen, resources = snapshot.seen, services.config.resources
    return {
        "level": seen.memory if seen else MemoryLevel.UNKNOWN,
        "service_rss_mb": _rounded(seen.service_mb) if seen else None,
        "limit_mb": resources.memory_limit_mb,
        "available_mb": _rounded(seen.available_mb) if seen else None,
        "floor_mb": resources.min_available_mb,
    }


def status_document(services: Services, version: str) -> dict[str, Any]:
    """GET /admin/status: everything `hailo-visionctl status` renders."""
    snapshot = services.scheduler.snapshot()
    view = services.worker.view
    api = services.config.api
    return {
        "schema": STATUS_SCHEMA,
        "service": {
            "state": service_state(services, snapshot),
            "version": version,
            "uptime_s": round(time.monotonic() - services.started, 1),
            "pid": os.getppid(),  # the supervisor's: systemd's MainPID, what `systemctl status` shows
            "listen": f"{api.host}:{api.port}",
            "worker_restarts": services.worker.restarts,
            "backend": view.backend or services.config.backend,
            "reasons": reasons(services, snapshot),
        },
        "models": [
            {
                "id": model.id,
                "kind": model.kind,
                "served_by": "hailo-vision",
                "loaded": view.state == WorkerState.READY or model.kind == "clip",
                "placement": view.clip_placement if model.kind == "clip" else _vlm_placement(services),
            }
            for model in view.models
        ],
        "npu": npu_section(snapshot),
        "scheduler": scheduler_section(services, snapshot),
        "requests": services.recent.summary(),
        "thermal": thermal_section(snapshot),
        "memory": memory_section(services, snapshot),
        "errors": [error.__dict__ for error in services.recent.errors],
    }


def _vlm_placement(services: Services) -> str:
    view = services.worker.view
    if view.state != WorkerState.READY:
        return "none"
    return "npu" if view.backend == "hailo" else "cpu"
